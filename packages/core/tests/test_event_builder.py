"""RawExchange -> the spec's event: every field, identity precedence, bodies, metadata, robustness."""

from __future__ import annotations

import base64
import calendar
import gzip
import logging
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from moesif_core.event_builder import EventBuilder, dumps_event
from moesif_core.log import reset_for_tests
from moesif_core.masking import MASK
from moesif_core.record import RawExchange
from moesif_core.settings import Settings
from moesif_core.testing import make_jwt

TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")
TXN = "8c9a3f0e-1d2b-4c5d-9e8f-0a1b2c3d4e5f"
REQUEST_TIME = calendar.timegm((2026, 11, 21, 18, 16, 46)) + 0.871
RESPONSE_TIME = REQUEST_TIME + 1.5


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    reset_for_tests()


def settings(**extra: Any) -> Settings:
    return Settings.resolve({"APPLICATION_ID": "test-app-id", **extra}, environ={})


def asgi_record(**fields: Any) -> RawExchange:
    record = RawExchange()
    record.request_time = REQUEST_TIME
    record.response_time = RESPONSE_TIME
    record.method = "POST"
    record.scheme = "https"
    record.host = "api.example.com:8443"
    record.root_path = "/mount"
    record.path = "/v1/orders"
    record.query_string = "page=2&q=a%20b"
    record.request_header_style = "asgi"
    record.request_headers = [
        (b"host", b"api.example.com:8443"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {make_jwt({'sub': 'jwt-user', 'org': 'jwt-co'})}".encode()),
        (b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"),
        (b"accept", b"a"),
        (b"accept", b"b"),
    ]
    record.client_addr = "10.0.0.2"
    record.request_body = b'{"item": "book", "password": "hunter2"}'
    record.request_body_size = len(record.request_body)
    record.status = 201
    record.response_header_style = "asgi"
    record.response_headers = [(b"content-type", b"application/json"), (b"x-moesif-transaction-id", TXN.encode())]
    record.response_body = b'{"id": 7, "token": "t0k"}'
    record.response_body_size = len(record.response_body)
    record.transaction_id = TXN
    record.weight = 4
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def test_event_matches_the_spec_field_by_field() -> None:
    event = EventBuilder(settings(API_VERSION="2.1")).build(asgi_record())
    assert event is not None
    assert list(event) == [
        "request",
        "response",
        "user_id",
        "company_id",
        "session_token",
        "metadata",
        "tags",
        "direction",
        "weight",
        "blocked_by",
        "transaction_id",
    ]
    request, response = event["request"], event["response"]
    assert set(request) == {"time", "uri", "verb", "api_version", "ip_address", "headers", "body", "transfer_encoding"}
    assert set(response) == {"time", "status", "headers", "body", "ip_address", "transfer_encoding"}

    assert TIME_FORMAT.match(request["time"]) and TIME_FORMAT.match(response["time"])
    assert request["time"] == "2026-11-21T18:16:46.871"
    assert response["time"] == "2026-11-21T18:16:48.371"
    assert request["uri"] == "https://api.example.com:8443/mount/v1/orders?page=2&q=a%20b"
    assert request["verb"] == "POST"
    assert request["api_version"] == "2.1"
    assert request["ip_address"] == "203.0.113.9"
    assert request["headers"] == {
        "host": "api.example.com:8443",
        "content-type": "application/json",
        "authorization": MASK,
        "x-forwarded-for": "203.0.113.9, 10.0.0.2",
        "accept": "a, b",
        "x-moesif-transaction-id": TXN,
    }
    assert request["body"] == {"item": "book", "password": MASK}
    assert request["transfer_encoding"] == "json"

    assert response["status"] == 201
    assert response["headers"] == {"content-type": "application/json", "x-moesif-transaction-id": TXN}
    assert response["body"] == {"id": 7, "token": MASK}
    assert response["transfer_encoding"] == "json"
    assert response["ip_address"] is None

    assert event["user_id"] == "jwt-user"
    assert event["company_id"] is None
    assert event["session_token"] is None
    assert event["metadata"] is None
    assert event["tags"] is None
    assert event["direction"] == "Incoming"
    assert event["weight"] == 4
    assert event["blocked_by"] is None
    assert event["transaction_id"] == TXN
    assert orjson.loads(dumps_event(event)) == event


def test_transaction_id_is_added_to_both_logged_header_dicts_when_absent() -> None:
    event = EventBuilder(settings()).build(asgi_record(response_headers=[]))
    assert event is not None
    assert event["request"]["headers"]["x-moesif-transaction-id"] == TXN
    assert event["response"]["headers"]["x-moesif-transaction-id"] == TXN


def test_no_transaction_id_when_disabled() -> None:
    event = EventBuilder(settings()).build(asgi_record(transaction_id=None, response_headers=[]))
    assert event is not None
    assert event["transaction_id"] is None
    assert "x-moesif-transaction-id" not in event["request"]["headers"]
    assert "x-moesif-transaction-id" not in event["response"]["headers"]


def test_uri_without_mount_or_query_and_full_url_wins() -> None:
    builder = EventBuilder(settings())
    event = builder.build(asgi_record(root_path="", query_string="", scheme="http", host="h"))
    assert event is not None and event["request"]["uri"] == "http://h/v1/orders"
    event = builder.build(asgi_record(full_url="https://third.party/x?y=1", direction="Outgoing"))
    assert event is not None
    assert event["request"]["uri"] == "https://third.party/x?y=1"
    assert event["direction"] == "Outgoing"


def test_wsgi_record_headers_and_peer_address() -> None:
    record = asgi_record(
        request_header_style="wsgi",
        request_headers=[("HTTP_HOST", "h"), ("CONTENT_TYPE", "text/plain"), ("HTTP_X_API_KEY", "k")],
        response_header_style="pairs",
        response_headers=[("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        request_body=b"hello",
        response_body=b"world",
    )
    event = EventBuilder(settings()).build(record)
    assert event is not None
    assert event["request"]["headers"] == {
        "host": "h",
        "content-type": "text/plain",
        "x-api-key": MASK,
        "x-moesif-transaction-id": TXN,
    }
    assert event["response"]["headers"] == {"content-type": "text/plain", "set-cookie": MASK, "x-moesif-transaction-id": TXN}
    assert event["request"]["ip_address"] == "10.0.0.2"
    assert event["request"]["body"] == base64.b64encode(b"hello").decode()
    assert event["request"]["transfer_encoding"] == "base64"
    assert event["user_id"] is None


def test_default_masking_off_sends_credentials_as_they_are() -> None:
    event = EventBuilder(settings(MASK_DEFAULT_CREDENTIALS=False)).build(asgi_record())
    assert event is not None
    assert event["request"]["headers"]["authorization"].startswith("Bearer ")
    assert event["request"]["body"]["password"] == "hunter2"
    assert event["response"]["body"]["token"] == "t0k"


def test_extra_masks_add_to_the_defaults() -> None:
    s = settings(
        REQUEST_HEADER_MASKS=["Accept"],
        REQUEST_BODY_MASKS="item",
        RESPONSE_BODY_MASKS=["ID"],
        RESPONSE_HEADER_MASKS=["content-type"],
    )
    event = EventBuilder(s).build(asgi_record())
    assert event is not None
    assert event["request"]["headers"]["accept"] == MASK and event["request"]["headers"]["authorization"] == MASK
    assert event["request"]["body"] == {"item": MASK, "password": MASK}
    assert event["response"]["body"] == {"id": MASK, "token": MASK}
    assert event["response"]["headers"]["content-type"] == MASK
    assert event["response"]["headers"]["x-moesif-transaction-id"] == TXN


def test_form_body_password_is_masked_before_base64() -> None:
    record = asgi_record(
        request_headers=[(b"content-type", b"application/x-www-form-urlencoded")],
        request_body=b"username=alice&password=hunter2",
    )
    event = EventBuilder(settings()).build(record)
    assert event is not None
    assert event["request"]["transfer_encoding"] == "base64"
    assert base64.b64decode(event["request"]["body"]) == b"username=alice&password=*****"


def test_gzip_response_body_is_decoded_and_masked() -> None:
    record = asgi_record(
        response_headers=[(b"content-encoding", b"gzip"), (b"content-type", b"application/json")],
        response_body=gzip.compress(b'{"access_token": "abc", "ok": true}'),
    )
    event = EventBuilder(settings()).build(record)
    assert event is not None
    assert event["response"]["body"] == {"access_token": MASK, "ok": True}


def test_user_id_is_extracted_before_the_authorization_header_is_masked() -> None:
    event = EventBuilder(settings(AUTHORIZATION_COMPANY_ID_FIELD="org")).build(asgi_record())
    assert event is not None
    assert (event["user_id"], event["company_id"]) == ("jwt-user", "jwt-co")
    assert event["request"]["headers"]["authorization"] == MASK


def test_callback_ids_win_over_the_token_and_are_stringified() -> None:
    builder = EventBuilder(settings(AUTHORIZATION_COMPANY_ID_FIELD="org"))
    event = builder.build(asgi_record(user_id=12345, company_id="acme", session_token=987))
    assert event is not None
    assert (event["user_id"], event["company_id"], event["session_token"]) == ("12345", "acme", "987")
    event = builder.build(asgi_record(user_id="cb-user"))
    assert event is not None
    assert (event["user_id"], event["company_id"]) == ("cb-user", "jwt-co")


@pytest.mark.parametrize("unusable", ["", {"id": 1}, [1], True])
def test_unusable_callback_ids_fall_back_to_the_token_with_one_warning(unusable: Any, caplog: pytest.LogCaptureFixture) -> None:
    builder = EventBuilder(settings())
    with caplog.at_level(logging.WARNING, logger="moesif"):
        for _ in range(3):
            event = builder.build(asgi_record(user_id=unusable))
            assert event is not None and event["user_id"] == "jwt-user"
    assert len([r for r in caplog.records if "IDENTIFY_USER" in r.getMessage()]) == 1


def test_callback_id_whose_str_raises_gives_no_id_and_no_exception() -> None:
    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no")

    event = EventBuilder(settings()).build(asgi_record(user_id=Weird(), request_headers=[]))
    assert event is not None and event["user_id"] is None


def test_metadata_is_plain_json_and_truncation_is_recorded_there() -> None:
    class Custom:
        def __str__(self) -> str:
            return "custom!"

    metadata = {"plan": "pro", "n": 3, 1: "int key", "obj": Custom()}
    record = asgi_record(metadata=metadata, request_body_truncated=True, request_body_size=999_999)
    event = EventBuilder(settings()).build(record)
    assert event is not None
    assert event["metadata"] == {
        "plan": "pro",
        "n": 3,
        "1": "int key",
        "obj": "custom!",
        "_moesif": {"request_body_truncated": True, "request_body_size": 999_999},
    }
    assert "_moesif" not in metadata  # the app's own dict is left alone


def test_response_truncation_alone_creates_metadata() -> None:
    event = EventBuilder(settings()).build(asgi_record(response_body_truncated=True, response_body_size=70_000))
    assert event is not None
    assert event["metadata"] == {"_moesif": {"response_body_truncated": True, "response_body_size": 70_000}}


def test_non_dict_and_unserialisable_metadata_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    builder = EventBuilder(settings())
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(300):
        node["x"] = {}
        node = node["x"]

    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("nope")

    with caplog.at_level(logging.WARNING, logger="moesif"):
        for bad in (["a", "list"], "text", deep, {"u": Unprintable()}, {"big": 2**80}):
            event = builder.build(asgi_record(metadata=bad))
            assert event is not None
            dumps_event(event)
    assert "GET_METADATA" in caplog.text


def test_zip_bomb_in_a_body_is_capped_and_marked_truncated() -> None:
    bomb = gzip.compress(b"\x00" * (20 * 1024 * 1024))
    record = asgi_record(response_headers=[(b"content-encoding", b"gzip")], response_body=bomb, response_body_size=len(bomb))
    event = EventBuilder(settings(LOG_BODY_MAX_BYTES=1024)).build(record)
    assert event is not None
    assert event["response"]["transfer_encoding"] == "base64"
    assert len(base64.b64decode(event["response"]["body"])) == 4 * 65536
    assert event["metadata"]["_moesif"]["response_body_truncated"] is True


def test_weight_direction_and_blocked_by_come_from_the_record() -> None:
    event = EventBuilder(settings()).build(asgi_record(weight=10, direction="Outgoing", blocked_by="rule-1"))
    assert event is not None
    assert (event["weight"], event["direction"], event["blocked_by"]) == (10, "Outgoing", "rule-1")


def test_no_bodies_give_nulls() -> None:
    event = EventBuilder(settings()).build(asgi_record(request_body=None, response_body=b""))
    assert event is not None
    assert event["request"]["body"] is None and event["request"]["transfer_encoding"] is None
    assert event["response"]["body"] is None and event["response"]["transfer_encoding"] is None


def test_deeply_nested_json_body_still_serialises() -> None:
    body = b"[" * 600 + b"]" * 600
    event = EventBuilder(settings(MASK_DEFAULT_CREDENTIALS=False)).build(asgi_record(request_body=body))
    assert event is not None
    dumps_event(event)


def test_build_json_gives_the_serialised_event() -> None:
    builder = EventBuilder(settings())
    record = asgi_record()
    data = builder.build_json(record)
    assert data is not None
    assert orjson.loads(data) == builder.build(record)


def test_build_json_writes_json_bodies_as_they_came_unless_they_need_masking() -> None:
    builder = EventBuilder(settings())
    data = builder.build_json(asgi_record(request_body=b'{"price": 1.10}', response_body=b'{"id": 7, "Token": "t0k"}'))
    assert data is not None
    assert b'"body":{"price": 1.10}' in data  # not re-encoded: the number keeps its digits
    assert orjson.loads(data)["response"]["body"] == {"id": 7, "Token": MASK}


def test_surrogates_in_user_values_do_not_break_serialisation(caplog: pytest.LogCaptureFixture) -> None:
    record = asgi_record(user_id="bad\ud800id", request_header_style="pairs", request_headers=[("x-odd", "a\udcffb")])
    event = EventBuilder(settings()).build(record)
    assert event is not None
    assert orjson.loads(dumps_event(event))["user_id"] == "bad?id"


def test_a_broken_record_gives_none_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    class Hostile:
        def __bool__(self) -> bool:
            raise RuntimeError("boom")

    builder = EventBuilder(settings())
    with caplog.at_level(logging.WARNING, logger="moesif"):
        assert builder.build(asgi_record(full_url=Hostile())) is None
        assert builder.build(asgi_record(full_url=Hostile())) is None
    assert len([r for r in caplog.records if "could not build" in r.getMessage()]) == 1


def test_debug_logs_masked_names_never_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="moesif"):
        EventBuilder(settings(DEBUG=True)).build(asgi_record())
    text = caplog.text
    assert "authorization" in text and "password" in text and "token" in text
    assert "hunter2" not in text and "t0k" not in text and "jwt-user" not in text


header_bytes = st.binary(max_size=40)
header_text = st.text(max_size=40)
any_headers = st.one_of(
    st.lists(st.tuples(header_bytes, header_bytes), max_size=8),
    st.lists(st.tuples(header_text, header_text), max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), header_text, st.tuples(header_text)), max_size=4),
    st.dictionaries(header_text, header_text, max_size=4),
    st.none(),
)
known_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [b"authorization", b"content-encoding", b"content-type", b"x-forwarded-for", b"forwarded", b"x-client-ip"]
        ),
        st.one_of(
            header_bytes,
            st.sampled_from(
                [b"gzip", b"deflate", b"gzip, br", b"application/x-www-form-urlencoded", b"Bearer a.b.c", b"Basic ???"]
            ),
        ),
    ),
    max_size=6,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300),
    st.binary(max_size=200).map(gzip.compress),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=10)),
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
        max_leaves=20,
    ).map(orjson.dumps),
)


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    style=st.sampled_from(["asgi", "wsgi", "pairs", "bogus"]),
    request_headers=st.one_of(any_headers, known_headers),
    response_headers=st.one_of(any_headers, known_headers),
    request_body=bodies,
    response_body=bodies,
    user_id=st.one_of(st.none(), st.text(max_size=5), st.integers(), st.binary(max_size=5)),
    metadata=st.one_of(
        st.none(), st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3), st.text()
    ),
    status=st.one_of(st.integers(), st.text(max_size=3), st.none()),
)
def test_build_never_raises_and_always_serialises(
    style: str,
    request_headers: Any,
    response_headers: Any,
    request_body: bytes | None,
    response_body: bytes | None,
    user_id: Any,
    metadata: Any,
    status: Any,
) -> None:
    record = asgi_record(
        request_header_style=style,
        request_headers=request_headers,
        response_header_style=style,
        response_headers=response_headers,
        request_body=request_body,
        response_body=response_body,
        user_id=user_id,
        metadata=metadata,
        status=status,
    )
    builder = EventBuilder(settings(AUTHORIZATION_COMPANY_ID_FIELD="org.id"))
    event = builder.build(record)
    assert event is not None
    assert orjson.loads(dumps_event(event))["request"]["verb"] == "POST"
    data = builder.build_json(record)
    assert data is not None and orjson.loads(data) == orjson.loads(dumps_event(event))
    assert isinstance(event["response"]["status"], int)


