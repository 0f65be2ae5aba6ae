"""Serve the demo app on 127.0.0.1 with a real server in a background thread, and stop it cleanly.

WSGI apps run under waitress (wsgiref's threading server when waitress is not installed), ASGI
apps under uvicorn. Each server gets a socket bound here on 127.0.0.1 (a free port unless one is
given), so the address is known before the first request and nothing ever listens beyond this
machine. :meth:`RunningServer.stop` is meant for a ``finally`` block: it never raises and it
bounds every wait, so the demo cannot hang on exit.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from .shop import DemoFailure

__all__ = ["ExpectedFailureFilter", "RunningServer", "bind_loopback", "serve_asgi", "serve_wsgi"]

_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 5.0


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (``port=0``: a free one); OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class ExpectedFailureFilter(logging.Filter):
    """Drops log records about :class:`DemoFailure`: the demo raises it on purpose, its traceback would only alarm."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DemoFailure) and "DemoFailure" not in record.getMessage()


class _QuietErrors(io.TextIOBase):
    """``wsgi.errors`` for the demo: frameworks that print the failing view's traceback there (Bottle, Falcon) print nothing."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def _quiet_wsgi(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.errors"] = _QuietErrors()
        return app(environ, start_response)

    return serve


class RunningServer:
    """A server running in a daemon thread; ``url`` is where it answers, :meth:`stop` ends it."""

    def __init__(self, name: str, url: str, thread: threading.Thread, stopper: Callable[[], None]) -> None:
        self.name = name
        self.url = url
        self._thread = thread
        self._stopper = stopper
        self._stopped = False

    def stop(self) -> None:
        """Stop serving and wait (bounded) for the thread; idempotent, never raises."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._stopper()
        except Exception as exc:  # stopping is best effort: the thread is a daemon and dies with the process anyway
            logging.getLogger("moesif.demo").debug("stopping %s failed: %s", self.name, exc)
        self._thread.join(timeout=_STOP_TIMEOUT)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def serve_wsgi(app: Callable[..., Iterable[bytes]], port: int = 0, *, prefer_waitress: bool = True) -> RunningServer:
    """Serve a WSGI app under waitress, or wsgiref when waitress is missing (or ``prefer_waitress=False``)."""
    sock = bind_loopback(port)
    wrapped = _quiet_wsgi(app)
    if prefer_waitress:
        try:
            return _waitress(wrapped, sock)
        except ImportError:
            pass
    return _wsgiref(wrapped, sock)


def _waitress(app: Callable[..., Iterable[bytes]], sock: socket.socket) -> RunningServer:
    from waitress import wasyncore
    from waitress.server import create_server

    url = _url(sock)
    server: Any = create_server(app, sockets=[sock], threads=4, ident="moesif-demo")
    thread = threading.Thread(target=server.run, name="moesif-demo-waitress", daemon=True)
    thread.start()

    def stop() -> None:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=_STOP_TIMEOUT)
        # The serving loop runs until its socket map is empty; closing everything from inside the loop's own
        # thread (a trigger thunk) is the one race-free way to end it.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))

    return RunningServer("waitress", url, thread, stop)


def _wsgiref(app: Callable[..., Iterable[bytes]], sock: socket.socket) -> RunningServer:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class ThreadingServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    address = sock.getsockname()[:2]
    sock.close()  # wsgiref binds its own socket; the port was free a moment ago and nothing else races for it here
    server = ThreadingServer(address, QuietHandler)
    server.set_app(app)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="moesif-demo-wsgiref", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return RunningServer("wsgiref", f"http://{address[0]}:{address[1]}", thread, stop)


def serve_asgi(app: Any, port: int = 0) -> RunningServer:
    """Serve an ASGI app under uvicorn (lifespan on, so the middleware flushes at shutdown)."""
    import uvicorn

    sock = bind_loopback(port)
    url = _url(sock)
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=int(_STOP_TIMEOUT)
    )
    server = uvicorn.Server(config)
    # Off the main thread uvicorn leaves signal handlers alone: Ctrl-C reaches the demo, which stops the server.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="moesif-demo-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=_STOP_TIMEOUT)
            sock.close()
            raise RuntimeError("uvicorn did not start (see the messages above)")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=_STOP_TIMEOUT * 2)
        sock.close()

    return RunningServer("uvicorn", url, thread, stop)
