"""What the WSGI and ASGI exchanges share: the response body kept, and the call completed once.

The Python counterpart of ``_exchange_core.h``, which the two C capture layers share: each
capture layer's :class:`Exchange` adds how its own framework's response starts, and how a call
that started no response is decided.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Protocol

from .body_tee import BodyTee, keep_whole_response
from .log import warn_failure
from .record import RawExchange

__all__ = ["ExchangeCore"]


class _Middleware(Protocol):
    response_cap: int  # the cap on a response body kept, -1 with LOG_BODY off
    agent: Any


class ExchangeCore:
    """A mixin: it holds whether the call is kept and done and the response body's tee; the
    exchange holds ``record``, ``request_body`` and its ``middleware``.
    """

    __slots__ = ("done", "keep", "response_body")

    keep: bool  # False once sampling or SKIP dropped the call
    done: bool  # True once the record is handed over
    record: RawExchange
    request_body: BodyTee | None
    middleware: _Middleware
    response_body: BodyTee | None  # made at the first chunk of a body that comes in parts
    #: The log key of a failure to complete an event ("wsgi-finish", "asgi-finish").
    finish_kind: ClassVar[str]

    def keep_response_chunk(self, chunk: bytes) -> None:
        cap = self.middleware.response_cap
        if self.keep and cap >= 0:
            body = self.response_body
            if body is None:
                body = self.response_body = BodyTee(cap)
            body.add(chunk)

    def keep_last_response_chunk(self, chunk: bytes) -> None:
        """:meth:`keep_response_chunk` for the body's last chunk, or its only one: then kept as it is, with no tee."""
        # Once finished the record is the sender's: a body sent after the last one must not touch it.
        cap = self.middleware.response_cap
        if self.keep and cap >= 0 and not self.done:
            body = self.response_body
            if body is None:
                keep_whole_response(self.record, chunk, cap)
            else:
                body.add(chunk)

    def decide_unstarted(self, error: BaseException | None) -> None:
        """No response started: the capture layer's status for it, and whether the call is kept."""
        raise NotImplementedError

    def finish(self, error: BaseException | None = None) -> None:
        """Complete the record exactly once and hand it over; never raises."""
        if self.done:
            return
        self.done = True
        try:
            record = self.record
            record.response_time = time.time()
            if error is not None:
                record.error = type(error).__name__
            if not self.keep:
                return
            if record.status == 0:
                self.decide_unstarted(error)
                if not self.keep:
                    return
            if self.request_body is not None:
                self.request_body.to_request(record)
            if self.response_body is not None:
                self.response_body.to_response(record)
            self.middleware.agent.submit(record)
        except Exception as exc:
            warn_failure(self.finish_kind, "complete an event", exc)
