"""Fixtures of the outgoing-capture tests: a real upstream API on 127.0.0.1, and capture always stopped after a test."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from moesif_core.outgoing import stop_capture

STREAM_CHUNK = b"0123456789abcdef" * 512  # 8 KiB
STREAM_CHUNKS = 25  # 200 KiB in all


class _Upstream(http.server.BaseHTTPRequestHandler):
    """The API the app calls: JSON, error statuses, echo, gzip, redirects and a chunked stream."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "yes")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            self._send(status, json.dumps({"error": f"status {status}"}).encode())
        elif path == "/redirect":
            self._send(302, b"", "text/plain", {"Location": "/json?from=redirect"})
        elif path == "/gzip":
            self._send(200, gzip.compress(b'{"zipped": true}'), extra={"Content-Encoding": "gzip"})
        elif path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(STREAM_CHUNKS):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(STREAM_CHUNK), STREAM_CHUNK))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, json.dumps({"path": self.path, "user": "u-42"}).encode())

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(size)
        self._send(201, data, self.headers.get("Content-Type") or "application/octet-stream")


@pytest.fixture
def upstream() -> Iterator[str]:
    """Base URL of a real HTTP/1.1 server on 127.0.0.1 playing a third-party API."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def refused_url() -> str:
    """A 127.0.0.1 URL nothing listens on (the port was bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing-here"


@pytest.fixture(autouse=True)
def _capture_stopped() -> Iterator[None]:
    yield
    stop_capture(timeout=2.0)
