"""Small helpers for figures: medians and ratios that tolerate missing values."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["median", "ratio"]


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base <= 0:
        return None
    return value / base
