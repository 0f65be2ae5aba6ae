"""The queue between the request path and the sender: bounded by items and bytes, batched, flushable."""

from __future__ import annotations

import threading
import time

from moesif_core.bounded_queue import BoundedQueue


def test_put_refuses_what_exceeds_the_item_cap_and_says_why() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=3, max_bytes=10_000)
    assert [queue.put(i, 10) for i in range(5)] == [None, None, None, "dropped_queue_full", "dropped_queue_full"]
    assert len(queue) == 3
    assert queue.accepted == 3


def test_put_refuses_what_exceeds_the_byte_cap_and_says_why() -> None:
    queue: BoundedQueue[str] = BoundedQueue(max_items=1000, max_bytes=1000)
    assert queue.put("a", 600) is None
    assert queue.put("b", 600) == "dropped_bytes_full"
    assert queue.put("c", 400) is None  # exactly at the cap still fits
    assert queue.bytes == 1000
    assert queue.put("d", 1) == "dropped_bytes_full"


def test_taking_a_batch_releases_its_bytes_for_new_items() -> None:
    queue: BoundedQueue[str] = BoundedQueue(max_items=10, max_bytes=100)
    for name in "abcd":
        assert queue.put(name, 25) is None
    batch = queue.take(max_items=2, max_bytes=1000, linger=0.0)
    assert batch is not None
    assert batch.items == ["a", "b"]
    assert queue.bytes == 50
    assert queue.put("e", 50) is None


def test_take_returns_a_full_batch_at_once_without_lingering() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=1000, max_bytes=10**9)
    for i in range(250):
        queue.put(i, 1)
    batch = queue.take(max_items=100, max_bytes=10**9, linger=3600.0, timeout=5.0)
    assert batch is not None
    assert batch.items == list(range(100))


def test_take_cuts_a_batch_at_the_byte_limit_but_always_takes_one_item() -> None:
    queue: BoundedQueue[str] = BoundedQueue(max_items=1000, max_bytes=10**9)
    queue.put("huge", 5000)
    queue.put("small", 10)
    queue.put("small2", 10)
    first = queue.take(max_items=100, max_bytes=1000, linger=0.0)
    assert first is not None and first.items == ["huge"]
    second = queue.take(max_items=100, max_bytes=1000, linger=0.0)
    assert second is not None and second.items == ["small", "small2"]


def test_a_partial_batch_waits_for_linger_then_goes() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=1000, max_bytes=10**9)
    queue.put(1, 1)
    assert queue.take(max_items=100, max_bytes=10**9, linger=3600.0, timeout=0.05) is None
    batch = queue.take(max_items=100, max_bytes=10**9, linger=0.0, timeout=0.05)
    assert batch is not None and batch.items == [1]


def test_a_waiting_consumer_is_woken_when_a_batch_fills() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=1000, max_bytes=10**9)
    taken: list[list[int]] = []

    def consume() -> None:
        batch = queue.take(max_items=10, max_bytes=10**9, linger=3600.0, timeout=10.0)
        taken.append([] if batch is None else batch.items)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.05)
    for i in range(10):
        queue.put(i, 1)
    consumer.join(10)
    assert taken == [list(range(10))]


def test_hurry_sends_partial_batches_while_a_flush_is_pending() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=1000, max_bytes=10**9)
    for i in range(3):
        queue.put(i, 1)
    queue.hurry(queue.accepted)
    batch = queue.take(max_items=100, max_bytes=10**9, linger=3600.0, timeout=1.0)
    assert batch is not None and batch.items == [0, 1, 2]


def test_finished_waits_for_every_batch_holding_an_earlier_item() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=1000, max_bytes=10**9)
    for i in range(4):
        queue.put(i, 1)
    first = queue.take(max_items=2, max_bytes=10**9, linger=0.0)
    second = queue.take(max_items=2, max_bytes=10**9, linger=0.0)
    assert first is not None and second is not None
    queue.put(99, 1)  # submitted after the flush started: not waited for
    target = 4
    queue.done(second)
    assert not queue.finished(target)  # the first batch is still in flight
    assert not queue.wait_finished(target, time.monotonic() + 0.05)
    queue.done(first)
    assert queue.finished(target)
    assert not queue.finished(queue.accepted)  # item 99 is still waiting


def test_wait_finished_returns_when_another_thread_finishes_the_batch() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=1000, max_bytes=10**9)
    queue.put(1, 1)
    batch = queue.take(max_items=10, max_bytes=10**9, linger=0.0)
    assert batch is not None
    threading.Timer(0.05, queue.done, args=(batch,)).start()
    assert queue.wait_finished(1, time.monotonic() + 10)


def test_closed_queue_refuses_puts_as_shutdown_drops() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=10, max_bytes=100)
    queue.close()
    assert queue.put(1, 1) == "dropped_shutdown"


def test_drain_removes_everything_and_counts_it_finished() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=10, max_bytes=100)
    for i in range(5):
        queue.put(i, 10)
    assert queue.drain() == [0, 1, 2, 3, 4]
    assert len(queue) == 0
    assert queue.bytes == 0
    assert queue.finished(5)


def test_stop_releases_a_consumer_waiting_forever() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=10, max_bytes=100)
    results: list[object] = []
    consumer = threading.Thread(target=lambda: results.append(queue.take(10, 100, linger=1.0)))
    consumer.start()
    time.sleep(0.05)
    queue.stop()
    consumer.join(10)
    assert results == [None]


def test_put_never_blocks_while_a_consumer_holds_a_batch() -> None:
    queue: BoundedQueue[int] = BoundedQueue(max_items=5, max_bytes=10**6)
    for i in range(5):
        queue.put(i, 1)
    batch = queue.take(5, 10**6, linger=0.0)
    assert batch is not None
    # The batch is in flight (not done): new items still go in up to the cap, then are refused.
    results = [queue.put(i, 1) for i in range(7)]
    assert results.count(None) == 5
    assert results[5:] == ["dropped_queue_full", "dropped_queue_full"]
    assert queue.in_flight() == 5
