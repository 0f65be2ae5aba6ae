"""The ASGI capture layer under a real FastAPI app: what it records and what it leaves alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from moesif_core.annotations import annotations_of
from moesif_core.asgi import MoesifMiddleware

# Every test here runs on the C request path and on the Python one (see conftest.asgi_request_path).
pytestmark = pytest.mark.usefixtures("asgi_request_path")


class Item(BaseModel):
    name: str
    price: float


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget"}

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("view failed")

    @app.get("/quiet")
    async def quiet(request: Request) -> str:
        ann = annotations_of(request.scope)
        assert ann is not None
        ann.skip = True
        return "shh"

    return app


def wrap(agent: Any, app: Any = None, **settings: Any) -> MoesifMiddleware:
    middleware = MoesifMiddleware(
        app or build_app(), settings={"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9", **settings}, agent=agent
    )
    agent.settings = middleware.settings
    return middleware


def client(app: Any, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def test_json_get_is_recorded(recording_agent: Any) -> None:
    async with client(wrap(recording_agent)) as c:
        response = await c.get("/items/9?x=1", headers={"Authorization": "Bearer a.b.c"})
    assert response.json() == {"id": 9, "name": "widget"}
    [record] = recording_agent.records
    assert (record.method, record.path, record.query_string, record.status, record.host) == (
        "GET",
        "/items/9",
        "x=1",
        200,
        "api.test",
    )
    assert (b"authorization", b"Bearer a.b.c") in record.request_headers
    assert record.response_body == b'{"id":9,"name":"widget"}'
    assert response.headers["x-moesif-transaction-id"] == record.transaction_id


async def test_post_body_is_teed_and_still_read_by_the_app(recording_agent: Any) -> None:
    async with client(wrap(recording_agent)) as c:
        response = await c.post("/items", json={"name": "pen", "price": 1.5})
    assert response.json() == {"name": "pen", "price": 1.5}
    [record] = recording_agent.records
    assert record.request_body == b'{"name":"pen","price":1.5}'


async def test_large_chunked_body_is_cut_but_the_app_gets_all(recording_agent: Any) -> None:
    payload = b"x" * (5 * 1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 64 * 1024):
            yield payload[i : i + 64 * 1024]

    async with client(wrap(recording_agent)) as c:
        response = await c.post("/raw", content=chunks())  # no Content-Length: chunked
    assert response.json() == {"received": len(payload)}
    [record] = recording_agent.records
    assert record.request_body == payload[: recording_agent.settings.log_body_max_bytes]
    assert record.request_body_size == len(payload)
    assert record.request_body_truncated


async def test_validation_error_and_404_are_recorded(recording_agent: Any) -> None:
    async with client(wrap(recording_agent)) as c:
        assert (await c.post("/items", json={"name": 1})).status_code == 422
        assert (await c.get("/nowhere")).status_code == 404
    assert [r.status for r in recording_agent.records] == [422, 404]


async def test_exception_is_recorded_as_500_and_propagates(recording_agent: Any) -> None:
    async with client(wrap(recording_agent)) as c:
        with pytest.raises(RuntimeError, match="view failed"):
            await c.get("/boom")
    [record] = recording_agent.records
    assert record.status == 500  # FastAPI's own error middleware answered 500 through us, then re-raised


async def test_streaming_response_first_chunk_arrives_before_the_last_is_produced(recording_agent: Any) -> None:
    app = build_app()
    produced: list[int] = []
    gate = asyncio.Event()

    @app.get("/sse")
    async def sse() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            for i in range(3):
                produced.append(i)
                yield f"data: {i}\n\n".encode()
                if i == 0:
                    await gate.wait()

        return StreamingResponse(events(), media_type="text/event-stream")

    # Driven as a server drives it (httpx's ASGITransport would buffer the whole response).
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    disconnected = asyncio.Event()

    async def receive() -> Any:
        if not hasattr(receive, "sent"):
            receive.sent = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/sse",
        "raw_path": b"/sse",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.test")],
        "client": ("127.0.0.1", 5000),
        "server": ("api.test", 80),
    }
    task = asyncio.create_task(wrap(recording_agent, app)(scope, receive, outbox.put))
    start = await asyncio.wait_for(outbox.get(), 5)
    assert start["status"] == 200
    first = await asyncio.wait_for(outbox.get(), 5)
    assert first["body"] == b"data: 0\n\n"
    assert produced == [0]  # the producer is still waiting: nothing was buffered ahead
    assert recording_agent.records == []
    gate.set()
    await asyncio.wait_for(task, 5)
    disconnected.set()
    [record] = recording_agent.records
    assert record.response_body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_sync_and_async_callbacks_get_request_and_response(recording_agent: Any) -> None:
    async def identify_user(request: Any, response: Any) -> str:
        return str(request.headers["x-user"])

    def identify_company(request: Any, response: Any) -> str:
        return f"co-{response.status_code}"

    async def metadata(request: Any, response: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"method": request.method, "type": response.headers["content-type"]}

    mw = wrap(
        recording_agent,
        IDENTIFY_USER=identify_user,
        IDENTIFY_COMPANY=identify_company,
        GET_METADATA=metadata,
        GET_SESSION_TOKEN=lambda request, response: "s-1",
    )
    async with client(mw) as c:
        await c.get("/items/1", headers={"X-User": "u-7"})
    [record] = recording_agent.records
    assert (record.user_id, record.company_id, record.session_token) == ("u-7", "co-200", "s-1")
    assert record.metadata == {"method": "GET", "type": "application/json"}


async def test_raising_callbacks_never_fail_the_request(recording_agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: Any, response: Any) -> Any:
        raise ValueError("nope")

    mw = wrap(recording_agent, IDENTIFY_USER=broken, IDENTIFY_COMPANY=lambda r, s: 1 / 0, GET_METADATA=broken, SKIP=broken)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        async with client(mw) as c:
            for _ in range(3):
                assert (await c.get("/items/1")).status_code == 200
    assert len(recording_agent.records) == 3
    assert len([r for r in caplog.records if "IDENTIFY_USER raised" in r.getMessage()]) == 1


async def test_skip_by_callback_and_by_route(recording_agent: Any) -> None:
    mw = wrap(recording_agent, SKIP=lambda request, response: request.path == "/items/1")
    async with client(mw) as c:
        await c.get("/items/1")
        assert (await c.get("/quiet")).json() == "shh"
        await c.get("/items/2")
    assert [r.path for r in recording_agent.records] == ["/items/2"]
    assert recording_agent.counts["skipped"] == 2


async def test_root_path_is_the_mount_point_once(recording_agent: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = wrap(recording_agent, app)
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": "/api/v1/users",
        "root_path": "/api",
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
        "client": ("10.0.0.1", 5000),
        "server": ("example.com", 443),
    }
    await mw(scope, receive, send)
    [record] = recording_agent.records
    assert (record.root_path, record.path, record.client_addr, record.status) == ("/api", "/v1/users", "10.0.0.1", 204)


async def test_lifespan_shutdown_flushes_before_completing(recording_agent: Any) -> None:
    order: list[str] = []
    recording_agent.flush = lambda timeout=None: order.append("flush") or True  # type: ignore[method-assign]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    mw = wrap(recording_agent, app)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Any:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        order.append(message["type"])

    await mw({"type": "lifespan"}, receive, send)
    assert order == ["lifespan.startup.complete", "flush", "lifespan.shutdown.complete"]


async def test_client_disconnect_before_response_is_recorded_once(recording_agent: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "http.disconnect"

    mw = wrap(recording_agent, app)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        raise AssertionError("nothing should be sent")

    await mw({"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-length", b"3")]}, receive, send)
    [record] = recording_agent.records
    assert record.status == 499


async def test_raw_app_raising_before_responding_is_recorded_as_500(recording_agent: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise LookupError("no such thing")

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    with pytest.raises(LookupError):
        await wrap(recording_agent, app)({"type": "http", "method": "GET", "path": "/x", "headers": []}, receive, send)
    [record] = recording_agent.records
    assert (record.status, record.error) == (500, "LookupError")


@pytest.mark.parametrize("extra", [None, [(b"x-rule", b"1"), (b"content-type", b"text/plain")]])
def test_start_pairs_records_what_the_start_message_route_records(recording_agent: Any, extra: Any) -> None:
    # Glue holding the response as text (Falcon) uses start_pairs; the event must read the same.
    from moesif_core.headers import normalize_headers

    mw = wrap(recording_agent)
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"host", b"h")]}
    pairs = [("content-type", "application/json"), ("content-length", "2")]
    by_pairs, _ = mw.begin_exchange(dict(scope))
    by_message, _ = mw.begin_exchange(dict(scope))
    assert by_pairs is not None and by_message is not None
    by_pairs.extra_headers = by_message.extra_headers = extra
    by_pairs.start_pairs(201, pairs)
    by_message.start({"type": "http.response.start", "status": 201, "headers": [(k.encode(), v.encode()) for k, v in pairs]})
    seen, expected = (
        normalize_headers(e.record.response_headers, e.record.response_header_style) for e in (by_pairs, by_message)
    )
    assert seen.pop("x-moesif-transaction-id") == by_pairs.record.transaction_id
    assert expected.pop("x-moesif-transaction-id") == by_message.record.transaction_id
    assert seen == expected
    assert (by_pairs.record.status, by_pairs.keep) == (201, True)
    assert seen["content-type"] == ("text/plain" if extra else "application/json")


async def test_a_body_sent_after_the_last_one_leaves_the_handed_over_record_alone(recording_agent: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first", "more_body": False})
        await send({"type": "http.response.body", "body": b"second, against the protocol", "more_body": False})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"host", b"example.com")]}
    await wrap(recording_agent, app)(scope, receive, send)
    [record] = recording_agent.records
    assert (record.response_body, record.response_body_size) == (b"first", 5)
    assert len(sent) == 3  # what the app sends still goes out: the server decides