def test_route_template_is_carried_in_metadata_next_to_the_apps_own() -> None:
    event = EventBuilder(settings()).build(asgi_record(route="/v1/orders/{order_id}", metadata={"team": "billing"}))
    assert event is not None
    assert event["metadata"] == {"team": "billing", "_moesif": {"route": "/v1/orders/{order_id}"}}
    plain = EventBuilder(settings()).build(asgi_record())
    assert plain is not None and plain["metadata"] is None


def test_outgoing_calls_take_no_user_from_their_own_token() -> None:
    event = EventBuilder(settings()).build(asgi_record(direction="Outgoing", full_url="https://partner.example/v1"))
    assert event is not None
    assert (event["direction"], event["user_id"], event["company_id"]) == ("Outgoing", None, None)


_RECORD_FIELDS = [name for name in RawExchange.__slots__ if name not in ("error", "route")]
_anything = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.floats(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), st.one_of(st.text(max_size=5), st.floats()), max_size=3),
    st.lists(
        st.tuples(st.one_of(st.binary(max_size=8), st.text(max_size=8)), st.one_of(st.binary(max_size=8), st.text(max_size=8))),
        max_size=4,
    ),
    st.sampled_from(["asgi", "wsgi", "pairs", "Incoming", "Outgoing"]),
)


def _mask_event_model_breaking_types(event: Any) -> Any:
    event.user_id = {"not": "a string"}
    event.response.body = b"raw bytes"
    event.metadata = {1: object()}
    return event


@hsettings(max_examples=200, suppress_health_check=list(HealthCheck), deadline=None)
@given(values=st.dictionaries(st.sampled_from(_RECORD_FIELDS), _anything, max_size=12), which=st.integers(0, 1))
def test_build_survives_any_value_in_any_record_field(values: dict[str, Any], which: int) -> None:
    record = RawExchange()
    for key, value in values.items():
        setattr(record, key, value)
    extra = {"MASK_EVENT_MODEL": _mask_event_model_breaking_types, "DEBUG": True} if which else {}
    builder = EventBuilder(settings(**extra))
    event = builder.build(record)
    assert event is not None
    assert isinstance(event["request"]["uri"], str) and isinstance(event["request"]["verb"], str)
    dumps_event(event)
    data = builder.build_json(record)
    assert data is not None and set(orjson.loads(data)) == set(event)
