"""Moesif API analytics for Falcon WSGI and ASGI apps."""

from ._version import __version__

__all__ = ["__version__"]
