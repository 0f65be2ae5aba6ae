"""A second local service for the demo app to call with ``requests``, so outgoing capture has something to record.

It stands in for a third-party API (exchange rates); it listens on 127.0.0.1 only and is stopped
with the rest of the demo.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import orjson

__all__ = ["RatesService"]

_RATES: Final = {"EUR": 0.92, "GBP": 0.79, "JPY": 151.3}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/v1/rates":
            self._answer(404, {"error": "not found"})
            return
        self._answer(200, {"base": "USD", "rates": _RATES})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the demo's output is the summary, not access logs
        pass


class RatesService:
    """``GET /v1/rates`` on 127.0.0.1 in a background thread; :meth:`stop` in a ``finally``."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="moesif-demo-rates", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
