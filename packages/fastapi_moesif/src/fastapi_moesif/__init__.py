"""Moesif API analytics for FastAPI and any Starlette or ASGI app.

Example::

    from fastapi import FastAPI
    from fastapi_moesif import MoesifMiddleware

    app = FastAPI()
    app.add_middleware(MoesifMiddleware, settings={"APPLICATION_ID": "..."})
"""

from ._version import __version__
from .dependencies import MoesifCall, identify_with, moesif_call
from .middleware import MoesifMiddleware, route_template

__all__ = ["MoesifCall", "MoesifMiddleware", "__version__", "identify_with", "moesif_call", "route_template"]
