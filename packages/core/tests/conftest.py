"""Shared fixtures of moesif_core's tests."""

from __future__ import annotations

from typing import Any

import pytest

from moesif_core.log import reset_for_tests
from moesif_core.record import RawExchange
from moesif_core.settings import Settings


class RecordingAgent:
    """Stands in for the agent where a test looks at what the capture layer recorded, not at delivery.

    End-to-end tests use the real agent and the local collector instead.
    """

    def __init__(self, settings: Settings, rate: int = 100) -> None:
        self.settings = settings
        self.records: list[RawExchange] = []
        self.counts: dict[str, int] = {}
        self.rate = rate
        self.sampling_needs_identity = False

    def submit(self, record: RawExchange) -> bool:
        self.records.append(record)
        return True

    def ensure_started(self) -> None:
        pass

    def count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def sample_rate(self, **_: Any) -> int:
        return self.rate

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


@pytest.fixture(autouse=True)
def _fresh_log_guards() -> None:
    reset_for_tests()


@pytest.fixture
def recording_agent() -> RecordingAgent:
    return RecordingAgent(Settings.resolve({"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}))
