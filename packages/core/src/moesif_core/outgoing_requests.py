"""Outgoing capture for ``requests``: one event per HTTP exchange, redirects included.

Two methods are wrapped. ``HTTPAdapter.send`` performs each exchange (every session mounts
``HTTPAdapter`` for http and https; custom adapters that do not subclass it, e.g. test mocks,
are not network calls and are left alone): it sees the ``PreparedRequest``, the real
``Response`` object and connection errors. ``Session.send`` wraps the whole call (redirects
too), so callbacks of a non-streamed call run after ``requests`` stored the body, where
``res.json()`` works.

The response body is teed where ``requests`` reads it: ``iter_content`` (which ``.content``,
``.text``, ``.json()`` and ``iter_lines`` all use) is replaced on the response instance by a
wrapper yielding the same chunks, and ``close`` by one that ends the event. The chunks are the
decoded body (``requests`` undoes gzip); code reading ``res.raw`` directly bypasses the tee, and
the event then has no response body.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import requests.adapters
import requests.sessions
import requests.utils

from .log import warn_once
from .outgoing import OutgoingCall, Patch, current_capture, is_moesif_call, run_deferring

__all__ = ["patches"]


def patches() -> list[Patch]:
    return [
        Patch("requests", requests.adapters.HTTPAdapter, "send", _wrap_adapter_send),
        Patch("requests", requests.sessions.Session, "send", _wrap_session_send),
    ]


def _wrap_session_send(original: Any, patch: Patch) -> Any:
    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        if not patch.active or current_capture() is None:
            return original(self, request, **kwargs)
        return run_deferring(original, self, request, **kwargs)

    return send


def _wrap_adapter_send(original: Any, patch: Patch) -> Any:
    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        capture = current_capture() if patch.active else None
        call = None if capture is None else _begin(capture, request)
        if call is None:
            return original(self, request, *args, **kwargs)
        try:
            response = original(self, request, *args, **kwargs)
        except Exception as exc:
            call.failed(exc)
            raise
        _watch(call, response)
        return response

    return send


def _begin(capture: Any, request: Any) -> OutgoingCall | None:
    try:
        url = request.url or ""
        headers = request.headers
        if is_moesif_call(url, headers.keys()):
            return None
        pairs = list(headers.items())
        body = request.body
    except Exception as exc:
        warn_once("outgoing-requests-begin", "moesif: could not read an outgoing requests call (%s: %s)", type(exc).__name__, exc)
        return None
    return OutgoingCall.begin(capture, request, request.method or "GET", url, pairs, body)


def _watch(call: OutgoingCall, response: Any) -> None:
    """Record the status and headers and put the body tee on the response; never raises."""
    try:
        call.responded(response, int(response.status_code or 0), list(response.headers.items()))
        tee = _IterContentTee(call, type(response))
        response.iter_content = tee
        response.close = _CloseTee(call, tee)
        tee.response_ref = call._response_ref
        if response._content is not False:  # already read (e.g. a response built around bytes)
            call.feed(response._content or b"")
            call.body_ended()
    except Exception as exc:
        warn_once("outgoing-requests-watch", "moesif: could not watch an outgoing response (%s: %s)", type(exc).__name__, exc)
        call.finish()


class _IterContentTee:
    """``response.iter_content`` as the class defines it, teeing each byte chunk into the call.

    Holds no strong reference to the response, so dropping the response still collects it (and
    its finaliser logs what was read).
    """

    __slots__ = ("call", "cls", "response_ref")

    def __init__(self, call: OutgoingCall, cls: Any) -> None:
        self.call = call
        self.cls = cls
        self.response_ref: Any = None

    def __call__(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        ref = self.response_ref
        response = ref() if ref is not None else None
        if response is None:  # pragma: no cover - only reachable through the response itself
            raise RuntimeError("response is gone")
        chunks = self.cls.iter_content(response, chunk_size, False)
        if not self.call.done:
            chunks = self._tee(chunks)
        if decode_unicode:
            chunks = requests.utils.stream_decode_response_unicode(chunks, response)  # type: ignore[no-untyped-call]
        return chunks  # type: ignore[no-any-return]

    def _tee(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        call = self.call
        try:
            for chunk in chunks:
                call.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise  # the caller stopped reading: close() or the finaliser ends the event
        except BaseException as exc:
            call.note_error(exc)
            raise
        call.body_ended()


class _CloseTee:
    """``response.close`` as the class defines it, then the end of the event."""

    __slots__ = ("call", "tee")

    def __init__(self, call: OutgoingCall, tee: _IterContentTee) -> None:
        self.call = call
        self.tee = tee

    def __call__(self) -> None:
        ref = self.tee.response_ref
        response = ref() if ref is not None else None
        try:
            if response is not None:
                self.tee.cls.close(response)
        finally:
            self.call.closed()
