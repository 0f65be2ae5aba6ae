"""fastapi_moesif.MoesifMiddleware under real FastAPI and Starlette apps: what it records, what it leaves alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fastapi_moesif import MoesifMiddleware

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


def client(app: Any, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    # httpx's ASGITransport rather than TestClient: Starlette 0.27's TestClient needs httpx < 0.28.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


class Item(BaseModel):
    name: str
    price: float


def build_app(recorder: Any, **settings: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(MoesifMiddleware, settings={**SETTINGS, **settings}, agent=recorder)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget"}

    @app.post("/items")
    def create(item: Item) -> Item:
        return item

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {"received": len(body), "json": await request.json()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("view failed")

    @app.get("/later")
    async def later(tasks: BackgroundTasks) -> dict[str, str]:
        def work() -> None:
            app.state.seen_by_task = len(recorder.records)

        tasks.add_task(work)
        return {"status": "accepted"}

    @app.get("/who")
    async def who(request: Request) -> str:
        request.state.user = "u-state"
        return "ok"

    return app


async def test_json_get_and_post_are_recorded_with_the_route_template(recorder: Any) -> None:
    token = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2ln"
    async with client(build_app(recorder)) as c:
        got = await c.get("/items/9?x=1", headers={"Authorization": token})
        # Sent as explicit bytes: httpx's own JSON spacing differs between releases.
        posted = await c.post("/items", content=b'{"name":"pen","price":1.5}', headers={"content-type": "application/json"})
    assert got.json() == {"id": 9, "name": "widget"}
    assert posted.json() == {"name": "pen", "price": 1.5}
    first, second = recorder.records
    assert (first.method, first.path, first.query_string, first.status, first.route) == (
        "GET",
        "/items/9",
        "x=1",
        200,
        "/items/{item_id}",
    )
    assert (b"authorization", token.encode()) in first.request_headers
    assert first.response_body == b'{"id":9,"name":"widget"}'
    assert got.headers["x-moesif-transaction-id"] == first.transaction_id
    assert (second.route, second.status) == ("/items", 200)
    assert second.request_body == b'{"name":"pen","price":1.5}'
    assert second.response_body == b'{"name":"pen","price":1.5}'


async def test_request_body_is_still_read_by_the_app(recorder: Any) -> None:
    async with client(build_app(recorder)) as c:
        response = await c.post("/echo", content=b'{"a":[1,2,3]}', headers={"content-type": "application/json"})
    assert response.json() == {"received": len(b'{"a":[1,2,3]}'), "json": {"a": [1, 2, 3]}}
    [record] = recorder.records
    assert record.request_body == b'{"a":[1,2,3]}'


async def test_404_and_validation_error_are_recorded(recorder: Any) -> None:
    async with client(build_app(recorder)) as c:
        assert (await c.post("/items", json={"name": 1})).status_code == 422
        assert (await c.get("/nowhere")).status_code == 404
    invalid, missing = recorder.records
    assert (invalid.status, invalid.route) == (422, "/items")
    assert b"price" in invalid.response_body
    assert (missing.status, missing.route) == (404, None)


async def test_unhandled_exception_is_recorded_and_still_raised(recorder: Any) -> None:
    app = build_app(recorder)
    async with client(app) as c:
        with pytest.raises(RuntimeError, match="view failed"):
            await c.get("/boom")
    async with client(app, raise_app_exceptions=False) as c:
        assert (await c.get("/boom")).status_code == 500
    for record in recorder.records:
        assert (record.status, record.error, record.route) == (500, "RuntimeError", "/boom")
    assert len(recorder.records) == 2


async def test_background_task_runs_after_the_event_is_complete(recorder: Any) -> None:
    app = build_app(recorder)
    async with client(app) as c:
        response = await c.get("/later")
    assert response.json() == {"status": "accepted"}
    assert app.state.seen_by_task == 1  # the event was handed over before the task ran, and the task still ran
    assert recorder.records[0].status == 200


async def test_callbacks_get_a_starlette_request_sync_or_async(recorder: Any) -> None:
    seen: list[Any] = []

    async def identify_user(request: Any, response: Any) -> str:
        seen.append(request)
        await asyncio.sleep(0)
        return str(request.state.user)

    def metadata(request: Any, response: Any) -> dict[str, Any]:
        return {"path": request.url.path, "status": response.status_code}

    app = build_app(recorder, IDENTIFY_USER=identify_user, GET_METADATA=metadata)
    async with client(app) as c:
        await c.get("/who")
    [record] = recorder.records
    assert isinstance(seen[0], Request)
    assert record.user_id == "u-state"
    assert record.metadata == {"path": "/who", "status": 200}


async def test_lifespan_shutdown_flushes_before_the_server_is_told_it_is_done(recorder: Any) -> None:
    app = build_app(recorder)
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: list[str] = []
    flushes_at_shutdown_complete: list[int] = []

    async def send(message: Any) -> None:
        outbox.append(message["type"])
        if message["type"] == "lifespan.shutdown.complete":
            flushes_at_shutdown_complete.append(recorder.flushes)

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send))
    async with client(app) as c:
        await c.get("/items/1")
    assert recorder.flushes == 0
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 5)
    assert outbox == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert flushes_at_shutdown_complete == [1]
    assert len(recorder.records) == 1


async def test_plain_starlette_app_is_served_and_recorded(recorder: Any) -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {(await request.body()).decode()}")

    app = Starlette(
        routes=[Route("/hello", hello, methods=["POST"])],
        middleware=[Middleware(MoesifMiddleware, settings=SETTINGS, agent=recorder)],
    )
    async with client(app) as c:
        response = await c.post("/hello", content=b"world")
    assert response.text == "hello world"
    [record] = recorder.records
    assert (record.status, record.request_body, record.response_body, record.host) == (200, b"world", b"hello world", "api.test")


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.test")],
        "client": ("127.0.0.1", 5000),
        "server": ("api.test", 80),
    }


async def test_streaming_and_sse_are_not_buffered(recorder: Any) -> None:
    app = build_app(recorder)
    produced: list[int] = []
    gate = asyncio.Event()

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            for i in range(3):
                produced.append(i)
                yield f"data: {i}\n\n".encode()
                if i == 0:
                    await gate.wait()

        return StreamingResponse(stream(), media_type="text/event-stream")

    # Driven as a server drives it: httpx's ASGITransport would buffer the whole response.
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    disconnected = asyncio.Event()
    requested = False

    async def receive() -> Any:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    task = asyncio.create_task(app(http_scope("/events"), receive, outbox.put))
    try:
        start = await asyncio.wait_for(outbox.get(), 5)
        assert start["status"] == 200
        first = await asyncio.wait_for(outbox.get(), 5)
        assert first["body"] == b"data: 0\n\n"
        assert produced == [0]  # the producer waits for the gate: nothing was read ahead
        assert recorder.records == []
        gate.set()
        await asyncio.wait_for(task, 5)
    finally:
        disconnected.set()
        gate.set()
    [record] = recorder.records
    assert record.response_body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert record.route == "/events"
