"""Moesif API analytics for Falcon WSGI and ASGI apps.

Example::

    import falcon
    from falcon_moesif import MoesifMiddleware

    app = falcon.App(middleware=[MoesifMiddleware({"APPLICATION_ID": "..."})])
"""

from ._version import __version__
from .middleware import MoesifMiddleware

__all__ = ["MoesifMiddleware", "__version__"]
