"""The first bytes of a body as it streams past, up to the cap, and how many went by in all.

Request and response bodies, WSGI and ASGI alike, are kept the same way: never more than
``LOG_BODY_MAX_BYTES`` held, the full size counted so the event can say the body was cut.
"""

from __future__ import annotations

from typing import Any

from .record import RawExchange

__all__ = ["BodyTee", "keep_whole_response"]


class BodyTee:
    """Keeps at most ``cap`` bytes of the chunks it is given and counts them all."""

    __slots__ = ("_cap", "_chunks", "_kept", "size")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._chunks: list[bytes] = []
        self._kept = 0
        self.size = 0

    def add(self, data: Any) -> None:
        """Count ``data`` (bytes, bytearray or memoryview) and keep what fits; never raises."""
        try:
            n = len(data)
            self.size += n
            room = self._cap - self._kept
            if room > 0 and n:
                piece = bytes(data[:room]) if n > room else bytes(data)
                self._chunks.append(piece)
                self._kept += len(piece)
        except Exception:  # a stream that hands out odd types must not break the app
            pass

    def to_request(self, record: RawExchange) -> None:
        record.request_body, record.request_body_size, record.request_body_truncated = self._parts()

    def to_response(self, record: RawExchange) -> None:
        record.response_body, record.response_body_size, record.response_body_truncated = self._parts()

    def _parts(self) -> tuple[bytes | None, int, bool]:
        """The kept bytes (None when nothing was kept), the full size, and whether bytes were left out."""
        chunks = self._chunks
        body = (chunks[0] if len(chunks) == 1 else b"".join(chunks)) if chunks else None
        size = self.size
        return body, size, size > self._kept


def keep_whole_response(record: RawExchange, body: Any, cap: int) -> None:
    """Write to ``record`` what a :class:`BodyTee` of ``cap`` given only ``body`` would write, without the tee.

    Most responses are one bytes object known at once (a rendered body, a WSGI list of one):
    making a tee, filling it and reading it back cost them five Python calls in the request path.
    """
    if type(body) is bytes and len(body) <= cap:  # the usual body: kept as it is
        record.response_body = body or None
        record.response_body_size = len(body)
        record.response_body_truncated = False
        return
    size = 0
    kept = None
    try:  # odd chunks never raise (see BodyTee.add)
        size = len(body)
        if cap > 0 and size:
            kept = bytes(body[:cap]) if size > cap else bytes(body)  # bytes(b) is b itself: no copy
    except Exception:
        pass
    record.response_body = kept
    record.response_body_size = size
    record.response_body_truncated = size > (len(kept) if kept is not None else 0)
