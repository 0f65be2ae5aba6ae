"""Helpers for testing code instrumented with moesif: a recording stand-in for the agent, JWTs, and a server runner.

:class:`RecordingAgent` replaces the :class:`~moesif_core.agent.Agent` where a test looks at what the
capture layer recorded (method, path, status, bodies, user) rather than at delivery: it keeps every
:class:`~moesif_core.record.RawExchange` it is handed and sends nothing. Its records are raw, as the
request path leaves them (no masking, no JSON, no event); to see events as Moesif receives them,
run the real agent against the ``moesif_collector`` fixture of the pytest plugin instead.

:func:`serve` runs a server (gunicorn, uvicorn, waitress...) in a subprocess on 127.0.0.1 for an
end-to-end test, and makes sure it is gone afterwards; :func:`moesif_environ` turns settings (such
as ``moesif_collector.settings()``) into the ``MOESIF_*`` variables that configure the app it serves.

Example::

    from moesif_core.testing import RecordingAgent
    from moesif_core.wsgi import MoesifMiddleware

    agent = RecordingAgent()
    app = MoesifMiddleware(my_wsgi_app, agent=agent)
    ...  # call app
    [record] = agent.records
    assert (record.method, record.path, record.status) == ("GET", "/orders", 200)

Nothing here is imported by ``moesif_core`` itself: import ``moesif_core.testing`` in tests only.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import orjson

from .record import RawExchange
from .remote_config import RemoteConfig
from .settings import Settings

__all__ = ["RecordingAgent", "Server", "ServerError", "free_port", "governance_rule", "make_jwt", "moesif_environ", "serve"]

LOOPBACK = "127.0.0.1"

# Settings of a stand-in that must never reach anything: port 9 (discard) on the loopback.
_DEFAULT_SETTINGS: Mapping[str, Any] = {"APPLICATION_ID": "test-app", "BASE_URI": f"http://{LOOPBACK}:9"}


class RecordingAgent:
    """Stands in for the agent of a middleware (``agent=`` of every integration) and records what it is handed.

    ``records`` holds the submitted calls in order, ``entities`` the ``(kind, payload)`` entity updates,
    ``counts`` the calls the capture layer did not submit by reason (``skipped``, ``sampled_out``), and
    ``calls`` the lifecycle in order (``"flush"``, ``"close"``, ``"entity:<kind>"``) so a test can
    check that an integration flushes and closes when it should.

    ``rate`` is the sampling percentage every call gets (100 keeps all, 0 drops all); set it between
    calls to change it. ``config`` is what governance reads: the empty
    :class:`~moesif_core.remote_config.RemoteConfig` a fresh agent serves until the first fetch,
    replaceable with ``RemoteConfig.from_payloads(config, rules, etag)`` to test governance rules.
    ``sample_rate`` answers ``rate`` whatever ``config`` says.

    It is not a delivery engine: it has no queue, no limits and no threads, ``flush`` and ``close``
    only record that they were called, and ``stats()`` reports ``counts`` and nothing about sending.
    """

    def __init__(
        self,
        settings: Mapping[str, Any] | Settings | None = None,
        *,
        rate: int = 100,
        user_agent: str = "moesif-core-testing",
    ) -> None:
        """``settings`` default to application ``test-app`` and a collector address nothing listens on.

        A mapping is resolved without ``MOESIF_*`` environment variables, so a developer's shell
        does not change what a test sees; pass a :class:`Settings` to use other resolved settings.
        """
        if settings is None:
            settings = _DEFAULT_SETTINGS
        self.settings: Settings = settings if isinstance(settings, Settings) else Settings.resolve(settings, environ={})
        self.rate = rate
        self.user_agent = user_agent
        self.sampling_needs_identity = False
        self.sampling_needs_ip = False
        self.config = RemoteConfig()
        self.records: list[RawExchange] = []
        self.entities: list[tuple[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.calls: list[str] = []
        self.started = False
        self._lock = threading.Lock()  # servers call from many threads; counts are read-modify-write

    def __repr__(self) -> str:
        return f"<RecordingAgent {len(self.records)} records, rate {self.rate}>"

    @property
    def flushes(self) -> int:
        """How many times ``flush`` was called."""
        return self.calls.count("flush")

    def submit(self, record: RawExchange) -> bool:
        with self._lock:
            self.records.append(record)
        return True

    def submit_entity(self, kind: str, payload: Any) -> bool:
        with self._lock:
            self.entities.append((kind, payload))
            self.calls.append(f"entity:{kind}")
        return True

    def count(self, reason: str) -> None:
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + 1

    def sample_rate(
        self,
        *,
        route: str,
        verb: str,
        ip: str | None,
        status: int,
        user_id: str | None,
        company_id: str | None,
    ) -> int:
        return self.rate

    @property
    def plain_config(self) -> bool:
        """As the real agent's: no governance rules in ``config`` and every call kept (``rate`` 100)."""
        return self.rate == 100 and not self.sampling_needs_identity and not self.sampling_needs_ip and not self.config.raw_rules

    def ensure_started(self) -> None:
        self.started = True

    def flush(self, timeout: float | None = None) -> bool:
        with self._lock:
            self.calls.append("flush")
        return True

    def close(self, timeout: float | None = None) -> bool:
        with self._lock:
            self.calls.append("close")
        return True

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


