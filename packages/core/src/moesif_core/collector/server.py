"""The HTTP side of the local collector: reading requests, applying fault knobs, answering.

Built on the standard library's threading HTTP server (one thread per connection, HTTP/1.1
keep-alive) because it keeps up with the benchmark's load and needs no dependency; everything
it knows about state (store, config, faults) lives in :class:`~moesif_core.collector.LocalCollector`.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import orjson

from .payloads import ROUTES, PayloadError, decode_body, parse_items

if TYPE_CHECKING:
    from .local_collector import Fault, LocalCollector

__all__ = ["CollectorHTTPServer"]

_CONFIG_ETAG_HEADER: Final = "X-Moesif-Config-ETag"
_DRAIN_BEYOND_LIMIT: Final = 16 * 1024 * 1024  # read and discard this much of an oversize body so the client sees the 413
_READ_CHUNK: Final = 1024 * 1024


class CollectorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its collector and can cut every open connection on stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], collector: LocalCollector) -> None:
        self.collector = collector
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (or our own stop() cutting it) is not an error worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.stopping.is_set():
            return
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def cut_connections(self) -> None:
        """Shut down every open connection, so idle keep-alive clients see the collector go away."""
        self.stopping.set()
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _BodyTooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CollectorHTTPServer
    _seen: tuple[str, str, dict[str, str], float]
    _recorded: bool
    _fault: str | None
    _body_size: int
    _decoded_size: int | None
    server_version = "moesif-local-collector"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every request is recorded in LocalCollector.requests; stderr noise helps nobody

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    # -- plumbing ----------------------------------------------------------------------------

    def _read_body(self, limit: int) -> bytes:
        """The raw body, from Content-Length or chunked encoding; oversize raises after draining what is reasonable."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            raise PayloadError(
                400, "bad_content_length", f"Content-Length {length_text!r} is not a non-negative integer"
            ) from None
        if length > limit:
            self.close_connection = True
            if length <= limit + _DRAIN_BEYOND_LIMIT:
                remaining = length
                while remaining:
                    got = self.rfile.read(min(_READ_CHUNK, remaining))
                    if not got:
                        break
                    remaining -= len(got)
            raise _BodyTooLarge(length)
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            raise PayloadError(400, "short_body", f"the body ended after {len(data)} of {length} bytes")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise PayloadError(400, "bad_chunked", "malformed chunked transfer encoding") from None
            if chunk == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            size += chunk
            if size > limit:
                self.close_connection = True
                raise _BodyTooLarge(size)
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(1024)

    def _record(self, status: int | None) -> None:
        """Record this request once, before its answer goes out, so a client that saw the answer also sees the record."""
        if self._recorded:
            return
        self._recorded = True
        method, path, headers, arrived = self._seen
        self.server.collector.record_request(
            method, path, headers, status, self._body_size, arrived, self._fault, self._decoded_size
        )

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, content_type: str | None = "application/json"
    ) -> None:
        self._record(status)
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        if content_type and body and "content-type" not in sent:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> int:
        self._send(status, orjson.dumps({"error": code, "message": message}), headers)
        return status

    # -- the request ---------------------------------------------------------------------------

    def _handle(self) -> None:
        collector = self.server.collector
        arrived = time.time()
        target = urlsplit(self.path)
        route = target.path
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status: int | None = None
        self._seen = (self.command, self.path, headers, arrived)
        self._recorded = False
        self._fault = None
        self._body_size = 0
        self._decoded_size = None
        try:
            try:
                raw = self._read_body(collector.max_body_bytes)
            except _BodyTooLarge as exc:
                self._body_size = int(exc.args[0])
                status = self._error(
                    413,
                    "too_large",
                    f"the body has {exc.args[0]} bytes; the collector accepts at most "
                    f"{collector.max_body_bytes} (the Moesif API's limit is 50 MB per batch)",
                )
                return
            self._body_size = len(raw)
            if collector.delay > 0:
                time.sleep(collector.delay)
            data_route = ROUTES.get(route)
            if data_route is not None and self.command == "POST":
                fault = collector.take_fault()
                if fault is not None:
                    self._fault = fault.kind
                    status = self._apply_fault(fault)
                    return
                status = self._post_data(collector, data_route, raw, headers)
            elif route in ("/v1/config", "/v1/rules"):
                if self.command not in ("GET", "HEAD"):
                    status = self._error(405, "method_not_allowed", f"{route} answers GET only", {"Allow": "GET"})
                elif (status := self._check_app_id(collector, headers)) is None:
                    if route == "/v1/config":
                        config, etag = collector.current_config()
                        status = 200
                        self._send(200, orjson.dumps(config), {_CONFIG_ETAG_HEADER: etag})
                    else:
                        status = 200
                        self._send(200, orjson.dumps(collector.current_rules()))
            elif data_route is not None:
                status = self._error(405, "method_not_allowed", f"{route} answers POST only", {"Allow": "POST"})
            else:
                from .web import handle_web_request

                answer = handle_web_request(collector, self.command, route, target.query)
                if answer is None:
                    status = self._error(404, "not_found", f"no such endpoint: {self.command} {route}")
                else:
                    status, body, ctype = answer
                    self._send(status, body, {"Cache-Control": "no-store"}, content_type=ctype)
        except PayloadError as exc:
            status = self._error(exc.status, exc.code, exc.message)
        except (ConnectionError, OSError):
            self.close_connection = True
        except Exception as exc:  # a bug here must answer 500, never kill the connection silently
            self.close_connection = True
            try:
                status = self._error(500, "collector_bug", f"the local collector failed: {type(exc).__name__}: {exc}")
            except OSError:
                pass
        finally:
            self._record(status)

    def _check_app_id(self, collector: LocalCollector, headers: dict[str, str]) -> int | None:
        """Answer 401 and return it when the application id is missing or wrong; None when it is fine."""
        given = headers.get("x-moesif-application-id", "").strip()
        if not given:
            return self._error(
                401,
                "missing_application_id",
                "the X-Moesif-Application-Id header is missing or empty; set APPLICATION_ID in the middleware settings",
            )
        if collector.application_id is not None and given != collector.application_id:
            return self._error(
                401,
                "wrong_application_id",
                f"X-Moesif-Application-Id {_abbreviate(given)!r} is not this "
                f"collector's application id {_abbreviate(collector.application_id)!r}",
            )
        return None

    def _post_data(self, collector: LocalCollector, data_route: Any, raw: bytes, headers: dict[str, str]) -> int:
        refused = self._check_app_id(collector, headers)
        if refused is not None:
            return refused
        body = decode_body(raw, headers.get("content-encoding"), collector.max_body_bytes)
        self._decoded_size = len(body)
        items = parse_items(data_route, body, strict_events=collector.strict_events)
        collector.accept(data_route.kind, items)  # committed before we answer: a 201 means stored
        extra = {_CONFIG_ETAG_HEADER: collector.current_config()[1]} if data_route.kind == "events" else {}
        self._send(201, b"", extra)
        return 201

    def _apply_fault(self, fault: Fault) -> int | None:
        if fault.kind == "fail":
            self._send(fault.status, fault.body, dict(fault.headers))
            return fault.status
        if fault.kind == "hang":
            self._record(None)
            self.server.stopping.wait()
            self.close_connection = True
            return None
        # "close": a status line and part of the body, then the connection goes away.
        self.close_connection = True
        self._record(None)
        self.wfile.write(b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"partial')
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return None


def _abbreviate(app_id: str) -> str:
    """Application ids are credentials: show enough to compare, not enough to reuse."""
    return app_id if len(app_id) <= 8 else f"{app_id[:4]}...{app_id[-4:]}"
