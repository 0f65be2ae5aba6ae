"""The hand-off between the request path and the sender: a FIFO bounded by items AND bytes.

The incumbents' queue grows without limit while the collector is down (1.2 GB for 50,000
requests). This one refuses what does not fit, in O(1) and without blocking, and says why, so the
caller counts the drop. Consumers take whole batches: a batch leaves when it is full (by items or
bytes), when its oldest item has waited ``linger`` seconds, or at once while a flush is pending.

Items leave in the order they came, so the n-th accepted item is the n-th taken: a flush only
needs the accepted count at its start, and waits until that many have been taken and every batch
holding one of them is :meth:`done` (delivered or dropped), without per-item bookkeeping.

Example::

    queue: BoundedQueue[str] = BoundedQueue(max_items=1000, max_bytes=1 << 20)
    queue.put("event", 100)          # None: accepted (else the drop reason)
    batch = queue.take(100, 1 << 20, linger=1.0)
    ...                              # deliver batch.items
    queue.done(batch)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Batch", "BoundedQueue"]

T = TypeVar("T")


class Batch(Generic[T]):
    """Items taken together; ``first`` is the acceptance number of the first one."""

    __slots__ = ("first", "items", "size")

    def __init__(self, first: int, items: list[T], size: int) -> None:
        self.first = first
        self.items = items
        self.size = size


class BoundedQueue(Generic[T]):
    """A FIFO of at most ``max_items`` items and ``max_bytes`` bytes; see the module docstring."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # consumers wait here for a batch
        self._progress = threading.Condition(self._lock)  # flushers wait here for batches to be done
        self._items: deque[tuple[T, int, float]] = deque()
        self._bytes = 0
        self._accepted = 0
        self._taken = 0
        self._in_flight: dict[int, int] = {}  # first acceptance number -> item count
        self._hurry_until = 0  # no lingering while fewer than this many were taken
        self._closed = False  # refuses puts
        self._stopped = False  # consumers get None
        # Put wakes a consumer only when a batch becomes ready, not on every item.
        self._wake_items = 1 << 62
        self._wake_bytes = 1 << 62

    # -- producer side (request path: O(1), never blocks for long) ------------------------------

    def put(self, item: T, size: int) -> str | None:
        """Append ``item`` weighing ``size`` bytes; None when accepted, else the drop reason."""
        with self._lock:
            if self._closed:
                return "dropped_shutdown"
            count = len(self._items)
            if count >= self.max_items:
                return "dropped_queue_full"
            before = self._bytes
            if before + size > self.max_bytes:
                return "dropped_bytes_full"
            self._items.append((item, size, time.monotonic()))
            self._bytes = before + size
            self._accepted += 1
            if count == 0 or count + 1 == self._wake_items or (before < self._wake_bytes <= before + size):
                self._ready.notify()
            return None

    # -- consumer side ------------------------------------------------------------------------

    def take(self, max_items: int, max_bytes: int, linger: float, timeout: float | None = None) -> Batch[T] | None:
        """Wait for a batch and take it; None when stopped, or when ``timeout`` passes first.

        The batch holds at most ``max_items`` items and ``max_bytes`` bytes (always at least one
        item, however big). It must be handed back with :meth:`done` once delivered or dropped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._wake_items = max_items
            self._wake_bytes = max_bytes
            while True:
                if self._stopped:
                    return None
                items = self._items
                now = time.monotonic()
                wait: float | None = None
                if items:
                    if len(items) >= max_items or self._bytes >= max_bytes or self._closed or self._taken < self._hurry_until:
                        break
                    wait = items[0][2] + linger - now
                    if wait <= 0:
                        break
                if deadline is not None:
                    remaining = deadline - now
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._ready.wait(wait)
            taken: list[T] = []
            size = 0
            while items and len(taken) < max_items:
                item, item_size, _ = items[0]
                if taken and size + item_size > max_bytes:
                    break
                items.popleft()
                taken.append(item)
                size += item_size
            self._bytes -= size
            batch = Batch(self._taken, taken, size)
            self._taken += len(taken)
            self._in_flight[batch.first] = len(taken)
            if items and (len(items) >= max_items or self._taken < self._hurry_until):
                self._ready.notify()  # another ready batch: let a second consumer have it
            return batch

    def done(self, batch: Batch[T]) -> None:
        """Mark ``batch`` finished (delivered or dropped), releasing flushes waiting on it."""
        with self._lock:
            self._in_flight.pop(batch.first, None)
            self._progress.notify_all()

    def drain(self) -> list[T]:
        """Remove and return every waiting item (they count as finished: the caller drops them)."""
        with self._lock:
            drained = [item for item, _, _ in self._items]
            self._items.clear()
            self._bytes = 0
            self._taken += len(drained)
            self._progress.notify_all()
            return drained

    # -- flush and shutdown -------------------------------------------------------------------

    @property
    def accepted(self) -> int:
        """How many items were ever accepted: a flush waits for this many to be finished."""
        return self._accepted

    def hurry(self, until: int) -> None:
        """Send partial batches at once until ``until`` items have been taken (a flush is pending)."""
        with self._lock:
            self._hurry_until = max(self._hurry_until, until)
            self._ready.notify_all()

    def finished(self, target: int) -> bool:
        """Whether the first ``target`` accepted items have all been taken and their batches done."""
        with self._lock:
            return self._finished(target)

    def _finished(self, target: int) -> bool:
        return self._taken >= target and all(first >= target for first in self._in_flight)

    def wait_finished(self, target: int, deadline: float) -> bool:
        """Wait until :meth:`finished` (True) or the monotonic ``deadline`` passes (False)."""
        with self._lock:
            while not self._finished(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
            return True

    def close(self) -> None:
        """Refuse further puts; consumers take what is left without lingering."""
        with self._lock:
            self._closed = True
            self._ready.notify_all()

    def stop(self) -> None:
        """Make every consumer's :meth:`take` return None, now and later."""
        with self._lock:
            self._stopped = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def in_flight(self) -> int:
        """Items taken and not yet done."""
        with self._lock:
            return sum(self._in_flight.values())

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        """Bytes of the items waiting (not of those in flight)."""
        return self._bytes
