"""Fixtures of flask_moesif's tests: a recording stand-in for the agent, and a clean ``moesif`` log."""

from __future__ import annotations

import os

import pytest

from moesif_core.log import reset_for_tests
from moesif_core.testing import RecordingAgent


@pytest.fixture(autouse=True)
def _fresh_log_guards(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_for_tests()
    # Settings fall back to MOESIF_* variables: a developer's shell must not change what a test sees.
    for name in list(os.environ):
        if name.startswith("MOESIF_"):
            monkeypatch.delenv(name)


@pytest.fixture
def agent() -> RecordingAgent:
    return RecordingAgent()
