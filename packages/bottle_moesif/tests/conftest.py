"""Fixtures of bottle_moesif's tests: a recording stand-in for the sender, and a clean ``moesif`` log."""

from __future__ import annotations

from typing import Any

import pytest

from moesif_core.log import reset_for_tests
from moesif_core.record import RawExchange
from moesif_core.remote_config import RemoteConfig
from moesif_core.settings import Settings


class RecordingAgent:
    """Keeps what the capture layer hands over, so glue tests look at records rather than delivery."""

    sampling_needs_identity = False

    def __init__(self) -> None:
        self.settings = Settings.resolve({"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"})
        self.records: list[RawExchange] = []
        self.counts: dict[str, int] = {}
        self.calls: list[str] = []

    def submit(self, record: RawExchange) -> bool:
        self.records.append(record)
        return True

    def submit_entity(self, kind: str, entity: Any) -> bool:
        self.calls.append(f"entity:{kind}")
        return True

    def ensure_started(self) -> None:
        pass

    @property
    def config(self) -> RemoteConfig:
        return RemoteConfig()  # what a fresh agent serves before the first fetch

    def count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def sample_rate(self, **_: Any) -> int:
        return 100

    def flush(self, timeout: float | None = None) -> bool:
        self.calls.append("flush")
        return True

    def close(self, timeout: float | None = None) -> bool:
        self.calls.append("close")
        return True

    def stats(self) -> dict[str, int]:
        return dict(self.counts)


@pytest.fixture(autouse=True)
def _fresh_log_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_for_tests()
    # Settings fall back to MOESIF_* variables: a developer's shell must not change what a test sees.
    import os

    for name in list(os.environ):
        if name.startswith("MOESIF_"):
            monkeypatch.delenv(name)


@pytest.fixture
def agent() -> RecordingAgent:
    return RecordingAgent()
