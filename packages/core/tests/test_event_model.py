"""MASK_EVENT_MODEL: the incumbents' attribute-access model, changes applied, failures contained."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from moesif_core.event_builder import EventBuilder
from moesif_core.event_model import EventModel, event_from_model
from moesif_core.log import reset_for_tests
from moesif_core.masking import MASK
from moesif_core.record import RawExchange
from moesif_core.settings import Settings


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    reset_for_tests()


def record() -> RawExchange:
    r = RawExchange()
    r.request_time = r.response_time = 1_700_000_000.0
    r.host = "h"
    r.path = "/p"
    r.request_header_style = "pairs"
    r.request_headers = [("Authorization", "Bearer x"), ("X-Internal", "keep-me-out")]
    r.request_body = b'{"password": "p", "note": "private"}'
    r.status = 200
    r.response_header_style = "pairs"
    r.response_headers = [("Content-Type", "application/json")]
    r.response_body = b'{"result": "ok"}'
    r.transaction_id = "txn-1"
    return r


def build_with(callback: Any) -> dict[str, Any]:
    s = Settings.resolve({"APPLICATION_ID": "test-app-id", "MASK_EVENT_MODEL": callback}, environ={})
    event = EventBuilder(s).build(record())
    assert event is not None
    return event


def test_callback_changing_fields_by_attribute_is_applied() -> None:
    def mask(event: Any) -> Any:
        assert event.request.headers["authorization"] == MASK  # default masking already ran
        assert event.request.body == {"password": MASK, "note": "private"}
        event.request.headers.pop("x-internal")
        event.request.body["note"] = "hidden"
        event.response.body = None
        event.user_id = "from-mask"
        event.metadata = {"masked": True}
        return event

    event = build_with(mask)
    assert "x-internal" not in event["request"]["headers"]
    assert event["request"]["body"] == {"password": MASK, "note": "hidden"}
    assert event["response"]["body"] is None
    assert event["user_id"] == "from-mask"
    assert event["metadata"] == {"masked": True}
    assert event["transaction_id"] == "txn-1"


def test_item_access_and_a_returned_dict_work_too() -> None:
    def mask(event: Any) -> Any:
        data = event.to_dict()
        data["request"]["body"] = None
        data["response"]["status"] = event["response"]["status"] + 1
        return data

    event = build_with(mask)
    assert event["request"]["body"] is None
    assert event["response"]["status"] == 201


def test_callback_that_raises_keeps_the_masked_event_untouched(caplog: pytest.LogCaptureFixture) -> None:
    def mask(event: Any) -> Any:
        event.request.body["note"] = "half-done"
        event.request.headers["authorization"] = "unmasked!"
        raise RuntimeError("bug in user code")

    with caplog.at_level(logging.WARNING, logger="moesif"):
        first = build_with(mask)
        build_with(mask)
    assert first["request"]["body"] == {"password": MASK, "note": "private"}
    assert first["request"]["headers"]["authorization"] == MASK
    messages = [r.getMessage() for r in caplog.records if "MASK_EVENT_MODEL" in r.getMessage()]
    assert len(messages) == 1 and "RuntimeError" in messages[0]


def test_callback_returning_none_keeps_the_masked_event(caplog: pytest.LogCaptureFixture) -> None:
    def mask(event: Any) -> None:
        event.response.body = {"changed": True}

    with caplog.at_level(logging.WARNING, logger="moesif"):
        event = build_with(mask)
    assert event["response"]["body"] == {"result": "ok"}
    assert "returned NoneType" in caplog.text


@pytest.mark.parametrize("result", [42, "event", {"request": None, "response": {}}, {"request": {}}])
def test_unusable_results_keep_the_masked_event(result: Any) -> None:
    event = build_with(lambda _event: result)
    assert event["response"]["body"] == {"result": "ok"}


def test_unknown_fields_are_refused_loudly_and_the_event_kept(caplog: pytest.LogCaptureFixture) -> None:
    def mask(event: Any) -> Any:
        event.no_such_field = 1
        return event

    with caplog.at_level(logging.WARNING, logger="moesif"):
        event = build_with(mask)
    assert event["user_id"] is None
    assert "no_such_field" in caplog.text


def test_result_is_reduced_to_the_spec_keys() -> None:
    event = build_with(lambda e: {**e.to_dict(), "extra": 1, "request": {**e.request.to_dict(), "junk": 2}})
    assert "extra" not in event and "junk" not in event["request"]


def test_model_reads_like_the_incumbents() -> None:
    base = {
        "request": {
            "time": "t",
            "uri": "u",
            "verb": "GET",
            "api_version": None,
            "ip_address": None,
            "headers": {},
            "body": None,
            "transfer_encoding": None,
        },
        "response": {"time": "t", "status": 200, "headers": {}, "body": None, "ip_address": None, "transfer_encoding": None},
        "user_id": None,
        "company_id": None,
        "session_token": None,
        "metadata": None,
        "tags": None,
        "direction": "Incoming",
        "weight": 1,
        "blocked_by": None,
        "transaction_id": "x",
    }
    model = EventModel.from_event(base)
    assert model.request.verb == "GET" and model["request"]["uri"] == "u"
    assert model.response.status == 200 and model.direction == "Incoming"
    model.request = {"verb": "POST"}
    assert model.request.verb == "POST" and model.request.uri is None
    assert base["request"]["verb"] == "GET"  # the original is a different object
    assert "user_id" in model and "nope" not in model
    with pytest.raises(AttributeError):
        _ = model.nope
    out = event_from_model(model)
    assert out is not None and out["request"]["verb"] == "POST" and set(out) == set(base)
