"""Event times: UTC, milliseconds, no zone suffix."""

from __future__ import annotations

import calendar
import re

from moesif_core.timefmt import format_event_time


def test_time_is_utc_with_milliseconds_and_no_zone() -> None:
    stamp = calendar.timegm((2026, 11, 21, 18, 16, 46)) + 0.871
    assert format_event_time(stamp) == "2026-11-21T18:16:46.871"


def test_milliseconds_are_zero_padded_and_never_roll_over() -> None:
    assert format_event_time(0.005) == "1970-01-01T00:00:00.005"
    assert format_event_time(0.9999999) == "1970-01-01T00:00:00.999"
    assert format_event_time(59.0) == "1970-01-01T00:00:59.000"


def test_same_second_twice_gives_consistent_prefixes() -> None:
    base = calendar.timegm((2030, 1, 2, 3, 4, 5))
    assert format_event_time(base + 0.1)[:19] == format_event_time(base + 0.9)[:19] == "2030-01-02T03:04:05"


def test_unusable_times_give_a_well_formed_current_time() -> None:
    pattern = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")
    for bad in (float("nan"), float("inf"), 1e30, None, "x"):
        assert pattern.match(format_event_time(bad))  # type: ignore[arg-type]
