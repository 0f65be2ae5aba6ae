"""Falcon WSGI, no governance rules served: the component drives the core's record of the call itself.

``process_request`` starts the record (:meth:`moesif_core.wsgi.MoesifMiddleware.begin_exchange`:
times, the environ's strings, the request body tee) and ``process_response`` completes it with
what Falcon is about to send: status, headers and the rendered body, or the stream behind the
core's :class:`~moesif_core.wsgi.ResponseTee`, which completes the call when the server has
pulled the last chunk. No WSGI call is played around the component, so a call costs what
recording it costs. When rules are served, :mod:`falcon_moesif.wsgi_bridge` plays the capture
layer's governance instead.
"""

from __future__ import annotations

from typing import Any

from moesif_core.wsgi import CallExchange, MoesifMiddleware, ResponseTee

from .request_parts import point_stream_at_tee
from .response_parts import has_no_body, header_pairs, mark_started, note_route, status_code

__all__ = ["begin", "respond"]


def begin(capture: MoesifMiddleware, req: Any, state_key: str) -> None:
    """Start recording ``req``'s call, unless SKIP says no."""
    env = req.env
    original_input = env.get("wsgi.input")
    exchange = capture.begin_exchange(env)
    if exchange is None:
        return
    env[state_key] = exchange
    point_stream_at_tee(req, original_input)


def respond(exchange: CallExchange, req: Any, resp: Any) -> None:
    """Record what Falcon will send; the call is complete now, or when the server finishes a stream."""
    note_route(req, exchange.annotations)
    code = status_code(resp)
    stream: Any = None
    body: bytes | None = None
    if not has_no_body(req.method, code):
        body = resp.render_body()  # Falcon caches the rendered media; it is not serialized twice
        if body is None:
            stream = resp.stream
            if stream is not None and hasattr(stream, "read"):
                # A file-like stream keeps Falcon's wsgi.file_wrapper (sendfile) path and is
                # logged without its body: no tee, nothing kept.
                stream = None
    exchange.respond(code, header_pairs(resp, code, body))
    if not mark_started(resp, exchange):
        return
    if stream is not None:
        resp.stream = ResponseTee(stream, exchange)
        return
    if body:
        exchange.keep_last_chunk(body)
    exchange.finish()
