"""What a Falcon response will put on the wire, read from ``resp`` before Falcon sends it.

A middleware component runs before Falcon renders the response, so the status line, the headers
Falcon adds (Content-Type, Content-Length) and the body are derived here from the public
``Response`` API, the way Falcon itself derives them right after the last ``process_response``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

import falcon

from moesif_core.annotations import RequestAnnotations
from moesif_core.masking import TRANSACTION_ID_HEADER

if TYPE_CHECKING:
    from moesif_core import asgi as core_asgi
    from moesif_core import wsgi as core_wsgi

__all__ = [
    "BODILESS_STATUSES",
    "AsgiOutgoing",
    "apply_added_headers",
    "asgi_outgoing",
    "has_no_body",
    "header_pairs",
    "mark_started",
    "note_route",
    "status_code",
    "status_line",
]

# Falcon sends no body for these, whatever resp holds (and no Content-Type for 1xx/204/304).
BODILESS_STATUSES: Final = frozenset({100, 101, 102, 103, 204, 304})


def status_code(resp: Any) -> int:
    try:
        return int(falcon.http_status_to_code(resp.status))
    except Exception:  # a status Falcon itself will reject: it answers 500 then
        return 500


def status_line(resp: Any) -> str:
    try:
        return str(falcon.code_to_http_status(resp.status))
    except Exception:
        return "500 Internal Server Error"


def has_no_body(method: str, code: int) -> bool:
    return method == "HEAD" or code in BODILESS_STATUSES


def header_pairs(resp: Any, code: int, body: bytes | None, default_media_type: str | None = None) -> list[tuple[str, str]]:
    """The response headers as ``(name, value)`` pairs, with the defaults Falcon adds when it sends."""
    headers: dict[str, str] = dict(resp.headers)
    if code not in BODILESS_STATUSES and "content-type" not in headers:
        media_type = default_media_type or resp.options.default_media_type
        if media_type:
            headers["content-type"] = media_type
    if body is not None:
        headers["content-length"] = str(len(body))
    return list(headers.items())


def apply_added_headers(resp: Any, given: list[tuple[str, str]], sent: Any) -> None:
    """Set on ``resp`` the headers the capture layer added to the ones it was given (transaction id, governance)."""
    if not sent:
        return
    before = {name.lower(): value for name, value in given}
    for name, value in sent:
        text = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value_text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if before.get(text.lower()) != value_text:
            resp.set_header(text, value_text)


class AsgiOutgoing(NamedTuple):
    """What ``falcon.asgi`` will send: status, the rendered body or the kind of stream, headers."""

    code: int
    body: bytes | None
    stream_kind: str  # "" (the body, or none), "stream" (resp.stream) or "sse" (resp.sse)
    headers: list[tuple[str, str]]


async def asgi_outgoing(req: Any, resp: Any) -> AsgiOutgoing:
    code = status_code(resp)
    body: bytes | None = None
    stream_kind = ""
    if not has_no_body(req.method, code):
        if getattr(resp, "sse", None) is not None:
            stream_kind = "sse"
        else:
            body = await resp.render_body()  # Falcon caches it: not rendered twice
            stream = resp.stream
            if body is None and stream is not None and not hasattr(stream, "read"):
                stream_kind = "stream"
    headers = header_pairs(resp, code, body, "text/event-stream" if stream_kind == "sse" else None)
    return AsgiOutgoing(code, body, stream_kind, headers)


def note_route(req: Any, annotations: RequestAnnotations) -> None:
    """The route template Falcon matched (None for a 404), unless the app named the route itself."""
    if annotations.route is None:
        annotations.route = req.uri_template


def mark_started(resp: Any, exchange: core_wsgi.CallExchange | core_asgi.CallExchange) -> bool:
    """After the core recorded the response start: hand the client the call's transaction id.

    False when nothing more is to be recorded (the call was sampled out or skipped).
    """
    txn = exchange.record.transaction_id
    if txn is not None:
        resp.set_header(TRANSACTION_ID_HEADER, txn)  # Falcon's header names are case-insensitive
    if exchange.keep:
        return True
    exchange.done = True
    return False
