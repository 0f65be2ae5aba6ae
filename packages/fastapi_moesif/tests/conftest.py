"""Fixtures of fastapi_moesif's tests.

Glue tests look at what the capture layer recorded through :class:`moesif_core.testing.RecordingAgent`;
end-to-end tests use the real agent and the local collector (``moesif_collector`` fixture).
"""

from __future__ import annotations

import pytest

from moesif_core.log import reset_for_tests
from moesif_core.testing import RecordingAgent


@pytest.fixture(autouse=True)
def _fresh_log_guards() -> None:
    reset_for_tests()


@pytest.fixture
def recorder() -> RecordingAgent:
    return RecordingAgent()
