"""Moesif API analytics for Pyramid: config.include('pyramid_moesif')."""

from ._version import __version__

__all__ = ["__version__"]
