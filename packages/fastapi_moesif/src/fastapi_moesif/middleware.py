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

from moesif_core.annotations import annotations_of
from moesif_core.asgi import AsgiApp, Message, Receive, Scope, Send
from moesif_core.asgi import MoesifMiddleware as CoreMiddleware
from moesif_core.log import warn_once
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


class _RouteNoter:
    """Sits between the capture layer and the app: notes the route template as the response starts.

    Routing happens inside the app, so the template only exists once the app answers; noting it
    on ``http.response.start`` puts it in the annotations just before the capture layer reads them.
    """

    __slots__ = ("app",)

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def noting_send(message: Message) -> None:
            if message.get("type") == "http.response.start":
                _note_route(scope)
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except BaseException:
            _note_route(scope)  # no response started: the event of the failed call still gets its route
            raise


def _note_route(scope: Scope) -> None:
    try:
        annotations = annotations_of(scope)
        if annotations is not None and annotations.route is None:
            annotations.route = route_template(scope)
    except Exception as exc:  # a strange route object must not cost the response
        warn_once("fastapi-route", "moesif: could not read the route template (%s: %s)", type(exc).__name__, exc)


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
            _RouteNoter(app),
            settings,
            framework_config=framework_config,
            agent=agent,
            user_agent=f"fastapi-moesif/{__version__}",
            request_factory=request_factory or Request,
        )
