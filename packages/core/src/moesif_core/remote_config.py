"""The served configuration (``GET /v1/config`` and ``GET /v1/rules``), fetched in the background.

A :class:`RemoteConfig` is an immutable snapshot: the raw config and rules as served (governance
compiles its own view from them), their ETag and the compiled sampling. The agent replaces its
snapshot with one attribute assignment, so readers on the request path never lock and never see
half an update. A failed fetch keeps the last good snapshot; until the first one arrives the
empty snapshot samples at 100 %.

:class:`ConfigPoller` is the thread that fetches at start, every ``interval`` seconds and whenever
:meth:`ConfigPoller.refresh` is called (an event post answered with another ETag).

Example::

    config = RemoteConfig.from_payloads({"sample_rate": 10}, [], etag="abc")
    config.sampler.rate(route="/", verb="GET", ip=None, status=200, user_id=None, company_id=None)  # 10
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .log import logger, warn_once, warn_rate_limited
from .sampling import Sampler
from .transport import HttpTransport, TransportError

__all__ = ["ConfigFetchError", "ConfigPoller", "RemoteConfig", "fetch_remote_config"]

ETAG_HEADER: Final = "x-moesif-config-etag"


class ConfigFetchError(Exception):
    """``/v1/config`` could not be fetched or was not a JSON object; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """One served configuration; ``received`` is False for the built-in one used until the first fetch."""

    raw_config: Mapping[str, Any] = field(default_factory=dict)
    raw_rules: Sequence[Any] = ()
    etag: str | None = None
    sampler: Sampler = field(default_factory=Sampler)
    received: bool = False

    @classmethod
    def from_payloads(cls, config: Mapping[str, Any], rules: Sequence[Any], etag: str | None) -> RemoteConfig:
        return cls(config, tuple(rules), etag, Sampler.from_config(config), True)


def _get_json(transport: HttpTransport, path: str) -> tuple[Any, dict[str, str]]:
    try:
        response = transport.request("GET", path)
    except TransportError as exc:
        raise ConfigFetchError(f"GET {path} failed: {exc}") from exc
    if not 200 <= response.status < 300:
        raise ConfigFetchError(f"GET {path} answered HTTP {response.status}", response.status)
    try:
        return orjson.loads(response.body), response.headers
    except orjson.JSONDecodeError as exc:
        raise ConfigFetchError(f"GET {path} answered invalid JSON ({exc})") from exc


def fetch_remote_config(transport: HttpTransport, previous: RemoteConfig) -> RemoteConfig:
    """Fetch config and rules; rules that fail keep the previous ones. Raises :class:`ConfigFetchError`."""
    config, headers = _get_json(transport, "/v1/config")
    if not isinstance(config, dict):
        raise ConfigFetchError(f"GET /v1/config answered {type(config).__name__}, expected a JSON object")
    rules: Sequence[Any] = previous.raw_rules
    try:
        served_rules, _ = _get_json(transport, "/v1/rules")
    except ConfigFetchError as exc:
        warn_rate_limited("rules-fetch", "moesif: could not fetch governance rules, keeping the last ones: %s", exc)
    else:
        if isinstance(served_rules, list):
            rules = served_rules
        else:
            warn_rate_limited("rules-shape", "moesif: GET /v1/rules answered %s, expected a list", type(served_rules).__name__)
    return RemoteConfig.from_payloads(config, rules, headers.get(ETAG_HEADER))


class ConfigPoller:
    """Fetches the config in its own daemon thread: at start, every ``interval`` s and on :meth:`refresh`.

    ``install`` receives each new snapshot; ``on_error`` each failed fetch (the agent turns a 401
    into its one clear warning); ``housekeeping`` runs on every wake-up (the agent logs its
    counters there), guarded so that nothing it raises stops the thread.
    """

    def __init__(
        self,
        transport_factory: Callable[[], HttpTransport],
        interval: float,
        current: Callable[[], RemoteConfig],
        install: Callable[[RemoteConfig], None],
        *,
        on_error: Callable[[ConfigFetchError], None] | None = None,
        housekeeping: Callable[[], float | None] | None = None,
        name: str = "moesif-config",
    ) -> None:
        self._transport_factory = transport_factory
        self._interval = interval
        self._current = current
        self._install = install
        self._on_error = on_error
        self._housekeeping = housekeeping
        self._name = name
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.fetches = 0  # completed fetch attempts, for tests and stats

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        thread.start()
        self._thread = thread

    def refresh(self) -> None:
        """Fetch again now (from the poller's thread)."""
        self._wake.set()

    def stop(self, timeout: float = 0.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and timeout > 0:
            thread.join(timeout)

    def _run(self) -> None:
        transport = self._transport_factory()
        failures = 0
        next_fetch = time.monotonic()
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if self._wake.is_set() or now >= next_fetch:
                    self._wake.clear()
                    if self._fetch(transport):
                        failures = 0
                        next_fetch = time.monotonic() + self._interval
                    else:
                        # A collector that is down now is tried again sooner than the full interval.
                        failures += 1
                        next_fetch = time.monotonic() + min(self._interval, 2.0 ** min(failures, 5))
                wait = next_fetch - time.monotonic()
                if self._housekeeping is not None:
                    try:
                        until_housekeeping = self._housekeeping()
                    except Exception:  # pragma: no cover - the agent's hook is guarded already
                        until_housekeeping = None
                    if until_housekeeping is not None:
                        wait = min(wait, until_housekeeping)
                self._wake.wait(max(0.0, wait))
        finally:
            transport.close()

    def _fetch(self, transport: HttpTransport) -> bool:
        try:
            config = fetch_remote_config(transport, self._current())
        except ConfigFetchError as exc:
            self.fetches += 1
            if self._on_error is not None:
                self._on_error(exc)
            return False
        except Exception as exc:  # never let a surprise end config polling for good
            self.fetches += 1
            warn_once("config-fetch-crash", "moesif: config fetch failed unexpectedly (%s: %s)", type(exc).__name__, exc)
            return False
        self.fetches += 1
        self._install(config)
        logger.debug("moesif: fetched config (etag %s, %d rules)", config.etag, len(config.raw_rules))
        return True
