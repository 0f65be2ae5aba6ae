"""Streamed Falcon responses go through the capture layer chunk by chunk, never buffered ahead."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import falcon
import falcon.asgi
import falcon.testing

from falcon_moesif import MoesifMiddleware
from moesif_core.headers import normalize_headers

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


def test_wsgi_stream_first_chunk_arrives_before_the_last_is_produced(recorder: Any) -> None:
    produced: list[int] = []

    class Feed:
        def on_get(self, req: Any, resp: Any) -> None:
            def chunks() -> Iterator[bytes]:
                for i in range(3):
                    produced.append(i)
                    yield f"chunk {i};".encode()

            resp.stream = chunks()
            resp.content_type = falcon.MEDIA_TEXT

    app = falcon.App(middleware=[MoesifMiddleware(SETTINGS, agent=recorder)])
    app.add_route("/feed", Feed())
    started: list[str] = []
    body = app(falcon.testing.create_environ("/feed"), lambda status, headers, exc_info=None: started.append(status))
    iterator = iter(body)
    assert next(iterator) == b"chunk 0;"
    assert produced == [0]  # the server pulled one chunk: nothing was read ahead
    assert recorder.records == []
    assert b"".join(iterator) == b"chunk 1;chunk 2;"
    body.close()  # type: ignore[attr-defined]
    assert started == ["200 OK"]
    [record] = recorder.records
    assert record.response_body == b"chunk 0;chunk 1;chunk 2;"
    assert record.route == "/feed"


def asgi_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.1"},
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


async def drive(app: Any, path: str, gate: asyncio.Event, produced: list[int], recorder: Any) -> list[bytes]:
    """Drive the ASGI app as a server would and check the first chunk leaves before the gate opens."""
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

    task = asyncio.create_task(app(asgi_scope(path), receive, outbox.put))
    try:
        start = await asyncio.wait_for(outbox.get(), 5)
        assert start["status"] == 200
        first = await asyncio.wait_for(outbox.get(), 5)
        assert produced == [0]  # the producer waits for the gate: nothing was read ahead
        assert recorder.records == []
        gate.set()
        await asyncio.wait_for(task, 5)
    finally:
        gate.set()
        disconnected.set()
    rest = []
    while not outbox.empty():
        rest.append(outbox.get_nowait().get("body", b""))
    return [first["body"], *rest]


async def test_asgi_stream_first_chunk_arrives_before_the_last_is_produced(recorder: Any) -> None:
    produced: list[int] = []
    gate = asyncio.Event()

    class Feed:
        async def on_get(self, req: Any, resp: Any) -> None:
            async def chunks() -> AsyncIterator[bytes]:
                for i in range(3):
                    produced.append(i)
                    yield f"chunk {i};".encode()
                    if i == 0:
                        await gate.wait()

            resp.stream = chunks()

    app = falcon.asgi.App(middleware=[MoesifMiddleware(SETTINGS, agent=recorder)])
    app.add_route("/feed", Feed())
    sent = await drive(app, "/feed", gate, produced, recorder)
    assert b"".join(sent) == b"chunk 0;chunk 1;chunk 2;"
    [record] = recorder.records
    assert record.response_body == b"chunk 0;chunk 1;chunk 2;"
    assert record.route == "/feed"


async def test_asgi_sse_events_are_teed_as_they_are_sent(recorder: Any) -> None:
    produced: list[int] = []
    gate = asyncio.Event()

    class Events:
        async def on_get(self, req: Any, resp: Any) -> None:
            async def emitter() -> AsyncIterator[Any]:
                for i in range(3):
                    produced.append(i)
                    yield falcon.asgi.SSEvent(data=f"tick {i}".encode())
                    if i == 0:
                        await gate.wait()

            resp.sse = emitter()

    app = falcon.asgi.App(middleware=[MoesifMiddleware(SETTINGS, agent=recorder)])
    app.add_route("/events", Events())
    sent = await drive(app, "/events", gate, produced, recorder)
    assert b"".join(sent) == b"data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n"
    [record] = recorder.records
    assert record.response_body == b"data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n"
    headers = normalize_headers(record.response_headers, record.response_header_style)
    assert headers["content-type"] == "text/event-stream"


def test_wsgi_file_stream_keeps_the_servers_file_wrapper_and_is_logged_without_its_body(recorder: Any) -> None:
    class FileWrapper:
        def __init__(self, file: Any, block_size: int = 8192) -> None:
            self.file = file

        def __iter__(self) -> Iterator[bytes]:
            return iter(lambda: self.file.read(4), b"")

    class Download:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.stream = io.BytesIO(b"file contents")
            resp.content_type = falcon.MEDIA_TEXT

    app = falcon.App(middleware=[MoesifMiddleware(SETTINGS, agent=recorder)])
    app.add_route("/download", Download())
    environ = falcon.testing.create_environ("/download")
    environ["wsgi.file_wrapper"] = FileWrapper
    body = app(environ, lambda status, headers, exc_info=None: None)
    assert isinstance(body, FileWrapper)  # the server's sendfile path, not our tee
    assert b"".join(body) == b"file contents"
    [record] = recorder.records
    assert (record.status, record.response_body, record.route) == (200, None, "/download")
