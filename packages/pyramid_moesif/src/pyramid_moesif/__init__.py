"""Moesif API analytics for Pyramid: ``config.include("pyramid_moesif")`` or ``pyramid.includes = pyramid_moesif``.

Settings come from the .ini (``moesif.application_id = ...``), then ``MOESIF_*`` environment
variables; ``config.configure_moesif(settings)`` takes a moesifwsgi-style dict that wins over both.

Example::

    config = Configurator(settings={"moesif.application_id": "..."})
    config.include("pyramid_moesif")
    app = config.make_wsgi_app()
"""

from moesif_core.settings import SettingsError

from ._version import __version__
from .include import configure_moesif, get_moesif, includeme
from .tween import TWEEN_NAME, authenticated_userid, request_of, tween_factory
from .view_options import moesif_metadata, skip_moesif

__all__ = [
    "TWEEN_NAME",
    "SettingsError",
    "__version__",
    "authenticated_userid",
    "configure_moesif",
    "get_moesif",
    "includeme",
    "moesif_metadata",
    "request_of",
    "skip_moesif",
    "tween_factory",
]
