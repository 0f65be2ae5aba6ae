"""The delivery engine of one middleware instance: queue, sender, served config and counters.

An :class:`Agent` is cheap to create: nothing touches the network or starts a thread until the
first :meth:`Agent.submit`. Then the sender workers and the config poller start, for this process
(the pid is checked, so a forked child starts its own on its first submit). Two middlewares with
different application ids each have their own agent and send to their own ``BASE_URI``.

Process-wide hooks, installed once: after ``fork`` the child resets every live agent (empty
queue, fresh locks, no threads: it never sends the parent's queue), and at exit every agent is
flushed within its ``SHUTDOWN_TIMEOUT`` (what is left is counted ``dropped_shutdown`` and logged
once). ``multiprocessing`` children, which leave through ``os._exit`` and skip ``atexit``, get the
same flush through a ``multiprocessing`` finaliser.

Example::

    agent = Agent(settings, user_agent="flask-moesif/1.0.0")
    if random.random() * 100 < agent.sample_rate(route="/", verb="GET", ip=None, status=200,
                                                  user_id=None, company_id=None):
        agent.submit(record)        # O(1), never blocks, never raises
    agent.flush(timeout=2.0)        # True when everything submitted so far was delivered
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from typing import Any, Final

from .bounded_queue import BoundedQueue
from .counters import LOST_AFTER_QUEUE, Counters
from .log import logger, warn_once, warn_rate_limited
from .record import RawExchange, hand_over
from .remote_config import ETAG_HEADER, ConfigFetchError, ConfigPoller, RemoteConfig
from .sampling import weight_for
from .sender import ENTITY_KINDS, Builder, Encoder, EntityPost, QueueItem, Sender, encode, make_encoder
from .settings import Settings, mask_application_id
from .transport import HttpTransport, Response

__all__ = ["Agent", "weight_for"]

STATS_LOG_INTERVAL: Final = 60.0

# The only global state: the live agents, for the fork and exit hooks (weak: an app that drops
# its middleware drops its agent).
_agents: weakref.WeakSet[Agent] = weakref.WeakSet()
_agents_lock = threading.Lock()
_hooks_installed = False
# This process's id, refreshed by the fork hook: os.getpid() is a system call, and the request
# path checks it on every submit.
_process_id = os.getpid()
_mp_finalizer_pid: int | None = None


class Agent:
    """Queue, sender and served config of one middleware instance; see the module docstring."""

    def __init__(self, settings: Settings, *, user_agent: str, build: Builder | None = None) -> None:
        self.settings = settings
        self._user_agent = user_agent
        self._build = build
        self._encoder: Encoder | None = None
        try:
            # Resolved here, on the app's thread at start-up (see make_encoder).
            self._encoder = make_encoder(settings, build)
        except Exception as exc:
            warn_once("builder-init", "moesif: the event builder could not be set up (%s: %s)", type(exc).__name__, exc)
        self._masked_id = mask_application_id(settings.application_id)
        self._config = RemoteConfig()
        self.plain_config = True  # see _install_config
        self._closed = False
        self._reset_state()
        with _agents_lock:
            _agents.add(self)
        _install_process_hooks()

    def _reset_state(self) -> None:
        """Fresh queue, locks and counters, no threads: at creation and in a forked child."""
        self._lock = threading.Lock()
        self._queue: BoundedQueue[QueueItem] = BoundedQueue(self.settings.event_queue_size, self.settings.event_queue_max_bytes)
        if self._closed:
            self._queue.close()
        self._counters = Counters()
        self._pid: int | None = None  # the process whose threads run (None: not started here)
        self._sender: Sender | None = None
        self._poller: ConfigPoller | None = None
        self._requested_etag: str | None = None
        self._next_stats_log = time.monotonic() + STATS_LOG_INTERVAL
        self._shutdown_logged = False

    def __repr__(self) -> str:
        return f"<Agent {self._masked_id} -> {self.settings.base_uri}>"

    @property
    def user_agent(self) -> str:
        """The ``User-Agent`` of this agent's posts (synchronous entity updates send it too)."""
        return self._user_agent

    # -- request path -------------------------------------------------------------------------

    def submit(self, record: RawExchange) -> bool:
        """Queue ``record`` for delivery; False when it was dropped (counted by reason). Never raises."""
        try:
            if self._pid != _process_id and not self._closed:
                self._start()
            # Untracked: nothing a record refers to refers back to it, so reference counting frees
            # it and the cyclic GC need not walk it while it waits (see request_path.untrack).
            reason = self._queue.put(record, hand_over(record))
        except Exception as exc:
            warn_once("submit", "moesif: could not queue an event (%s: %s)", type(exc).__name__, exc)
            return False
        if reason is None:
            return True
        self._dropped_at_submit(reason)
        return False

    def submit_entity(self, kind: str, payload: dict[str, Any] | list[Any]) -> bool:
        """Queue a post of ``payload`` to ``/v1/<kind>`` (users, companies, subscriptions, their batches)."""
        try:
            if kind not in ENTITY_KINDS:
                warn_once(f"entity-kind-{kind}", "moesif: unknown entity kind %r, not sent", kind)
                return False
            item = EntityPost(kind, encode(payload))
            if self._pid != _process_id and not self._closed:
                self._start()
            reason = self._queue.put(item, len(item.body))
        except Exception as exc:
            warn_once("submit-entity", "moesif: could not queue a %s update (%s: %s)", kind, type(exc).__name__, exc)
            return False
        if reason is None:
            return True
        self._dropped_at_submit(reason)
        return False

    def _dropped_at_submit(self, reason: str) -> None:
        self._counters.add(reason)
        if self.settings.debug:
            logger.debug("moesif: event dropped: %s", reason)
        elif reason != "dropped_shutdown":
            warn_rate_limited(
                f"{reason}:{id(self)}",
                "moesif: event queue full (%d events, %d bytes waiting; limits EVENT_QUEUE_SIZE=%d, "
                "EVENT_QUEUE_MAX_BYTES=%d), dropping events: is the Collector API at %s reachable?",
                len(self._queue),
                self._queue.bytes,
                self.settings.event_queue_size,
                self.settings.event_queue_max_bytes,
                self.settings.base_uri,
            )

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
        """Percentage (0..100) of such calls to keep, from the current config; 100 until one arrives."""
        try:
            return self._config.sampler.rate(route=route, verb=verb, ip=ip, status=status, user_id=user_id, company_id=company_id)
        except Exception as exc:
            warn_once("sample-rate", "moesif: sampling failed, keeping the call (%s: %s)", type(exc).__name__, exc)
            return 100

    @property
    def flat_sample_rate(self) -> int | None:
        """The rate of every call when the current config has no per-route, per-user or per-company rule."""
        return self._config.sampler.flat_rate

    @property
    def sampling_needs_identity(self) -> bool:
        """True when the current config has per-user or per-company rates."""
        return self._config.sampler.needs_identity

    @property
    def sampling_needs_ip(self) -> bool:
        """True when the current config samples by client IP."""
        return self._config.sampler.needs_ip

    @property
    def config(self) -> RemoteConfig:
        """The current served config snapshot (replaced whole, never mutated)."""
        return self._config

    def count(self, reason: str) -> None:
        """Count a call the capture layer did not submit (``sampled_out``, ``skipped``)."""
        self._counters.add(reason)

    def stats(self) -> dict[str, int]:
        """Every counter, plus what is waiting now (``in_queue``, ``bytes_in_queue``, ``in_flight``)."""
        stats = self._counters.snapshot()
        queue = self._queue
        stats["queued"] = queue.accepted
        stats["in_queue"] = len(queue)
        stats["bytes_in_queue"] = queue.bytes
        stats["in_flight"] = queue.in_flight()
        return stats

    # -- background start ---------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the sender and the config poller in this process if not yet (submit does it too)."""
        if self._pid != os.getpid() and not self._closed:
            self._start()

    def _start(self) -> None:
        with self._lock:
            pid = _process_id
            if self._pid == pid or self._closed:
                return
            self._pid = pid
            sender = Sender(
                self.settings, self._queue, self._counters, self._build, self._new_transport, self._on_response, self._encoder
            )
            self._sender = sender
            sender.start()
            poller = ConfigPoller(
                self._new_transport,
                self.settings.config_refresh_interval,
                lambda: self._config,
                self._install_config,
                on_error=self._config_failed,
                housekeeping=self._housekeeping,
            )
            try:
                poller.start()
            except RuntimeError as exc:
                warn_once("config-start", "moesif: could not start the config thread (%s)", exc)
            else:
                self._poller = poller
        _register_multiprocessing_finalizer()

    def _new_transport(self) -> HttpTransport:
        settings = self.settings
        return HttpTransport(
            settings.base_uri,
            application_id=settings.application_id,
            user_agent=self._user_agent,
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
        )

    # -- served config ------------------------------------------------------------------------

    def _install_config(self, config: RemoteConfig) -> None:
        previous = self._config
        # Read by the native request path in place of the governance gate and the sampling
        # decision: no rules and every call kept (set before the config itself, so a request
        # never sees the flag of a config it does not also see).
        self.plain_config = False
        self._config = config
        self.plain_config = not config.raw_rules and config.sampler.flat_rate == 100
        if self.settings.debug and previous.etag != config.etag:
            logger.debug(
                "moesif: new config %s (sample_rate %s%%, %d regex rules, %d user and %d company rates, %d governance rules)",
                config.etag,
                config.sampler.default_rate,
                len(config.sampler.regex_entries),
                len(config.sampler.user_rates),
                len(config.sampler.company_rates),
                len(config.raw_rules),
            )

    def _config_failed(self, exc: ConfigFetchError) -> None:
        if exc.status in (401, 403):
            warn_once(
                f"unauthorized:{self.settings.base_uri}:{self._masked_id}",
                "moesif: the Collector API at %s refused application id %s (HTTP %d): the APPLICATION_ID is wrong "
                "(copy it from your Moesif account under API Keys). Events are dropped until it is fixed.",
                self.settings.base_uri,
                self._masked_id,
                exc.status,
            )
            return
        kept = "the last good one" if self._config.received else "sampling at 100 %"
        warn_rate_limited(f"config-fetch:{id(self)}", "moesif: could not fetch the config, keeping %s: %s", kept, exc)

    def _on_response(self, response: Response) -> None:
        etag = response.headers.get(ETAG_HEADER)
        if etag and etag not in (self._config.etag, self._requested_etag):
            self._requested_etag = etag
            poller = self._poller
            if poller is not None:
                if self.settings.debug:
                    logger.debug("moesif: config ETag changed to %s, refetching", etag)
                poller.refresh()

    def _housekeeping(self) -> float | None:
        """Log the counters at DEBUG every minute; returns seconds until the next time."""
        if not logger.isEnabledFor(logging.DEBUG):
            return None
        now = time.monotonic()
        if now >= self._next_stats_log:
            self._next_stats_log = now + STATS_LOG_INTERVAL
            stats = self.stats()
            logger.debug(
                "moesif: %s stats %s", self._masked_id, " ".join(f"{key}={value}" for key, value in sorted(stats.items()))
            )
        return self._next_stats_log - now

    # -- flush and close ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything submitted before this call, for at most ``timeout`` seconds.

        ``timeout`` defaults to ``SHUTDOWN_TIMEOUT``. True when all of it was delivered; False
        when time ran out or some of it was dropped meanwhile (see :meth:`stats` for why). Never
        hangs past the deadline.
        """
        try:
            return self._flush(time.monotonic() + (self.settings.shutdown_timeout if timeout is None else max(0.0, timeout)))
        except Exception as exc:
            warn_once("flush", "moesif: flush failed (%s: %s)", type(exc).__name__, exc)
            return False

    def _flush(self, deadline: float) -> bool:
        queue = self._queue
        target = queue.accepted
        if queue.finished(target):
            return True
        lost_before = self._counters.dropped(LOST_AFTER_QUEUE)
        queue.hurry(target)
        sender = self._sender
        if sender is not None and self._pid == os.getpid() and sender.alive():
            finished = queue.wait_finished(target, deadline)
        else:
            # No worker to do it (threads could not start, e.g. at interpreter shutdown): do it here.
            inline = sender or Sender(
                self.settings, queue, self._counters, self._build, self._new_transport, self._on_response, self._encoder
            )
            inline.deliver_pending(deadline)
            finished = queue.finished(target)
        # Drops of events submitted during the flush count too: rare, and erring towards False is safe.
        return finished and self._counters.dropped(LOST_AFTER_QUEUE) == lost_before

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``, default ``SHUTDOWN_TIMEOUT``), then stop; later submits are dropped.

        Idempotent. True when everything submitted was delivered.
        """
        seconds = self.settings.shutdown_timeout if timeout is None else max(0.0, timeout)
        self._begin_close()
        return self._finish_close(time.monotonic() + seconds, seconds)

    def _begin_close(self) -> None:
        with self._lock:
            self._closed = True
        self._queue.close()
        self._queue.hurry(self._queue.accepted)

    def _finish_close(self, deadline: float, seconds: float) -> bool:
        try:
            counters = self._counters
            dropped_before = counters.get("dropped_shutdown")
            delivered = self._flush(deadline)
            sender, poller, queue = self._sender, self._poller, self._queue
            if sender is not None:
                sender.abandon()  # retries sleeping now drop their batch (counted dropped_shutdown)
            queue.stop()
            left = queue.drain()
            if left:
                counters.add("dropped_shutdown", len(left))
            if poller is not None:
                poller.stop()
            if sender is not None and self._pid == os.getpid():
                # A post in progress may still finish (it is counted then); never wait past the deadline.
                sender.join(max(deadline, time.monotonic() + 0.05))
            in_flight = queue.in_flight()
            lost = counters.get("dropped_shutdown") - dropped_before + in_flight
            if lost and not self._shutdown_logged:
                self._shutdown_logged = True
                logger.warning(
                    "moesif: %d events were not delivered to %s within the %gs shutdown deadline (SHUTDOWN_TIMEOUT) "
                    "and are dropped%s",
                    lost,
                    self.settings.base_uri,
                    seconds,
                    f" ({in_flight} were still being sent)" if in_flight else "",
                )
            return delivered and not left
        except Exception as exc:
            warn_once("close", "moesif: close failed (%s: %s)", type(exc).__name__, exc)
            return False

    # -- fork ---------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # The parent's queue is the parent's to send; the parent's locks may be held by threads
        # that do not exist here; the connections belong to the parent.
        self._reset_state()


