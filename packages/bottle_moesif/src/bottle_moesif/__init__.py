"""Moesif API analytics for Bottle, as a Bottle plugin."""

from ._version import __version__

__all__ = ["__version__"]
