"""Falcon ASGI response streams as Falcon pulls them, each item also told to a :class:`ChunkSink`.

``resp.stream`` and ``resp.sse`` are pulled by Falcon after the last ``process_response_async``,
so a component cannot see their chunks; it swaps in a tee that hands each chunk on unchanged and
tells the sink (the capture of this call) on the way. The stream keeps its pace: nothing is read
ahead.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any, Protocol

__all__ = ["ChunkSink", "PulledTee", "SseTee", "StreamTee", "tee_stream"]


class ChunkSink(Protocol):
    """Where a tee reports: each chunk, the end, or the error that ended the stream."""

    async def chunk(self, data: bytes) -> None: ...

    async def end(self) -> None: ...

    def resume(self, error: BaseException | None = None) -> None: ...


def _resume_soon(loop: asyncio.AbstractEventLoop, call: ChunkSink) -> None:
    # Runs wherever the garbage collector runs: only schedule, never complete the call here.
    try:
        loop.call_soon_threadsafe(call.resume)
    except RuntimeError:  # the loop is closed: the process is going away
        pass


class PulledTee:
    """An async iterable Falcon pulls from, in front of ``source``; subclasses tell the capture layer each item."""

    __slots__ = ("_call", "_iterator", "_source")

    def __init__(self, source: Any, call: ChunkSink) -> None:
        self._source = source
        self._call = call
        self._iterator: AsyncIterator[Any] | None = None

    def __aiter__(self) -> PulledTee:
        return self

    async def _pull(self) -> Any:
        """The source's next item; when the source ends the call ends, when it raises the call is resumed with it."""
        iterator = self._iterator
        if iterator is None:
            iterator = self._iterator = self._source.__aiter__()
        try:
            return await iterator.__anext__()
        except StopAsyncIteration:
            await self._call.end()
            raise
        except BaseException as exc:
            self._call.resume(exc)
            raise


class StreamTee(PulledTee):
    """``resp.stream`` as Falcon pulls it: the same chunks, each told to the capture layer on the way."""

    __slots__ = ()

    async def __anext__(self) -> Any:
        data = await self._pull()
        if data is None:  # Falcon stops at None
            await self._call.end()
        else:
            await self._call.chunk(data)
        return data

    async def close(self) -> None:
        # Falcon awaits close() after the last chunk, even when the client left or the stream raised.
        try:
            close = getattr(self._source, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
        finally:
            await self._call.end()


class SseTee(PulledTee):
    """``resp.sse`` as Falcon pulls it: the same events, each serialized for the capture layer too."""

    __slots__ = ("__weakref__",)

    def __init__(self, source: Any, call: ChunkSink) -> None:
        super().__init__(source, call)
        # Falcon stops pulling without closing the emitter when the client leaves: complete the
        # call on the loop once Falcon lets go of this object.
        finalizer = weakref.finalize(self, _resume_soon, asyncio.get_running_loop(), call)
        finalizer.atexit = False

    async def __anext__(self) -> Any:
        event = await self._pull()
        try:
            data = event.serialize() if event else b": ping\n\n"
        except Exception:  # Falcon serializes with its own JSON handler; a copy we cannot make is skipped
            data = b""
        await self._call.chunk(data)
        return event


def tee_stream(resp: Any, stream_kind: str, sink: ChunkSink) -> bool:
    """Put the tee in front of ``resp.sse`` or ``resp.stream``; False when the body is not a stream."""
    if stream_kind == "sse":
        resp.sse = SseTee(resp.sse, sink)
    elif stream_kind == "stream":
        resp.stream = StreamTee(resp.stream, sink)
    else:
        return False
    return True