def make_jwt(claims: Mapping[str, Any], *, header: Mapping[str, Any] | None = None) -> str:
    """A JWT carrying ``claims``, for tests of user and company identification.

    The middleware reads the payload and never checks signatures (analytics, not authentication),
    so the signature part is a placeholder. Send it as ``f"Bearer {make_jwt({'sub': 'user-1'})}"``.
    """

    def segment(value: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode("ascii")

    return f"{segment(header or {'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}.c2lnbmF0dXJl"


def governance_rule(
    rule_id: str,
    kind: str = "regex",
    *,
    block: bool = True,
    applied_to: str = "matching",
    unidentified: bool = False,
    groups: Sequence[Sequence[tuple[str, str]]] = (),
    status: Any = 403,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """A governance rule as ``GET /v1/rules`` serves it, for ``LocalCollector.set_rules`` in tests.

    ``groups`` are condition groups of ``(path, regex)`` pairs: ANDed within a group, ORed across.
    """
    return {
        "_id": rule_id,
        "type": kind,
        "block": block,
        "applied_to": applied_to,
        "applied_to_unidentified": unidentified,
        "regex_config": [{"conditions": [{"path": path, "value": value} for path, value in group]} for group in groups],
        "response": {"status": status, "headers": dict(headers or {}), "body": body},
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process could take it before you bind it)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def moesif_environ(settings: Mapping[str, Any]) -> dict[str, str]:
    """The ``MOESIF_*`` environment variables that give a server subprocess these settings.

    Booleans become ``true``/``false`` and lists comma-separated; callables cannot cross a process
    boundary (the environment never supplies them), so they raise ``TypeError``.
    """
    environ: dict[str, str] = {}
    for key, value in settings.items():
        if callable(value):
            raise TypeError(f"{key} is a callable: the environment cannot carry it, set it in the app instead")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, set, frozenset)):
            text = ",".join(str(part) for part in value)
        else:
            text = str(value)
        environ[f"MOESIF_{key.upper()}"] = text
    return environ


class ServerError(AssertionError):
    """The server did not start listening, or did not stop, in time; the message ends with its output.

    An ``AssertionError`` so that test runners report a failed test, not a broken one.
    """


class Server:
    """A server started by :func:`serve`: its ``process``, ``port`` and ``url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, output_file: IO[bytes]) -> None:
        self.process = process
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self._output_file = output_file

    def __repr__(self) -> str:
        return f"<Server pid {self.process.pid} at {self.url}>"

    def output(self) -> str:
        """Everything the server wrote so far (stdout and stderr together)."""
        with open(self._output_file.name, "rb") as file:
            return file.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit; returns the exit code (negative: the signal that ended it).

        A server still running after ``timeout`` seconds is killed, with its process group, and
        :class:`ServerError` is raised: a server that does not stop on its signal is a failure here.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise ServerError(f"the server did not stop within {timeout:g}s of signal {sig}:\n{self.output()}") from None

    def _kill(self) -> None:
        # Its own session (see serve): the group holds the workers a master forked.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def serve(
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    ready_timeout: float = 30.0,
    stop_timeout: float = 15.0,
) -> Iterator[Server]:
    """Run ``argv``, a server told to listen on 127.0.0.1:``port``; yield once that port accepts connections.

    ``env`` adds to (and overrides) the current environment. The server's output goes to a temporary
    file rather than a pipe, so a chatty server never blocks on a full pipe; it is quoted in the
    :class:`ServerError` raised when the server exits or is not listening within ``ready_timeout``
    seconds (it is killed then).

    On leaving the block a server still running gets SIGTERM, and is killed with its process group
    after ``stop_timeout`` seconds. Call :meth:`Server.stop` inside the block to choose the signal
    (uvicorn runs its lifespan shutdown on SIGINT) or to fail on a server that does not stop in time.

    ``port`` is not chosen here because the port is part of ``argv``; use :func:`free_port`::

        port = free_port()
        with serve([sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)], port=port) as server:
            httpx.get(f"{server.url}/health")
    """
    environ = {**os.environ, **env} if env is not None else None
    with tempfile.NamedTemporaryFile(prefix="moesif-server-", suffix=".log") as output_file:
        # A session of its own: killing the group on timeout also ends the workers of a master.
        process = subprocess.Popen(
            list(argv), env=environ, cwd=cwd, stdout=output_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        server = Server(process, port, output_file)
        try:
            _wait_until_listening(server, ready_timeout)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    server._kill()


def _wait_until_listening(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, server.port), timeout=0.5):
                return
        except OSError:
            pass
        code = server.process.poll()
        if code is not None:
            raise ServerError(f"the server exited with code {code} before listening on port {server.port}:\n{server.output()}")
        if time.monotonic() > deadline:
            server._kill()
            raise ServerError(f"the server was not listening on port {server.port} after {timeout:g}s:\n{server.output()}")
        time.sleep(0.05)
