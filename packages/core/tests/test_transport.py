"""The stdlib HTTP transport against real sockets on 127.0.0.1: keep-alive, timeouts, TLS, headers."""

from __future__ import annotations

import http.server
import importlib
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from moesif_core.transport import HttpTransport, TransportError, gzip_body, gzip_parts


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.server.seen.append((self.path, dict(self.headers)))  # type: ignore[attr-defined]
        self.send_response(201)
        self.send_header("Content-Length", "0")
        if self.server.close_after_each:  # type: ignore[attr-defined]
            self.send_header("Connection", "close")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.close_after_each = False

    def get_request(self) -> tuple[socket.socket, object]:
        self.connections += 1
        return super().get_request()


@pytest.fixture
def server() -> Iterator[_CountingServer]:
    srv = _CountingServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def transport_to(base_uri: str, read_timeout: float = 2.0) -> HttpTransport:
    return HttpTransport(base_uri, application_id="app-id", user_agent="ua/1", connect_timeout=1.0, read_timeout=read_timeout)


def test_one_connection_carries_many_posts(server: _CountingServer) -> None:
    transport = transport_to(f"http://127.0.0.1:{server.server_address[1]}")
    for _ in range(10):
        assert transport.request("POST", "/v1/events/batch", gzip_body(b"[]"), gzip=True).status == 201
    transport.close()
    assert server.connections == 1


def test_a_connection_the_server_closed_is_replaced_transparently(server: _CountingServer) -> None:
    server.close_after_each = True
    transport = transport_to(f"http://127.0.0.1:{server.server_address[1]}")
    for _ in range(3):
        assert transport.request("POST", "/v1/events/batch", b"[]").status == 201
    assert server.connections == 3


def test_posts_carry_the_contract_headers_and_the_base_path(server: _CountingServer) -> None:
    transport = transport_to(f"http://127.0.0.1:{server.server_address[1]}/prefix/")
    transport.request("POST", "/v1/events/batch", gzip_body(b"[]"), gzip=True)
    path, headers = server.seen[0]
    assert path == "/prefix/v1/events/batch"
    assert headers["X-Moesif-Application-Id"] == "app-id"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["User-Agent"] == "ua/1"


def test_a_server_that_never_answers_raises_after_the_read_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        transport = transport_to(f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout=0.2)
        with pytest.raises(TransportError, match="timed out"):
            transport.request("POST", "/v1/events/batch", b"[]")
    finally:
        listener.close()


def test_a_refused_connection_raises_transport_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match="ConnectionRefused"):
        transport_to(f"http://127.0.0.1:{port}").request("GET", "/v1/config")


def test_an_invalid_base_uri_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="BASE_URI"):
        transport_to("ftp://example.com")


def test_tls_is_verified_so_a_self_signed_collector_is_refused(self_signed_cert: tuple[Path, Path]) -> None:
    cert, key = self_signed_cert
    srv = _CountingServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base_uri = f"https://127.0.0.1:{srv.server_address[1]}"
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            transport_to(base_uri).request("POST", "/v1/events/batch", b"[]")
        # The same server is fine for a client that trusts its certificate: the refusal was verification.
        trusting = HttpTransport(
            base_uri,
            application_id="a",
            user_agent="u",
            connect_timeout=1.0,
            read_timeout=2.0,
            ssl_context=ssl.create_default_context(cafile=str(cert)),
        )
        assert trusting.request("POST", "/v1/events/batch", b"[]").status == 201
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_gzip_parts_is_the_gzip_of_the_concatenation(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip
    import zlib

    from moesif_core import transport

    if backend == "isal":
        # A dependency wherever it ships wheels: the project's test environment must have it.
        name = "isal.isal_zlib"
        isal_zlib = importlib.import_module(name) if os.environ.get("MOESIF_EXPECT_NATIVE") else pytest.importorskip(name)
        assert transport._deflate is isal_zlib and transport.GZIP_IMPLEMENTATION == "isal"
    else:
        monkeypatch.setattr(transport, "_deflate", zlib)
    parts = (b"[", b'{"a":1},' * 1000 + b'{"a":2}', b"]")
    assert gzip.decompress(gzip_parts(parts)) == b"".join(parts)
    assert gzip.decompress(gzip_parts(())) == b""
    assert gzip.decompress(gzip_body(b"[1]")) == b"[1]"
