"""The ``moesif`` pytest plugin: a ``moesif_collector`` fixture giving each test a started local collector.

Loaded automatically (entry point ``pytest11``) wherever moesif-core is installed, so importing it
must stay cheap and must not touch the network: the collector is imported only when a test asks
for the fixture, and it listens on 127.0.0.1 only.

Example::

    def test_orders_are_logged(moesif_collector):
        app = make_app(moesif_collector.settings(LOG_BODY=False))
        client_of(app).get("/orders")
        [event] = moesif_collector.wait_for_events(1)
        moesif_collector.assert_event(event, path="/orders", status=200)

    @pytest.mark.moesif_collector(config={"sample_rate": 0}, rules=[...], application_id=None)
    def test_with_sampling_off(moesif_collector): ...

A ``moesif_recorder`` fixture gives a fresh :class:`~moesif_core.testing.RecordingAgent` for unit
tests of capture that need no collector (pass it as the middleware's ``agent=``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from moesif_core.collector import LocalCollector
    from moesif_core.testing import RecordingAgent

_MARKER = "moesif_collector"
_CONSTRUCTOR_KEYS = {"application_id", "db_path", "config_file", "max_body_bytes", "strict_events"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(application_id='test-app', config=None, rules=None, config_etag=None, strict_events=True, "
        "max_body_bytes=..., db_path=None, config_file=None): how the moesif_collector fixture's collector is set up",
    )


@pytest.fixture
def moesif_collector(request: pytest.FixtureRequest) -> Iterator[LocalCollector]:
    """A started :class:`~moesif_core.collector.LocalCollector` on 127.0.0.1, stopped and closed after the test.

    Its application id is ``test-app`` unless the ``moesif_collector`` marker says otherwise;
    ``moesif_collector.settings(**extra)`` gives middleware settings pointing at it.
    """
    from moesif_core.collector import LocalCollector

    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None:
        if marker.args:
            pytest.fail(f"@pytest.mark.{_MARKER} takes keyword arguments only, got {marker.args!r}", pytrace=False)
        options = dict(marker.kwargs)
    config = options.pop("config", None)
    rules = options.pop("rules", None)
    etag = options.pop("config_etag", None)
    unknown = sorted(set(options) - _CONSTRUCTOR_KEYS)
    if unknown:
        pytest.fail(
            f"@pytest.mark.{_MARKER} got unknown arguments {unknown}; known: "
            f"{sorted(_CONSTRUCTOR_KEYS | {'config', 'rules', 'config_etag'})}",
            pytrace=False,
        )
    options.setdefault("application_id", "test-app")
    collector = LocalCollector(**options)
    if config is not None:
        collector.set_config(config, etag)
    if rules is not None:
        collector.set_rules(rules)
    collector.start()
    try:
        yield collector
    finally:
        collector.close()


@pytest.fixture
def moesif_recorder() -> RecordingAgent:
    """A fresh :class:`~moesif_core.testing.RecordingAgent`: keeps what the capture layer records, sends nothing."""
    from moesif_core.testing import RecordingAgent

    return RecordingAgent()