def _live_agents() -> list[Agent]:
    try:
        with _agents_lock:
            return list(_agents)
    except Exception:  # pragma: no cover - a WeakSet caught mid-update by fork
        return []


def _after_fork_in_child() -> None:
    global _agents_lock, _mp_finalizer_pid, _process_id
    _process_id = os.getpid()
    _agents_lock = threading.Lock()
    _mp_finalizer_pid = None
    for agent in _live_agents():
        try:
            agent._after_fork_in_child()
        except Exception as exc:  # pragma: no cover - never break the child's start
            warn_once("fork-reset", "moesif: could not reset after fork (%s: %s)", type(exc).__name__, exc)


def close_all_agents() -> None:
    """Flush and stop every live agent of this process within the longest ``SHUTDOWN_TIMEOUT``.

    Registered with ``atexit``; all agents flush in parallel (their workers run concurrently).
    """
    agents = [agent for agent in _live_agents() if not agent._closed or len(agent._queue)]
    if not agents:
        return
    deadline = time.monotonic() + max(agent.settings.shutdown_timeout for agent in agents)
    for agent in agents:
        agent._begin_close()
    for agent in agents:
        agent._finish_close(min(deadline, time.monotonic() + agent.settings.shutdown_timeout), agent.settings.shutdown_timeout)


def _install_process_hooks() -> None:
    global _hooks_installed
    with _agents_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(close_all_agents)


def _register_multiprocessing_finalizer() -> None:
    """In a ``multiprocessing`` child (which exits with ``os._exit``), flush at its end like atexit would."""
    global _mp_finalizer_pid
    if "multiprocessing" not in sys.modules:
        return
    pid = os.getpid()
    if _mp_finalizer_pid == pid:
        return
    _mp_finalizer_pid = pid
    try:
        import multiprocessing
        from multiprocessing import util

        if multiprocessing.parent_process() is not None:
            util.Finalize(None, close_all_agents, exitpriority=10)
    except Exception:  # pragma: no cover - best effort
        pass
