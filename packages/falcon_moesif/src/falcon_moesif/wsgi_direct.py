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

from typing import Any, Final

from moesif_core.wsgi import Exchange, MoesifMiddleware, ResponseTee

from .response_parts import has_no_body, header_pairs, status_code

__all__ = ["TXN_HEADER", "begin", "respond"]

TXN_HEADER: Final = "X-Moesif-Transaction-Id"


def begin(capture: MoesifMiddleware, req: Any, state_key: str) -> None:
    """Start recording ``req``'s call, unless SKIP says no."""
    env = req.env
    original_input = env.get("wsgi.input")
    exchange = capture.begin_exchange(env)
    if exchange is None:
        return
    env[state_key] = exchange
    teed_input = env.get("wsgi.input")
    if teed_input is not original_input:
        # Falcon took req.stream from the environ before any component ran; bounded_stream
        # and media read env["wsgi.input"] lazily, so only req.stream needs the tee too.
        req.stream = teed_input


def respond(exchange: Exchange, req: Any, resp: Any) -> None:
    """Record what Falcon will send; the call is complete now, or when the server finishes a stream."""
    annotations = exchange.annotations
    if annotations.route is None:
        annotations.route = req.uri_template
    code = status_code(resp)
    stream: Any = None
    body: bytes | None = None
    if not has_no_body(req.method, code):
        body = resp.render_body()  # Falcon caches the rendered media; it is not serialized twice
        if body is None:
            stream = resp.stream
            if stream is not None and hasattr(stream, "read"):
                # A file-like stream keeps Falcon's wsgi.file_wrapper (sendfile) path and is
                # logged without its body.
                exchange.response_body = None
                stream = None
    exchange.respond(code, header_pairs(resp, code, body))
    txn = exchange.record.transaction_id
    if txn is not None:
        resp.set_header(TXN_HEADER, txn)
    if not exchange.keep:
        exchange.done = True  # sampled out or skipped: nothing more to record
        return
    if stream is not None:
        resp.stream = ResponseTee(stream, exchange)
        return
    if body:
        exchange.keep_chunk(body)
    exchange.finish()
