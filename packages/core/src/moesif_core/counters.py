"""Delivery counters: how many events were queued, sent, and dropped for which reason.

The incumbents lose events silently; here every event that is not delivered is counted under the
reason it was lost, so an operator can read :meth:`Counters.snapshot` (exposed as ``stats()``) and
see at once whether the queue overflowed, the collector refused the application id, or retries ran
out. Increments come from request threads and the sender threads at once, hence the lock.

Example::

    counters = Counters()
    counters.add("sent", 100)
    counters.snapshot()["sent"]  # 100
"""

from __future__ import annotations

import threading
from typing import Final

__all__ = ["COUNTER_NAMES", "DROP_REASONS", "LOST_AFTER_QUEUE", "Counters"]

# Every reason an accepted or offered event can be lost, as they appear in ``stats()``.
DROP_REASONS: Final = (
    "dropped_queue_full",  # more events waiting than EVENT_QUEUE_SIZE
    "dropped_bytes_full",  # more bytes waiting than EVENT_QUEUE_MAX_BYTES
    "dropped_retries_exhausted",  # connection errors, timeouts, 408, 429 or 5xx past MAX_RETRIES
    "dropped_rejected",  # another 4xx: the collector refused the payload
    "dropped_unauthorized",  # 401/403: wrong application id
    "dropped_build_error",  # the event builder or the JSON encoder failed on this record
    "dropped_shutdown",  # still queued or in flight when close()/exit ran out of time
)

# Reasons an event is lost after it was accepted into the queue (flush reports these as failures).
LOST_AFTER_QUEUE: Final = (
    "dropped_retries_exhausted",
    "dropped_rejected",
    "dropped_unauthorized",
    "dropped_build_error",
    "dropped_shutdown",
)

COUNTER_NAMES: Final = (
    "queued",  # accepted into the queue (events and entities)
    "sent",  # events delivered (2xx)
    "batches_sent",  # event batch posts delivered
    "entities_sent",  # user/company/subscription posts delivered
    "retried",  # posts retried after a retryable failure
    *DROP_REASONS,
    "sampled_out",  # dropped by the sampling rate before anything was built
    "skipped",  # skipped by SKIP, a route annotation or the builder
)


class Counters:
    """A thread-safe set of named monotonically increasing counts."""

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to ``name`` (an unknown name starts at zero, so callers never raise)."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount

    def get(self, name: str) -> int:
        return self._counts.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of every count."""
        with self._lock:
            return dict(self._counts)

    def dropped(self, reasons: tuple[str, ...] = DROP_REASONS) -> int:
        """Events lost for any of ``reasons`` (by default every reason)."""
        with self._lock:
            return sum(self._counts.get(name, 0) for name in reasons)
