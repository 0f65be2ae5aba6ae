"""Outgoing capture for ``httpx``: one event per HTTP exchange, sync and async clients alike.

``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request`` perform each
exchange over the network (every ``Client``/``AsyncClient`` uses them unless given another
transport; ``MockTransport``, ``ASGITransport``, ``WSGITransport`` and test clients built on them
are not network calls and are left alone). They see the ``httpx.Request``, the real
``httpx.Response`` (the very object the client returns) and connection errors. The response's
byte stream is wrapped so the raw body is teed as the caller reads it, ``iter_bytes`` and
``aiter_bytes`` streaming as before. ``Client.send`` and ``AsyncClient.send`` are wrapped too,
so callbacks of a non-streamed call run after the body is stored on the response, where
``res.json()`` works.

A request body given as bytes, text, JSON, form or files is logged; a generator body streams
to the server untouched and is not.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from .log import warn_once
from .outgoing import OutgoingCall, OutgoingCapture, Patch, arun_deferring, current_capture, is_moesif_call, run_deferring

__all__ = ["patches"]


def patches() -> list[Patch]:
    return [
        Patch("httpx", httpx.HTTPTransport, "handle_request", _wrap_handle_request),
        Patch("httpx", httpx.AsyncHTTPTransport, "handle_async_request", _wrap_handle_async_request),
        Patch("httpx", httpx.Client, "send", _wrap_client_send),
        Patch("httpx", httpx.AsyncClient, "send", _wrap_async_client_send),
    ]


def _wrap_client_send(original: Any, patch: Patch) -> Any:
    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        if not patch.active or current_capture() is None:
            return original(self, request, **kwargs)
        return run_deferring(original, self, request, **kwargs)

    return send


def _wrap_async_client_send(original: Any, patch: Patch) -> Any:
    @functools.wraps(original)
    async def send(self: Any, request: Any, **kwargs: Any) -> Any:
        if not patch.active or current_capture() is None:
            return await original(self, request, **kwargs)
        return await arun_deferring(original, self, request, **kwargs)

    return send


def _wrap_handle_request(original: Any, patch: Patch) -> Any:
    @functools.wraps(original)
    def handle_request(self: Any, request: Any) -> Any:
        capture = current_capture() if patch.active else None
        call = None if capture is None else _begin(capture, request)
        if call is None:
            return original(self, request)
        try:
            response = original(self, request)
        except Exception as exc:
            call.failed(exc)
            raise
        _watch(call, response, _SyncTee)
        return response

    return handle_request


def _wrap_handle_async_request(original: Any, patch: Patch) -> Any:
    @functools.wraps(original)
    async def handle_async_request(self: Any, request: Any) -> Any:
        capture = current_capture() if patch.active else None
        call = None if capture is None else _begin(capture, request)
        if call is None:
            return await original(self, request)
        try:
            response = await original(self, request)
        except Exception as exc:
            call.failed(exc)
            raise
        _watch(call, response, _AsyncTee)
        return response

    return handle_async_request


def _begin(capture: OutgoingCapture, request: Any) -> OutgoingCall | None:
    try:
        url = str(request.url)
        pairs = request.headers.multi_items()
        if is_moesif_call(url, (name for name, _ in pairs)):
            return None
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = None  # a streamed upload: reading it here would take it from the server
    except Exception as exc:
        warn_once("outgoing-httpx-begin", "moesif: could not read an outgoing httpx call (%s: %s)", type(exc).__name__, exc)
        return None
    return OutgoingCall.begin(capture, request, request.method, url, pairs, body)


def _watch(call: OutgoingCall, response: Any, tee: type[_SyncTee] | type[_AsyncTee]) -> None:
    """Record the status and headers and wrap the body stream; never raises."""
    try:
        call.responded(response, int(response.status_code), response.headers.multi_items())
        response.stream = tee(response.stream, call)
    except Exception as exc:
        warn_once("outgoing-httpx-watch", "moesif: could not watch an outgoing response (%s: %s)", type(exc).__name__, exc)
        call.finish()


class _SyncTee(httpx.SyncByteStream):
    """The transport's response stream, teeing each raw chunk into the call."""

    def __init__(self, stream: Any, call: OutgoingCall) -> None:
        self._stream = stream
        self._call = call

    def __iter__(self) -> Iterator[bytes]:
        call = self._call
        try:
            for chunk in self._stream:
                call.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            call.note_error(exc)
            raise
        call.body_ended()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._call.closed()


class _AsyncTee(httpx.AsyncByteStream):
    """The async transport's response stream, teeing each raw chunk into the call."""

    def __init__(self, stream: Any, call: OutgoingCall) -> None:
        self._stream = stream
        self._call = call

    async def __aiter__(self) -> AsyncIterator[bytes]:
        call = self._call
        try:
            async for chunk in self._stream:
                call.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            call.note_error(exc)
            raise
        call.body_ended()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._call.closed()
