"""The Falcon middleware component: one class for ``falcon.App`` and ``falcon.asgi.App``.

Example::

    import falcon
    from falcon_moesif import MoesifMiddleware

    app = falcon.App(middleware=[MoesifMiddleware({"APPLICATION_ID": "..."})])
    # or: app = falcon.asgi.App(middleware=[MoesifMiddleware({"APPLICATION_ID": "..."})])

List it first, so that its ``process_response`` runs last and sees the final response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from moesif_core import asgi as core_asgi
from moesif_core import wsgi as core_wsgi
from moesif_core.agent_api import AgentApi
from moesif_core.annotations import annotations_of
from moesif_core.log import warn_once
from moesif_core.settings import Settings

from . import asgi_bridge, wsgi_bridge, wsgi_direct
from ._version import __version__
from .asgi_direct import DirectCall

if TYPE_CHECKING:
    from moesif_core.agent import Agent

__all__ = ["MoesifMiddleware"]


def _falcon_request(scope: Any) -> Any:
    """ASGI callbacks get the Falcon request (``req.get_header``, ``req.context``, ``req.uri_template``)."""
    call = scope.get(asgi_bridge.STATE_KEY)
    return call.req if isinstance(call, (DirectCall, asgi_bridge.AsgiCall)) else core_asgi.AsgiRequest(scope)


class MoesifMiddleware(AgentApi):
    """Captures every call of a Falcon WSGI or ASGI app and sends it to Moesif in the background.

    ``settings`` takes every key moesifwsgi/moesifasgi take (missing or wrong keys raise
    :class:`~moesif_core.settings.SettingsError` here). Callbacks get what the incumbents give:
    ``(app, environ, response_headers)`` under ``falcon.App`` (``app`` is this component) and
    ``(request, response)`` under ``falcon.asgi.App``, where ``request`` is the Falcon request;
    there they may be ``async def``. Under ASGI, queued events are flushed at lifespan shutdown.
    """

    def __init__(self, settings: Mapping[str, Any] | Settings | None = None, *, agent: Agent | None = None) -> None:
        self.settings = Settings.resolve(settings)
        if agent is None:
            from moesif_core.agent import Agent

            agent = Agent(self.settings, user_agent=f"falcon-moesif/{__version__}")
        self.agent = agent
        self._wsgi: core_wsgi.MoesifMiddleware | None = None
        self._asgi: core_asgi.MoesifMiddleware | None = None

    def _wsgi_capture(self) -> core_wsgi.MoesifMiddleware:
        capture = self._wsgi
        if capture is None:
            capture = self._wsgi = core_wsgi.MoesifMiddleware(
                wsgi_bridge.parked_app, self.settings, callback_app=self, agent=self.agent
            )
        return capture

    def _asgi_capture(self) -> core_asgi.MoesifMiddleware:
        capture = self._asgi
        if capture is None:
            capture = self._asgi = core_asgi.MoesifMiddleware(
                asgi_bridge.parked_app, self.settings, agent=self.agent, request_factory=_falcon_request
            )
        return capture

    # -- falcon.App (WSGI) --------------------------------------------------------------------

    def process_request(self, req: Any, resp: Any) -> None:
        try:
            if annotations_of(req.env) is not None:
                return  # an outer Moesif middleware already captures this call
            capture = self._wsgi or self._wsgi_capture()
            if capture.governor() is None:
                wsgi_direct.begin(capture, req, wsgi_bridge.STATE_KEY)
            else:
                wsgi_bridge.WsgiCall().begin(capture, req, resp)
        except Exception as exc:  # our own bug: the request goes on uncaptured
            warn_once("falcon-wsgi-begin", "moesif: could not start capturing a call (%s: %s)", type(exc).__name__, exc)

    def process_response(self, req: Any, resp: Any, resource: Any, req_succeeded: bool) -> None:
        call = req.env.pop(wsgi_bridge.STATE_KEY, None)
        if call is None:
            return
        try:
            if isinstance(call, core_wsgi.EXCHANGE_TYPES):
                wsgi_direct.respond(cast("core_wsgi.CallExchange", call), req, resp)
            elif isinstance(call, wsgi_bridge.WsgiCall):
                call.respond(req, resp)
        except Exception as exc:
            warn_once("falcon-wsgi-respond", "moesif: could not capture a response (%s: %s)", type(exc).__name__, exc)

    # -- falcon.asgi.App ------------------------------------------------------------------------

    async def process_request_async(self, req: Any, resp: Any) -> None:
        try:
            scope = req.scope
            if annotations_of(scope) is not None:
                return
            capture = self._asgi or self._asgi_capture()
            if capture.governor() is None:
                call = DirectCall.begin(capture, req)
                if call is not None:
                    scope[asgi_bridge.STATE_KEY] = call
            else:
                await asgi_bridge.AsgiCall(req).begin(capture, resp)
        except Exception as exc:
            warn_once("falcon-asgi-begin", "moesif: could not start capturing a call (%s: %s)", type(exc).__name__, exc)

    async def process_response_async(self, req: Any, resp: Any, resource: Any, req_succeeded: bool) -> None:
        call = req.scope.get(asgi_bridge.STATE_KEY)
        if isinstance(call, DirectCall):
            try:
                await call.respond(resp)
            except Exception as exc:
                warn_once("falcon-asgi-respond", "moesif: could not capture a response (%s: %s)", type(exc).__name__, exc)
            del req.scope[asgi_bridge.STATE_KEY]  # the callbacks have run: no req -> scope -> call -> req cycle
            return
        if not isinstance(call, asgi_bridge.AsgiCall):
            return
        try:
            await call.respond(resp)
        except Exception as exc:
            warn_once("falcon-asgi-respond", "moesif: could not capture a response (%s: %s)", type(exc).__name__, exc)
            call.resume()

    async def process_startup(self, scope: Any, event: Any) -> None:
        """ASGI lifespan startup: nothing to prepare (the sender starts with the first event)."""

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        """ASGI lifespan shutdown: deliver what is queued before the server reports shutdown complete."""
        await self.aflush()
