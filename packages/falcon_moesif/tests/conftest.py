"""Fixtures of falcon_moesif's tests.

Glue tests look at what the capture layer recorded through a minimal agent; end-to-end tests use
the real agent and the local collector (``moesif_collector`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest

from moesif_core.log import reset_for_tests
from moesif_core.record import RawExchange
from moesif_core.settings import Settings


class Recorder:
    """The smallest agent the capture layer accepts: keeps records, samples everything, counts flushes."""

    def __init__(self) -> None:
        self.settings = Settings.resolve({"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"})
        self.records: list[RawExchange] = []
        self.counts: dict[str, int] = {}
        self.flushes = 0
        self.sampling_needs_identity = False

    def ensure_started(self) -> None:
        pass

    def submit(self, record: RawExchange) -> bool:
        self.records.append(record)
        return True

    def count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def sample_rate(self, **_: Any) -> int:
        return 100

    def flush(self, timeout: float | None = None) -> bool:
        self.flushes += 1
        return True

    def close(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


@pytest.fixture(autouse=True)
def _fresh_log_guards() -> None:
    reset_for_tests()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
