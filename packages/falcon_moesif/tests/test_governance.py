"""Governance rules in falcon.App and falcon.asgi.App: blocked calls answered by the rule, the rest captured whole.

With rules served, the component plays the capture layer's call around itself (the bridges);
without, it records directly. Both must capture the same call the same way.
"""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest

from moesif_core.remote_config import RemoteConfig

_spec = importlib.util.spec_from_file_location("falcon_moesif_test_apps", pathlib.Path(__file__).with_name("apps.py"))
assert _spec is not None and _spec.loader is not None
apps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apps)

KINDS = ["wsgi", "asgi"]


@pytest.fixture(autouse=True)
def _current_event_loop() -> Iterator[None]:
    # Falcon 3's TestClient runs an ASGI app on asyncio's current loop, and an async test earlier
    # in the session (pytest-asyncio) leaves none set.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


CLOSED_ITEMS = {
    "_id": "items-closed",
    "type": "regex",
    "block": True,
    "regex_config": [{"conditions": [{"path": "request.route", "value": "^/items/"}]}],
    "response": {"status": 503, "headers": {"Retry-After": "60"}, "body": {"error": "closed"}},
}


def text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def governed(recorder: Any) -> Any:
    recorder.config = RemoteConfig.from_payloads({}, [CLOSED_ITEMS], etag="1")
    return recorder


@pytest.mark.parametrize("kind", KINDS)
def test_a_blocking_rule_answers_instead_of_the_resource(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, governed(recorder))
    result = falcon.testing.TestClient(app).simulate_get("/items/3")
    assert (result.status_code, result.json) == (503, {"error": "closed"})
    assert result.headers["retry-after"] == "60"
    [record] = recorder.records
    assert (record.status, record.blocked_by) == (503, "items-closed")
    assert result.headers["x-moesif-transaction-id"] == record.transaction_id


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_no_rule_blocks_is_captured_whole(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, governed(recorder))
    payload = bytes(range(256)) * 8
    result = falcon.testing.TestClient(app).simulate_post(
        "/raw", body=payload, headers={"Content-Type": "application/octet-stream"}
    )
    assert result.content == b"got " + payload
    [record] = recorder.records
    assert (record.status, record.blocked_by, record.route) == (200, None, "/raw")
    assert (record.request_body, record.response_body) == (payload, result.content)
    assert result.headers["x-moesif-transaction-id"] == record.transaction_id


@pytest.mark.parametrize("kind", KINDS)
def test_same_record_with_and_without_rules(kind: str) -> None:
    from moesif_core.testing import RecordingAgent

    seen = []
    for agent in (RecordingAgent(), governed(RecordingAgent())):
        app, _ = apps.build(kind, agent)
        falcon.testing.TestClient(app).simulate_post("/items", json={"name": "pen"})
        [record] = agent.records
        headers = sorted(text(name).lower() for name, _ in record.response_headers)
        seen.append((record.status, record.route, record.request_body, record.response_body, headers))
    assert seen[0] == seen[1]
