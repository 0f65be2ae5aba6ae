"""The first bytes of a body as it streams past, up to the cap, and how many went by in all.

Request and response bodies, WSGI and ASGI alike, are kept the same way: never more than
``LOG_BODY_MAX_BYTES`` held, the full size counted so the event can say the body was cut.
"""

from __future__ import annotations

from typing import Any

from .record import RawExchange

__all__ = ["BodyTee"]


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

    def captured(self) -> bytes | None:
        chunks = self._chunks
        if not chunks:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def truncated(self) -> bool:
        return self.size > self._kept

    # Once per call in the request path: captured() and truncated spelled out, two calls fewer.
    def to_request(self, record: RawExchange) -> None:
        chunks = self._chunks
        record.request_body = (chunks[0] if len(chunks) == 1 else b"".join(chunks)) if chunks else None
        record.request_body_size = size = self.size
        record.request_body_truncated = size > self._kept

    def to_response(self, record: RawExchange) -> None:
        chunks = self._chunks
        record.response_body = (chunks[0] if len(chunks) == 1 else b"".join(chunks)) if chunks else None
        record.response_body_size = size = self.size
        record.response_body_truncated = size > self._kept
