"""Falcon ASGI, no governance rules served: the component drives the core's record of the call itself.

``process_request_async`` starts the record (:meth:`moesif_core.asgi.MoesifMiddleware.begin_exchange`)
and tees the request body where Falcon reads it: the first body event Falcon already received,
then every later one through ``req._receive``. ``process_response_async`` completes the record
with the start message and body Falcon is about to send, or tees ``resp.stream`` / ``resp.sse``
so the call completes when Falcon has pulled the last chunk. No task, no ASGI call played around
the component. When rules are served, :mod:`falcon_moesif.asgi_bridge` plays the capture layer's
governance instead.
"""

from __future__ import annotations

from typing import Any, Final

from moesif_core.asgi import CallExchange, Message, MoesifMiddleware, Receive

from .request_parts import list_scope_headers
from .response_parts import asgi_outgoing, mark_started, note_route
from .stream_tees import tee_stream

__all__ = ["DirectCall"]

_MISSING: Final = object()


class DirectCall:
    """One request's record and the Falcon request it belongs to (the callbacks get ``req``)."""

    __slots__ = ("exchange", "req")

    def __init__(self, exchange: CallExchange, req: Any) -> None:
        self.exchange = exchange
        self.req = req

    @classmethod
    def begin(cls, capture: MoesifMiddleware, req: Any) -> DirectCall | None:
        list_scope_headers(req)
        exchange, has_body = capture.begin_exchange(req.scope)
        if exchange is None:
            return None
        if has_body and exchange.request_body is not None:
            _tee_request_body(req, exchange)
        return cls(exchange, req)

    async def respond(self, resp: Any) -> None:
        """Record what Falcon will send; the call is complete now, or when Falcon has pulled a stream."""
        req = self.req
        exchange = self.exchange
        note_route(req, exchange.annotations)
        code, body, stream_kind, headers = await asgi_outgoing(req, resp)
        if exchange.middleware.has_callbacks:
            # The callbacks get the ASGI start message's byte pairs, as under moesifasgi.
            start = {
                "type": "http.response.start",
                "status": code,
                "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            }
            await exchange.on_response_start(start)
        else:
            exchange.start_pairs(code, headers)
        if not mark_started(resp, exchange):
            return
        if not tee_stream(resp, stream_kind, self):
            if body:
                exchange.keep_last_response_chunk(body)
            exchange.finish()

    # -- the tees' sink ---------------------------------------------------------------------------

    async def chunk(self, data: bytes) -> None:
        self.exchange.keep_response_chunk(data)

    async def end(self) -> None:
        self.exchange.finish()

    def resume(self, error: BaseException | None = None) -> None:
        self.exchange.finish(error)


def _tee_request_body(req: Any, exchange: CallExchange) -> None:
    """Keep the body events as Falcon reads them; a Falcon without these internals logs no request body."""
    first: Any = getattr(req, "_first_event", _MISSING)
    receive: Any = getattr(req, "_receive", _MISSING)
    if first is _MISSING or receive is _MISSING or getattr(req, "_stream", None) is not None:
        exchange.request_body = None
        return
    if first is not None and first.get("type") == "http.request":
        exchange.keep_request_chunk(first.get("body", b""))
        if not first.get("more_body", False):
            return  # the whole body came in the first event
    req._receive = _TeedReceive(receive, exchange)


class _TeedReceive:
    """``receive`` as Falcon's request stream calls it: the server's events, body chunks kept on the way."""

    __slots__ = ("_exchange", "_receive")

    def __init__(self, receive: Receive, exchange: CallExchange) -> None:
        self._receive = receive
        self._exchange = exchange

    async def __call__(self) -> Message:
        message = await self._receive()
        if message.get("type") == "http.request":
            self._exchange.keep_request_chunk(message.get("body", b""))
        return message
