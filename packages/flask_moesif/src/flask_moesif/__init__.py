"""Moesif API analytics for Flask: MoesifFlask(app) or init_app for app factories."""

from ._version import __version__

__all__ = ["__version__"]
