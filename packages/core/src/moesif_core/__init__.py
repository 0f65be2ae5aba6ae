"""moesif_core: capture API calls, identify users and companies, and deliver events to Moesif.

Framework integrations (``flask_moesif``, ``bottle_moesif``, ``pyramid_moesif``,
``falcon_moesif``, ``fastapi_moesif``) are thin glue over :mod:`moesif_core.wsgi` and
:mod:`moesif_core.asgi`; any WSGI or ASGI app can use those directly::

    from moesif_core.wsgi import MoesifMiddleware
    app.wsgi_app = MoesifMiddleware(app.wsgi_app, {"APPLICATION_ID": "..."})
"""

from ._version import __version__
from .agent import Agent
from .annotations import RequestAnnotations, annotations_of
from .client import MoesifClient
from .entity_delivery import DeliveryResult
from .outgoing import start_capture, stop_capture
from .settings import Settings, SettingsError

__all__ = [
    "Agent",
    "DeliveryResult",
    "MoesifClient",
    "RequestAnnotations",
    "Settings",
    "SettingsError",
    "__version__",
    "annotations_of",
    "start_capture",
    "stop_capture",
]
