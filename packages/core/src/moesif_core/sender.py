"""The background sender: takes batches off the queue, builds events, posts them with retries.

``EVENT_WORKER_COUNT`` daemon threads each own one keep-alive connection and loop: take a batch
(full, or its oldest record waited ``EVENT_BATCH_TIMEOUT``), encode its records into events (on
this thread, never the request's: the native writer does a whole batch at once and writes it with
the GIL released; a custom builder's events go through orjson one by one), join them under
``BATCH_MAX_BYTES``, gzip (with the GIL released too), POST ``/v1/events/batch``. While one
worker waits on the network the other builds, so building and sending overlap.

Every record ends in exactly one counter: ``sent`` or a ``dropped_*`` reason (a builder that
returns None or raises: ``dropped_build_error``). Retries use exponential backoff with full
jitter (``Retry-After`` honoured, capped at ``RETRY_BACKOFF_MAX``) on connection errors,
timeouts, 408, 429 and 5xx; 401/403 get one clear warning about the application id; other 4xx
one rate-limited line. Retry sleeps end early when :meth:`Sender.abandon` is called (close/exit
ran out of time).

Entities (users, companies, subscriptions) travel through the same queue and get the same retries,
each as its own post to ``/v1/<kind>``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from .bounded_queue import Batch, BoundedQueue
from .counters import Counters
from .log import logger, warn_once, warn_rate_limited
from .record import RawExchange
from .settings import Settings, mask_application_id
from .transport import HttpTransport, Response, TransportError, gzip_parts, is_retryable_status, retry_delay

__all__ = ["ENTITY_KINDS", "EVENTS_PATH", "Builder", "Encoder", "EntityPost", "Sender", "encode", "make_encoder"]

EVENTS_PATH: Final = "/v1/events/batch"
ENTITY_KINDS: Final = frozenset({"users", "users/batch", "companies", "companies/batch", "subscriptions", "subscriptions/batch"})
_ORJSON_OPTIONS: Final = orjson.OPT_NON_STR_KEYS

# A record -> its event (None: it could not be built; the builder logged why).
Builder = Callable[[RawExchange], "dict[str, Any] | None"]
# Records and the batch byte limit -> their events as JSON pieces (events joined by ",", how many),
# and how many records gave no event.
Encoder = Callable[[list[RawExchange], int], "tuple[list[tuple[bytes, int]], int]"]


def encode(value: Any) -> bytes:
    """JSON bytes the way every payload is encoded: unknown types as ``str``, non-string keys allowed."""
    return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)


def make_encoder(settings: Settings, build: Builder | None) -> Encoder:
    """Records -> event JSON: ``build`` then orjson for each, or by default the event builder's batch.

    Call it on the thread that creates the agent, not on a sender thread: a first-time import on
    a background thread that a fork interrupts leaves the module locked forever in the child.
    """
    if build is None:
        from .event_builder import EventBuilder

        # The builder serialises each event itself, so it is encoded once, not twice.
        return EventBuilder(settings).build_json_batch

    def encode_each(records: list[RawExchange], limit: int) -> tuple[list[tuple[bytes, int]], int]:
        pieces: list[tuple[bytes, int]] = []
        failed = 0
        for record in records:
            try:
                event = build(record)
                blob = None if event is None else orjson.dumps(event, default=str, option=_ORJSON_OPTIONS)
            except Exception as exc:
                blob = None
                warn_rate_limited(
                    "build-error", "moesif: could not build an event, dropping it (%s: %s)", type(exc).__name__, exc
                )
            if blob is None:
                failed += 1
            else:
                pieces.append((blob, 1))
        return pieces, failed

    return encode_each


class EntityPost:
    """A user/company/subscription update waiting in the queue, already encoded (its size is known)."""

    __slots__ = ("body", "kind")

    def __init__(self, kind: str, body: bytes) -> None:
        self.kind = kind
        self.body = body

    @property
    def path(self) -> str:
        return f"/v1/{self.kind}"


QueueItem = RawExchange | EntityPost


class Sender:
    """The worker threads of one agent; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        queue: BoundedQueue[QueueItem],
        counters: Counters,
        build: Builder | None,
        transport_factory: Callable[[], HttpTransport],
        on_response: Callable[[Response], None] | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.settings = settings
        self._queue = queue
        self._counters = counters
        self._build = build
        self._encode: Encoder | None = encoder
        self._build_lock = threading.Lock()
        self._transport_factory = transport_factory
        self._on_response = on_response
        self._abandoned = threading.Event()
        self._threads: list[threading.Thread] = []
        self._masked_id = mask_application_id(settings.application_id)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> bool:
        """Start the workers; False when no thread could be started (interpreter shutting down)."""
        for index in range(self.settings.event_worker_count):
            thread = threading.Thread(target=self._work, name=f"moesif-sender-{index}", daemon=True)
            try:
                thread.start()
            except RuntimeError as exc:
                warn_once("sender-start", "moesif: could not start the sender thread (%s); events are sent at flush", exc)
                break
            self._threads.append(thread)
        return bool(self._threads)

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def abandon(self) -> None:
        """Stop retrying: sleeping retries wake and drop their batch as ``dropped_shutdown``."""
        self._abandoned.set()

    def join(self, deadline: float) -> bool:
        """Wait for the workers to end, until the monotonic ``deadline``; True when all ended."""
        for thread in self._threads:
            if thread is threading.current_thread():
                continue
            remaining = deadline - time.monotonic()
            if remaining > 0:
                thread.join(remaining)
        return not self.alive()

    # -- the work -----------------------------------------------------------------------------

    def _work(self) -> None:
        transport = self._transport_factory()
        settings = self.settings
        try:
            while True:
                batch = self._queue.take(settings.batch_size, settings.batch_max_bytes, settings.event_batch_timeout)
                if batch is None:
                    return
                self.deliver(transport, batch)
        finally:
            transport.close()

    def deliver_pending(self, deadline: float) -> None:
        """Deliver what is queued from the calling thread, until empty or ``deadline`` (no workers left)."""
        transport = self._transport_factory()
        settings = self.settings
        try:
            while time.monotonic() < deadline:
                batch = self._queue.take(settings.batch_size, settings.batch_max_bytes, 0.0, timeout=0.0)
                if batch is None:
                    return
                self.deliver(transport, batch, deadline)
        finally:
            transport.close()

    def deliver(self, transport: HttpTransport, batch: Batch[QueueItem], deadline: float | None = None) -> None:
        """Build, encode and post ``batch``; counts every item's outcome; never raises."""
        try:
            self._deliver(transport, batch.items, deadline)
        except Exception as exc:  # a bug of ours must not end the worker
            warn_once("sender-crash", "moesif: delivering a batch failed unexpectedly (%s: %s)", type(exc).__name__, exc)
        finally:
            self._queue.done(batch)

    def _encoder(self) -> Encoder:
        encode = self._encode
        if encode is not None:
            return encode
        with self._build_lock:
            if self._encode is None:
                self._encode = make_encoder(self.settings, self._build)
            return self._encode

    def _deliver(self, transport: HttpTransport, items: list[QueueItem], deadline: float | None) -> None:
        records: list[RawExchange] = []
        entities: list[EntityPost] = []
        for item in items:
            if type(item) is EntityPost:
                entities.append(item)
            else:
                records.append(item)  # type: ignore[arg-type]
        limit = self.settings.batch_max_bytes
        if records:
            pieces: list[tuple[bytes, int]] = []
            failed = len(records)
            try:
                encode = self._encoder()
            except Exception as exc:
                warn_once("builder-import", "moesif: the event builder is unavailable (%s: %s)", type(exc).__name__, exc)
            else:
                try:
                    pieces, failed = encode(records, limit)
                except Exception as exc:  # a bug of ours: the batch is dropped, the worker goes on
                    warn_rate_limited(
                        "build-error", "moesif: could not build events, dropping them (%s: %s)", type(exc).__name__, exc
                    )
            if failed:
                self._counters.add("dropped_build_error", failed)
                if self.settings.debug:
                    logger.debug("moesif: dropped %d events: build error", failed)
            self._post_pieces(transport, pieces, limit, deadline)
        for entity in entities:
            self._post(transport, entity.path, (entity.body,), 1, deadline, entity=True)

    def _post_pieces(self, transport: HttpTransport, pieces: list[tuple[bytes, int]], limit: int, deadline: float | None) -> None:
        """Post the pieces joined into batches of at most ``limit`` bytes (a bigger piece alone)."""
        chunk: list[bytes] = []
        count = 0
        size = 2
        for piece, events in pieces:
            if chunk and size + len(piece) + 1 > limit:
                self._post(transport, EVENTS_PATH, (b"[", b",".join(chunk), b"]"), count, deadline)
                chunk = []
                count = 0
                size = 2
            chunk.append(piece)
            count += events
            size += len(piece) + 1
        if chunk:
            self._post(transport, EVENTS_PATH, (b"[", b",".join(chunk), b"]"), count, deadline)

    def _post(
        self,
        transport: HttpTransport,
        path: str,
        parts: tuple[bytes, ...],
        count: int,
        deadline: float | None,
        *,
        entity: bool = False,
    ) -> None:
        settings = self.settings
        debug = settings.debug
        what = path if entity else f"batch of {count}"
        payload = gzip_parts(parts)
        attempt = 0
        while True:
            if self._abandoned.is_set() or (deadline is not None and time.monotonic() >= deadline):
                self._drop("dropped_shutdown", count, what, "shutting down")
                return
            retry_after: str | None = None
            try:
                response = transport.request("POST", path, payload, gzip=True)
            except TransportError as exc:
                why = str(exc)
            else:
                if self._on_response is not None:
                    self._on_response(response)
                status = response.status
                if 200 <= status < 300:
                    if entity:
                        self._counters.add("entities_sent")
                    else:
                        self._counters.add("sent", count)
                        self._counters.add("batches_sent")
                    if debug:
                        logger.debug("moesif: sent %s (%d bytes gzip) -> HTTP %d", what, len(payload), status)
                    return
                if status in (401, 403):
                    self._unauthorized(status)
                    self._drop("dropped_unauthorized", count, what, f"HTTP {status}")
                    return
                if not is_retryable_status(status):
                    warn_rate_limited(
                        f"rejected:{settings.base_uri}",
                        "moesif: the Collector API rejected %s with HTTP %d (%s); dropped",
                        what,
                        status,
                        # The answer may quote the request back: never log the application id in full.
                        response.body[:4096].decode("utf-8", "replace").replace(settings.application_id, self._masked_id)[:200],
                    )
                    self._drop("dropped_rejected", count, what, f"HTTP {status}")
                    return
                why = f"HTTP {status}"
                retry_after = response.headers.get("retry-after")
            if attempt >= settings.max_retries:
                warn_rate_limited(
                    f"retries-exhausted:{settings.base_uri}",
                    "moesif: giving up on %s after %d retries (%s); dropped",
                    what,
                    attempt,
                    why,
                )
                self._drop("dropped_retries_exhausted", count, what, f"{why} after {attempt} retries")
                return
            delay = retry_delay(attempt, settings.retry_backoff, settings.retry_backoff_max, retry_after)
            self._counters.add("retried")
            if debug:
                logger.debug("moesif: %s failed (%s); retry %d in %.2fs", what, why, attempt + 1, delay)
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            if self._abandoned.wait(delay):
                self._drop("dropped_shutdown", count, what, "shutting down")
                return
            attempt += 1

    def _drop(self, reason: str, count: int, what: str, why: str) -> None:
        self._counters.add(reason, count)
        if self.settings.debug:
            logger.debug("moesif: dropped %s: %s (%s)", what, reason, why)

    def _unauthorized(self, status: int) -> None:
        warn_once(
            f"unauthorized:{self.settings.base_uri}:{self._masked_id}",
            "moesif: the Collector API at %s refused application id %s (HTTP %d): the APPLICATION_ID is wrong "
            "(copy it from your Moesif account under API Keys). Events are dropped until it is fixed.",
            self.settings.base_uri,
            self._masked_id,
            status,
        )
