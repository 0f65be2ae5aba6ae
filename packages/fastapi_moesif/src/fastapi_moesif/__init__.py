"""Moesif API analytics for FastAPI and any Starlette or ASGI app."""

from ._version import __version__

__all__ = ["__version__"]
