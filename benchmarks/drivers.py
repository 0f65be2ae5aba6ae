"""Drive an app without HTTP: a hand-made WSGI environ, or a raw ASGI scope with receive and send.

Each request gets a fresh environ/scope (servers build one per request too) and its whole
response is consumed, ``close()`` included, so the middleware finishes its record as under a
real server. ``check`` runs one request and returns its status and body, so a benchmark of an
app answering 404 or 500 is caught before it is timed.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any, Final

from .apps import ECHO_BODY, ECHO_PATH, SMALL_PATH

__all__ = ["CASES", "Driver", "asgi_driver", "wsgi_driver"]

# case -> (method, path, body)
CASES: Final[dict[str, tuple[str, str, bytes]]] = {
    "get": ("GET", SMALL_PATH, b""),
    "post": ("POST", ECHO_PATH, ECHO_BODY),
}

_USER_AGENT: Final = "bench-client/1.0"


class Driver:
    """``run(n)`` serves ``n`` requests of one case back to back; ``check()`` -> (status, body) of one."""

    def __init__(self, run: Callable[[int], None], check: Callable[[], tuple[int, bytes]]) -> None:
        self.run = run
        self.check = check


def _wsgi_environ(method: str, path: str, body: bytes) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50123",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": _USER_AGENT,
        "HTTP_ACCEPT": "application/json",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def wsgi_driver(app: Any, case: str) -> Driver:
    method, path, body = CASES[case]
    base = _wsgi_environ(method, path, body)
    status_seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        status_seen.append(status)
        return _ignore_write

    def one() -> bytes:
        environ = base.copy()
        environ["wsgi.input"] = io.BytesIO(body)
        result = app(environ, start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def run(n: int) -> None:
        for _ in range(n):
            one()
        status_seen.clear()

    def check() -> tuple[int, bytes]:
        status_seen.clear()
        payload = one()
        return int(status_seen[-1][:3]) if status_seen else 0, payload

    return Driver(run, check)


def _ignore_write(data: bytes) -> None:
    return None


def asgi_driver(app: Any, case: str, loop: asyncio.AbstractEventLoop) -> Driver:
    method, path, body = CASES[case]
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", _USER_AGENT.encode()),
        (b"accept", b"application/json"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
    ]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": list(headers),
            "client": ("127.0.0.1", 50123),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

    async def one(sink: list[Any] | None) -> None:
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            # As a server does: nothing more until the client goes away (never, here); whoever
            # waits for a disconnect is cancelled when the response is complete.
            await asyncio.get_running_loop().create_future()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if sink is not None:
                sink.append(message)

        await app(scope(), receive, send)

    async def many(n: int) -> None:
        for _ in range(n):
            await one(None)

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    def check() -> tuple[int, bytes]:
        sink: list[Any] = []
        loop.run_until_complete(one(sink))
        status = next((m.get("status", 0) for m in sink if m.get("type") == "http.response.start"), 0)
        payload = b"".join(m.get("body", b"") for m in sink if m.get("type") == "http.response.body")
        return int(status), payload

    return Driver(run, check)
