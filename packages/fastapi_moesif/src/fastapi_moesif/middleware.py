"""The ASGI middleware for FastAPI and Starlette: the core capture layer plus two framework facts.

Starlette's ``Request`` is what the callbacks get (as with moesifasgi), and the route template
FastAPI's router leaves in ``scope["route"]`` becomes the event's route. Everything else (body
tees, streaming, errors, sampling, lifespan flush) is :class:`moesif_core.asgi.MoesifMiddleware`.

Example::

    from fastapi import FastAPI
    from fastapi_moesif import MoesifMiddleware

    app = FastAPI()
    app.add_middleware(MoesifMiddleware, settings={"APPLICATION_ID": "..."})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from moesif_core.annotations import RequestAnnotations
from moesif_core.asgi import AsgiApp, Scope
from moesif_core.asgi import MoesifMiddleware as CoreMiddleware
from moesif_core.settings import Settings

from ._version import __version__

if TYPE_CHECKING:
    from moesif_core.agent import Agent
    from moesif_core.asgi import RequestFactory

__all__ = ["MoesifMiddleware"]


def route_template(scope: Scope) -> str | None:
    """The path template of the route that served ``scope`` (``"/items/{item_id}"``), when the router said."""
    route = scope.get("route")  # set by FastAPI's APIRoute once it matched
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _note_route(scope: Scope, annotations: RequestAnnotations) -> None:
    """The capture layer's ``annotate``: routing happened inside the app, so the template exists once it answers."""
    if annotations.route is None:
        annotations.route = route_template(scope)


class MoesifMiddleware(CoreMiddleware):
    """Captures every HTTP call of a FastAPI or Starlette app and sends it to Moesif in the background.

    Use it as ``app.add_middleware(MoesifMiddleware, settings={...})`` or wrap any ASGI app with it.
    ``settings`` takes every key moesifasgi takes; callbacks get ``(request, response)`` where
    ``request`` is a ``starlette.requests.Request``, and may be ``async def``. Queued events are
    flushed when the server runs the lifespan shutdown.
    """

    def __init__(
        self,
        app: AsgiApp,
        settings: Mapping[str, Any] | Settings | None = None,
        *,
        framework_config: Mapping[str, Any] | None = None,
        agent: Agent | None = None,
        request_factory: RequestFactory | None = None,
    ) -> None:
        super().__init__(
            app,
            settings,
            framework_config=framework_config,
            agent=agent,
            user_agent=f"fastapi-moesif/{__version__}",
            request_factory=request_factory or Request,
            annotate=_note_route,
        )
