"""Which collector answers are retried, and how long the sender waits before the next try."""

from __future__ import annotations

import email.utils
import time

import pytest

from moesif_core.transport import backoff_delay, is_retryable_status, parse_retry_after, retry_delay


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttling_and_server_errors_are_retried(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 201, 400, 401, 403, 404, 413, 422])
def test_other_answers_are_final(status: int) -> None:
    assert not is_retryable_status(status)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    ceilings = [backoff_delay(attempt, base=0.5, cap=30.0, rng=lambda: 1.0) for attempt in range(8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_has_full_jitter() -> None:
    assert backoff_delay(3, base=0.5, cap=30.0, rng=lambda: 0.0) == 0.0
    assert backoff_delay(3, base=0.5, cap=30.0, rng=lambda: 0.25) == 1.0
    delays = {backoff_delay(4, base=0.5, cap=30.0) for _ in range(50)}
    assert len(delays) > 1
    assert all(0.0 <= d < 8.0 for d in delays)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff_delay(10_000, base=0.5, cap=30.0, rng=lambda: 1.0) == 30.0


def test_retry_after_in_seconds_is_honoured() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert retry_delay(0, base=0.5, cap=30.0, retry_after="7", rng=lambda: 0.0) == 7.0


def test_retry_after_as_an_http_date_is_honoured() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 20, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(20, abs=1.5)
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_retry_after_is_capped_at_the_backoff_maximum() -> None:
    assert retry_delay(0, base=0.5, cap=30.0, retry_after="86400") == 30.0


@pytest.mark.parametrize("header", [None, "", "soon", "-", "nan", "inf", "Mon, 99 Foo 2020"])
def test_unusable_retry_after_falls_back_to_backoff(header: str | None) -> None:
    assert retry_delay(2, base=0.5, cap=30.0, retry_after=header, rng=lambda: 1.0) == 2.0


def test_negative_retry_after_means_now() -> None:
    assert parse_retry_after("-5") == 0.0
