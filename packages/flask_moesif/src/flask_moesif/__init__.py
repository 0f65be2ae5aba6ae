"""Moesif API analytics for Flask: ``MoesifFlask(app)``, or ``moesif.init_app(app)`` for app factories.

Example::

    from flask import Flask
    from flask_moesif import MoesifFlask

    app = Flask(__name__)
    app.config["MOESIF_APPLICATION_ID"] = "..."
    moesif = MoesifFlask(app)
"""

from moesif_core.settings import SettingsError

from ._version import __version__
from .extension import MoesifFlask
from .view_options import current_annotations, moesif_metadata, skip_moesif

__all__ = ["MoesifFlask", "SettingsError", "__version__", "current_annotations", "moesif_metadata", "skip_moesif"]
