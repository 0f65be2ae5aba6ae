"""falcon_moesif.MoesifMiddleware in falcon.App and falcon.asgi.App: what it records, what it leaves alone."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import falcon.testing
import pytest

_spec = importlib.util.spec_from_file_location("falcon_moesif_test_apps", pathlib.Path(__file__).with_name("apps.py"))
assert _spec is not None and _spec.loader is not None
apps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apps)

KINDS = ["wsgi", "asgi"]


def text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


TOKEN = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2ln"


@pytest.mark.parametrize("kind", KINDS)
def test_json_get_is_recorded_with_route_template_and_transaction_id(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    result = falcon.testing.TestClient(app).simulate_get("/items/9", query_string="x=1", headers={"Authorization": TOKEN})
    assert result.json == {"id": 9, "name": "widget"}
    [record] = recorder.records
    assert (record.method, record.path, record.query_string, record.status) == ("GET", "/items/9", "x=1", 200)
    assert record.route == "/items/{item_id:int}"
    assert record.response_body == result.content
    assert result.headers["x-moesif-transaction-id"] == record.transaction_id
    headers = {text(k).lower(): text(v) for k, v in record.response_headers}
    assert headers["content-type"].startswith("application/json")
    assert headers["content-length"] == str(len(result.content))


@pytest.mark.parametrize("kind", KINDS)
def test_post_media_is_teed_and_still_parsed_by_the_resource(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    result = falcon.testing.TestClient(app).simulate_post("/items", json={"name": "pen", "price": 1.5})
    assert result.status_code == 201
    assert result.json == {"created": {"name": "pen", "price": 1.5}}
    [record] = recorder.records
    assert record.request_body == b'{"name": "pen", "price": 1.5}'
    assert (record.status, record.route) == (201, "/items")


@pytest.mark.parametrize("kind", KINDS)
def test_raw_body_read_from_bounded_stream_and_data_response(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    payload = bytes(range(256)) * 64
    result = falcon.testing.TestClient(app).simulate_post(
        "/raw", body=payload, headers={"Content-Type": "application/octet-stream"}
    )
    assert result.content == b"got " + payload
    [record] = recorder.records
    assert record.request_body == payload
    assert record.response_body == b"got " + payload


@pytest.mark.parametrize("kind", KINDS)
def test_text_response_and_head_request(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    client = falcon.testing.TestClient(app)
    assert client.simulate_get("/text").text == "plain words"
    assert client.simulate_head("/text").status_code == 200
    text, head = recorder.records
    assert text.response_body == b"plain words"
    assert (head.method, head.status, head.response_body) == ("HEAD", 200, None)


@pytest.mark.parametrize("kind", KINDS)
def test_404_is_recorded_without_a_route(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    result = falcon.testing.TestClient(app).simulate_get("/nowhere")
    assert result.status_code == 404
    [record] = recorder.records
    assert (record.status, record.route, record.path) == (404, None, "/nowhere")
    assert record.response_body == result.content


@pytest.mark.parametrize("kind", KINDS)
def test_exception_is_recorded_as_falcon_answers_it(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    result = falcon.testing.TestClient(app).simulate_get("/boom")
    assert result.status_code == 500  # Falcon's default handler for Exception, unchanged by us
    [record] = recorder.records
    assert (record.status, record.route) == (500, "/boom")


@pytest.mark.parametrize("kind", KINDS)
def test_resource_can_skip_the_call(kind: str, recorder: Any) -> None:
    app, _ = apps.build(kind, recorder)
    assert falcon.testing.TestClient(app).simulate_get("/quiet").text == "shh"
    assert recorder.records == []
    assert recorder.counts == {"skipped": 1}


def test_wsgi_callbacks_get_the_component_environ_and_headers(recorder: Any) -> None:
    seen: list[Any] = []

    def identify_user(app: Any, environ: Any, headers: Any) -> str:
        seen.append(app)
        return str(environ["HTTP_X_USER"])

    def metadata(app: Any, environ: Any) -> dict[str, Any]:
        return {"route": environ["moesif"].route}

    app, middleware = apps.build("wsgi", recorder, IDENTIFY_USER=identify_user, GET_METADATA=metadata)
    falcon.testing.TestClient(app).simulate_get("/items/3", headers={"X-User": "u-7"})
    [record] = recorder.records
    assert seen == [middleware]
    assert (record.user_id, record.metadata) == ("u-7", {"route": "/items/{item_id:int}"})


def test_asgi_callbacks_get_the_falcon_request_sync_or_async(recorder: Any) -> None:
    seen: list[Any] = []

    async def identify_user(request: Any, response: Any) -> str:
        seen.append(request)
        return str(request.get_header("X-User"))

    def metadata(request: Any, response: Any) -> dict[str, Any]:
        return {"route": request.uri_template, "status": response.status_code}

    app, _ = apps.build("asgi", recorder, IDENTIFY_USER=identify_user, GET_METADATA=metadata)
    falcon.testing.TestClient(app).simulate_get("/items/3", headers={"X-User": "u-7"})
    [record] = recorder.records
    assert isinstance(seen[0], falcon.asgi.Request)
    assert (record.user_id, record.metadata) == ("u-7", {"route": "/items/{item_id:int}", "status": 200})


async def test_asgi_lifespan_shutdown_flushes(recorder: Any) -> None:
    app, _ = apps.build("asgi", recorder)
    async with falcon.testing.ASGIConductor(app) as conductor:  # runs the lifespan protocol around the block
        await conductor.simulate_get("/items/1")
        assert recorder.flushes == 0
    assert recorder.flushes == 1
    assert len(recorder.records) == 1


async def test_asgi_response_headers_read_the_same_with_or_without_callbacks(recorder: Any) -> None:
    # Without callbacks the component records Falcon's text pairs; with them, the start message's
    # byte pairs the callbacks see: the event must not tell the two apart.
    from moesif_core.headers import normalize_headers
    from moesif_core.testing import RecordingAgent

    with_callbacks = RecordingAgent()
    plain, _ = apps.build("asgi", recorder)
    called, _ = apps.build("asgi", with_callbacks, IDENTIFY_USER=lambda request, response: "u-1")
    for app in (plain, called):
        # Driven on the test's loop: older Falcons' synchronous client needs a current event loop.
        async with falcon.testing.ASGIConductor(app) as conductor:
            await conductor.simulate_get("/items/9")
    [record], [other] = recorder.records, with_callbacks.records
    assert (record.response_header_style, other.response_header_style) == ("pairs", "asgi")
    seen = normalize_headers(record.response_headers, record.response_header_style)
    expected = normalize_headers(other.response_headers, other.response_header_style)
    assert seen.pop("x-moesif-transaction-id") == record.transaction_id
    assert expected.pop("x-moesif-transaction-id") == other.transaction_id
    assert seen == expected
    assert seen["content-type"].startswith("application/json")
