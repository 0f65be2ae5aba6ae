"""The local collector: a real HTTP server speaking the Collector API subset our packages send.

It stores what it accepts in SQLite before answering, serves ``/v1/config`` and ``/v1/rules``
with an ETag, and has knobs that make it misbehave the way a real collector can (errors, hangs,
slowness, cut responses, going down and coming back) so the delivery engine can be tested
against real sockets instead of mocks.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

from .assertions import assert_event
from .config_files import DEFAULT_CONFIG, ConfigFileError, content_etag, load_config_file
from .server import CollectorHTTPServer
from .store import EventStore

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Fault", "LocalCollector", "RecordedRequest"]

DEFAULT_MAX_BODY_BYTES: Final = 50 * 1024 * 1024
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request the collector saw.

    ``headers`` has lower-cased names. ``status`` is None when no complete answer was sent (a
    hang or a cut response; ``fault`` then says which). ``body_size`` counts bytes as received
    (compressed when gzip); ``decoded_size`` the bytes of a data post once decoded (None for other
    requests, and for posts refused before: a wrong application id). ``time`` is the arrival time
    (``time.time()``).
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int | None
    body_size: int
    time: float
    fault: str | None = None
    decoded_size: int | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """One queued misbehaviour: ``fail`` (answer status/headers/body), ``hang`` or ``close`` (cut response)."""

    kind: str
    status: int = 500
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(slots=True)
class _Served:
    config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CONFIG))
    etag: str = field(default_factory=lambda: content_etag(DEFAULT_CONFIG))
    rules: list[Any] = field(default_factory=list)
    file_mtime_ns: int | None = None


class LocalCollector:
    """A Collector API on 127.0.0.1 for tests and development.

    Example::

        with LocalCollector(application_id="test-app") as collector:
            settings = {"APPLICATION_ID": "test-app", "BASE_URI": collector.base_uri}
            ...  # run the app under the middleware
            [event] = collector.wait_for_events(1)
            assert event["response"]["status"] == 200

    Fault knobs (:meth:`fail_next`, :meth:`hang_next`, :meth:`close_mid_response_next`) apply in the
    order they were queued to the next POSTs of events, users, companies or subscriptions (never to
    config, rules or the web page), and a faulted post stores nothing. ``delay`` applies to every request.
    """

    def __init__(
        self,
        application_id: str | None = "test-app",
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | os.PathLike[str] | None = None,
        *,
        config_file: str | os.PathLike[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        strict_events: bool = True,
        allow_remote: bool = False,
        max_recorded_requests: int = 100_000,
    ) -> None:
        """Create a stopped collector.

        ``application_id=None`` accepts any non-empty id. ``db_path=None`` keeps data in memory.
        ``port=0`` picks a free port at the first :meth:`start`; later starts reuse it.
        ``strict_events=False`` accepts any JSON object as an event. Binding an address other than
        loopback needs ``allow_remote=True``, so nothing listens beyond this machine by accident.
        """
        if host not in _LOOPBACK and not allow_remote:
            raise ValueError(
                f"refusing to listen on {host!r}: the local collector binds loopback only unless "
                "allow_remote=True (or --allow-remote on the command line) says otherwise"
            )
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        self.application_id = application_id
        self.host = host
        self.max_body_bytes = max_body_bytes
        self.strict_events = strict_events
        self.delay: float = 0.0
        self._port = port
        self._store = EventStore(os.fspath(db_path) if db_path is not None else None)
        self._config_file = os.fspath(config_file) if config_file is not None else None
        self._served = _Served()
        self._served_lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._faults_lock = threading.Lock()
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded_requests)
        self._changed = threading.Condition()
        self._server: CollectorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if self._config_file is not None:
            self._load_config_file(raise_errors=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a background thread; after :meth:`stop`, binds the same port again."""
        if self._server is not None:
            return self
        server = CollectorHTTPServer((self.host, self._port), self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"moesif-local-collector:{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections (hung requests end too); stored data stays."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if thread is not None:
            thread.join(timeout=5)

    def close(self) -> None:
        """Stop and release the database (an in-memory one is gone afterwards)."""
        self.stop()
        self._store.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (0 until the first start when created with ``port=0``)."""
        return self._port

    @property
    def base_uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def store(self) -> EventStore:
        return self._store

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Middleware settings pointing at this collector, tuned for tests (short batch timeout); ``extra`` wins."""
        return {
            "APPLICATION_ID": self.application_id or "local-collector",
            "BASE_URI": self.base_uri,
            "EVENT_BATCH_TIMEOUT": 0.05,
            **extra,
        }

    @staticmethod
    def assert_event(event: Any, **expected: Any) -> None:
        """:func:`~moesif_core.collector.assertions.assert_event`, here for the pytest fixture's convenience."""
        assert_event(event, **expected)

    # -- reading what arrived ----------------------------------------------------------------

    def events(
        self, path: str | None = None, status: int | str | None = None, user_id: str | None = None, direction: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored events exactly as received, in arrival order; ``path`` matches the URI's path, ``status`` also takes "5xx"."""
        return self._store.events(path=path, status=status, user_id=user_id, direction=direction)

    def users(self) -> list[dict[str, Any]]:
        return self._store.entities("users")

    def companies(self) -> list[dict[str, Any]]:
        return self._store.entities("companies")

    def subscriptions(self) -> list[dict[str, Any]]:
        return self._store.entities("subscriptions")

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request seen (the latest ``max_recorded_requests``), in arrival-of-answer order."""
        with self._changed:
            return list(self._requests)

    def _wait(self, what: str, n: int, timeout: float, count: Callable[[], int], fetch: Callable[[], list[Any]]) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                got = count()
                if got >= n:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = list(self._requests)
                    answers = [f"{r.method} {r.path} -> {r.status if r.status is not None else r.fault}" for r in seen[-5:]]
                    raise AssertionError(
                        f"expected at least {n} {what} within {timeout:g} s, but {got} arrived "
                        f"({len(seen)} HTTP requests seen; last: {answers or 'none'})"
                    )
                self._changed.wait(min(remaining, 0.25))
        return fetch()

    def wait_for_events(
        self,
        n: int = 1,
        timeout: float = 10.0,
        *,
        path: str | None = None,
        status: int | str | None = None,
        user_id: str | None = None,
        direction: str | None = None,
    ) -> list[dict[str, Any]]:
        """Block until at least ``n`` (matching) events are stored and return them all; AssertionError on timeout."""
        filters: dict[str, Any] = {"path": path, "status": status, "user_id": user_id, "direction": direction}
        what = "events" + "".join(f" {k}={v}" for k, v in filters.items() if v is not None)
        return self._wait(what, n, timeout, lambda: self._store.count_events(**filters), lambda: self.events(**filters))

    def wait_for_users(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait("users", n, timeout, lambda: self._store.count_entities("users"), self.users)

    def wait_for_companies(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait("companies", n, timeout, lambda: self._store.count_entities("companies"), self.companies)

    def wait_for_subscriptions(self, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._wait("subscriptions", n, timeout, lambda: self._store.count_entities("subscriptions"), self.subscriptions)

    def wait_for_requests(self, n: int = 1, timeout: float = 10.0, *, path: str | None = None) -> list[RecordedRequest]:
        """Block until ``n`` requests (to ``path``, when given, without query) were seen, including hung ones."""

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if path is None or r.path.split("?", 1)[0] == path]

        return self._wait(
            f"requests{f' to {path}' if path else ''}", n, timeout, lambda: len(matching()), lambda: list(matching())
        )

    def clear(self) -> None:
        """Forget stored data, recorded requests and pending faults; config, rules and ``delay`` stay."""
        self._store.clear()
        with self._faults_lock:
            self._faults.clear()
        with self._changed:
            self._requests.clear()
            self._changed.notify_all()

    # -- what is served ----------------------------------------------------------------------

    def set_config(self, config: Mapping[str, Any], etag: str | None = None) -> str:
        """Serve ``config`` at ``GET /v1/config``; return its ETag (a hash of the content unless given)."""
        value = dict(config)
        tag = etag if etag is not None else content_etag(value)
        with self._served_lock:
            self._served.config = value
            self._served.etag = tag
        return tag

    def set_rules(self, rules: list[Any]) -> None:
        """Serve ``rules`` at ``GET /v1/rules``."""
        with self._served_lock:
            self._served.rules = list(rules)

    @property
    def config_etag(self) -> str:
        return self.current_config()[1]

    def current_config(self) -> tuple[dict[str, Any], str]:
        self._load_config_file(raise_errors=False)
        with self._served_lock:
            return self._served.config, self._served.etag

    def current_rules(self) -> list[Any]:
        self._load_config_file(raise_errors=False)
        with self._served_lock:
            return self._served.rules

    def _load_config_file(self, raise_errors: bool) -> None:
        """(Re)read the config file when it changed since the last read; a broken edit keeps the last good content."""
        if self._config_file is None:
            return
        try:
            mtime = os.stat(self._config_file).st_mtime_ns
        except OSError as exc:
            if raise_errors:
                raise ConfigFileError(f"cannot read config file {self._config_file}: {exc.strerror or exc}") from exc
            return
        with self._served_lock:
            if mtime == self._served.file_mtime_ns:
                return
            self._served.file_mtime_ns = mtime
        try:
            loaded = load_config_file(self._config_file)
        except ConfigFileError as exc:
            if raise_errors:
                raise
            from ..log import warn_rate_limited

            warn_rate_limited("collector-config-file", "%s; still serving the previous config and rules", exc, interval=5.0)
            return
        if loaded.config is not None:
            self.set_config(loaded.config)
        if loaded.rules is not None:
            self.set_rules(loaded.rules)

    # -- fault knobs -------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500, headers: Mapping[str, str] | None = None, body: bytes = b"") -> None:
        """Answer the next ``count`` data POSTs with ``status``/``headers``/``body`` and store nothing.

        Example: ``fail_next(2, 429, {"Retry-After": "1"})``.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), got {status}")
        fault = Fault("fail", status, tuple((headers or {}).items()), bytes(body))
        self._queue(fault, count)

    def hang_next(self, count: int = 1) -> None:
        """Accept the next ``count`` data POSTs and never answer them (until :meth:`stop`); nothing is stored."""
        self._queue(Fault("hang"), count)

    def close_mid_response_next(self, count: int = 1) -> None:
        """Answer the next ``count`` data POSTs with a status line and half a body, then close; nothing is stored."""
        self._queue(Fault("close"), count)

    @property
    def pending_faults(self) -> int:
        with self._faults_lock:
            return len(self._faults)

    def _queue(self, fault: Fault, count: int) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._faults_lock:
            self._faults.extend([fault] * count)

    # -- called by the HTTP handler ------------------------------------------------------------

    def take_fault(self) -> Fault | None:
        with self._faults_lock:
            return self._faults.popleft() if self._faults else None

    def accept(self, kind: str, items: list[dict[str, Any]]) -> None:
        """Store ``items`` in one transaction and wake waiters; raises when storing fails, so no 2xx is sent."""
        if kind == "events":
            self._store.add_events(items)
        else:
            self._store.add_entities(kind, items)
        with self._changed:
            self._changed.notify_all()

    def record_request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        status: int | None,
        body_size: int,
        arrived: float,
        fault: str | None,
        decoded_size: int | None = None,
    ) -> None:
        with self._changed:
            self._requests.append(RecordedRequest(method, path, headers, status, body_size, arrived, fault, decoded_size))
            self._changed.notify_all()
