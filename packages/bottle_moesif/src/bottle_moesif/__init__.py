"""Moesif API analytics for Bottle, as a Bottle plugin: ``app.install(MoesifPlugin(settings))``.

Example::

    import bottle
    from bottle_moesif import MoesifPlugin

    app = bottle.Bottle()
    app.install(MoesifPlugin({"APPLICATION_ID": "..."}))
"""

from moesif_core.settings import SettingsError

from ._version import __version__
from .plugin import MoesifPlugin
from .route_options import current_annotations

__all__ = ["MoesifPlugin", "SettingsError", "__version__", "current_annotations"]
