"""Falcon WSGI with governance rules served: play the core WSGI capture layer from the component's two hooks.

Without rules, :mod:`falcon_moesif.wsgi_direct` records the call at less cost; with them, the
whole capture layer runs, so its governance (read the body ahead, answer a blocked call, add a
rule's headers) applies unchanged.

A component cannot see the WSGI call around it, so it plays that call itself: in
``process_request`` it calls :class:`moesif_core.wsgi.MoesifMiddleware` with the real environ
and a *parked* inner app, which only keeps the ``start_response`` the capture layer hands it and
returns an empty body slot. In ``process_response`` it calls that ``start_response`` with the
status and headers Falcon is about to send, and fills the slot with the body: bytes (text, data,
media) are played through at once; an iterable ``resp.stream`` is replaced by the capture
layer's tee, so the server pulls the chunks through it at its own pace and the call is complete
when the server exhausts or closes it. All capture logic (body tees, callbacks, sampling, the
exactly-once finish) stays in the core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from moesif_core.annotations import annotations_of
from moesif_core.log import warn_once

from .request_parts import point_stream_at_tee
from .response_parts import apply_added_headers, has_no_body, header_pairs, note_route, status_code, status_line

__all__ = ["STATE_KEY", "WsgiCall", "parked_app"]

STATE_KEY: Final = "falcon_moesif.call"
_EMPTY: Final[tuple[bytes, ...]] = ()


class _BodySlot:
    """The inner app's response body: empty until ``process_response`` says what Falcon sends."""

    __slots__ = ("source",)

    def __init__(self) -> None:
        self.source: Iterable[bytes] = _EMPTY

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.source)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


class WsgiCall:
    """One request seen through the component: what the capture layer gave back, and the body slot."""

    __slots__ = ("body", "inner_start_response", "result", "sent_headers", "sent_status")

    def __init__(self) -> None:
        self.body = _BodySlot()
        self.inner_start_response: Callable[..., Any] | None = None
        self.result: Iterable[bytes] | None = None
        self.sent_headers: list[tuple[str, str]] | None = None
        self.sent_status: str | None = None

    def outer_start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        # The capture layer's view of the server: it only hands back the headers (with the
        # transaction id it added); Falcon sends the real response.
        self.sent_status = status
        self.sent_headers = headers
        return _no_write

    def begin(self, capture: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]], req: Any, resp: Any) -> None:
        env = req.env
        env[STATE_KEY] = self
        original_input = env.get("wsgi.input")
        result = self.result = capture(env, self.outer_start_response)
        if self.inner_start_response is None and self.sent_status is not None:
            # The capture layer answered without calling the app (a governance rule blocked the
            # call): Falcon answers the same, without routing.
            env.pop(STATE_KEY, None)
            resp.status = self.sent_status
            for name, value in self.sent_headers or ():
                resp.set_header(name, value)
            resp.data = b"".join(result)
            resp.complete = True
            self.result = None
            return
        point_stream_at_tee(req, original_input)

    def respond(self, req: Any, resp: Any) -> None:
        """Tell the capture layer what Falcon will send; swap in its tee when the body is a stream."""
        annotations = annotations_of(req.env)
        start_response = self.inner_start_response
        result = self.result
        if annotations is None or start_response is None or result is None:
            return  # SKIP said no at the start, or an outer Moesif layer captures this call
        note_route(req, annotations)
        code = status_code(resp)
        streamed = False
        body: bytes | None = None
        if not has_no_body(req.method, code):
            body = resp.render_body()  # Falcon caches the rendered media; it is not serialized twice
            stream = resp.stream
            if body is None and stream is not None and not hasattr(stream, "read"):
                # An iterable goes through the tee; a file-like stream keeps Falcon's
                # wsgi.file_wrapper (sendfile) path and is logged without its body.
                self.body.source = stream
                streamed = True
        headers = header_pairs(resp, code, body)
        start_response(status_line(resp), headers)
        apply_added_headers(resp, headers, self.sent_headers)
        if streamed:
            resp.stream = result
            return
        if body:
            self.body.source = (body,)
        _play_through(result)


def _play_through(result: Iterable[bytes]) -> None:
    """Pull a complete body through the capture layer's tee and close it: the call is complete."""
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _no_write(data: bytes) -> object:
    warn_once("falcon-write", "moesif: the write() callable of the captured call is not used under Falcon")
    return None


def parked_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The inner WSGI app of the capture layer: keeps ``start_response`` for ``process_response``."""
    call = environ.get(STATE_KEY)
    if not isinstance(call, WsgiCall):
        return _EMPTY
    call.inner_start_response = start_response
    return call.body
