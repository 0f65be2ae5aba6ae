"""Shared fixtures of moesif_core's tests.

Capture tests look at what the capture layer recorded through :class:`moesif_core.testing.RecordingAgent`;
end-to-end tests use the real agent and the local collector instead.
"""

from __future__ import annotations

import pytest

from moesif_core.log import reset_for_tests
from moesif_core.testing import RecordingAgent


@pytest.fixture(autouse=True)
def _fresh_log_guards() -> None:
    reset_for_tests()


@pytest.fixture
def recording_agent() -> RecordingAgent:
    return RecordingAgent()
