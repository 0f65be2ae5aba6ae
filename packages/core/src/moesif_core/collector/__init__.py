"""A local stand-in for the Moesif Collector API, for tests and development.

Example::

    from moesif_core.collector import LocalCollector

    with LocalCollector(application_id="test-app") as collector:
        ...  # point BASE_URI at collector.base_uri
        events = collector.wait_for_events(1)

``moesif-collector serve`` runs the same server from the command line, and the ``moesif_collector``
pytest fixture (``moesif_core.pytest_plugin``) gives each test a started one.
"""

from .assertions import assert_event, describe_event
from .config_files import CollectorFile, ConfigFileError, load_config_file
from .local_collector import DEFAULT_MAX_BODY_BYTES, Fault, LocalCollector, RecordedRequest
from .store import EventRow, EventStore, StoreError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "CollectorFile",
    "ConfigFileError",
    "EventRow",
    "EventStore",
    "Fault",
    "LocalCollector",
    "RecordedRequest",
    "StoreError",
    "assert_event",
    "describe_event",
    "load_config_file",
]
