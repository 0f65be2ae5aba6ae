"""The ``moesif`` pytest plugin: a ``moesif_collector`` fixture giving each test a started local collector.

Loaded automatically (entry point ``pytest11``) wherever moesif-core is installed, so importing it
must stay cheap: the collector is imported only when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from moesif_core.collector import LocalCollector


@pytest.fixture
def moesif_collector() -> Iterator[LocalCollector]:
    """A started :class:`~moesif_core.collector.LocalCollector` (application id ``test-app``), stopped after the test."""
    from moesif_core.collector import LocalCollector

    collector = LocalCollector(application_id="test-app")
    with collector:
        yield collector
    collector.close()
