"""Event timestamps: UTC, ISO 8601 with milliseconds and no zone suffix (``2026-11-21T18:16:46.871``).

Formatting a time through ``datetime`` costs about a microsecond; events arrive in bursts that
share the same second, so the ``YYYY-MM-DDTHH:MM:SS`` prefix is cached per second and only the
milliseconds are formatted per call.
"""

from __future__ import annotations

import math
import time
from typing import Final

__all__ = ["format_event_time"]

_PREFIX_CACHE_LIMIT: Final = 256
# second -> "YYYY-MM-DDTHH:MM:SS"; plain dict operations are atomic, so sender threads may share it.
_prefixes: dict[int, str] = {}
_MILLIS: Final = tuple(f".{n:03d}" for n in range(1000))


def _prefix(second: int) -> str:
    prefix = _prefixes.get(second)
    if prefix is None:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        if len(_prefixes) >= _PREFIX_CACHE_LIMIT:
            _prefixes.clear()
        _prefixes[second] = prefix
    return prefix


def format_event_time(timestamp: float) -> str:
    """``time.time()`` value -> ``2026-11-21T18:16:46.871``; an unusable value gives the current time.

    Example::

        format_event_time(0.5)  # "1970-01-01T00:00:00.500"
    """
    try:
        second = int(timestamp) if timestamp >= 0 else math.floor(timestamp)
        millis = min(int((timestamp - second) * 1000), 999)  # float rounding just below the next second
        prefix = _prefixes.get(second) or _prefix(second)
        return prefix + _MILLIS[millis]
    except (TypeError, ValueError, OverflowError, OSError):
        now = time.time()
        second = math.floor(now)
        return f"{_prefix(second)}.{int((now - second) * 1000):03d}"
