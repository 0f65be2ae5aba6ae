"""Falcon ASGI with governance rules served: play the core ASGI capture layer from the component's two hooks.

Without rules, :mod:`falcon_moesif.asgi_direct` records the call with no task; with them, the
whole capture layer runs, so its governance applies unchanged.

As in :mod:`falcon_moesif.wsgi_bridge`, the component plays the ASGI call around itself. In
``process_request_async`` it starts :class:`moesif_core.asgi.MoesifMiddleware` on the real scope
as a task with a *parked* inner app, which hands the capture layer's ``receive`` and ``send`` to
the component and waits to be released. If the capture layer answers by itself (a governance
rule blocked the call), the component gives Falcon that answer and marks the response complete. Falcon read the first body
event before any component ran, so the component's ``receive`` replays it first, and the request
reads the rest through the capture layer's tee. In ``process_response_async`` the component sends
the capture layer the ``http.response.start`` Falcon is about to send and the body: bytes at once,
``resp.stream`` and ``resp.sse`` chunk by chunk as Falcon pulls them. Then the inner app is
released and the capture task completes, exactly as the capture layer completes around any ASGI app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Final

from moesif_core.annotations import annotations_of
from moesif_core.asgi import Message, Receive, Scope, Send
from moesif_core.log import warn_once

from .request_parts import list_scope_headers
from .response_parts import apply_added_headers, asgi_outgoing, note_route
from .stream_tees import tee_stream

__all__ = ["STATE_KEY", "AsgiCall", "parked_app"]

STATE_KEY: Final = "falcon_moesif.call"
_MISSING: Final = object()


class _Replay:
    """``receive`` as the capture layer sees it: first the event Falcon already read, then the server's."""

    __slots__ = ("first", "receive")

    def __init__(self, first: Message | None, receive: Receive) -> None:
        self.first = first
        self.receive = receive

    async def __call__(self) -> Message:
        first = self.first
        if first is not None:
            self.first = None
            return first
        return await self.receive()


class AsgiCall:
    """One request seen through the component: the capture task, parked in the inner app, and its receive/send."""

    __slots__ = ("answered", "ended", "parked", "receive", "release", "req", "send", "sent_start", "task")

    def __init__(self, req: Any) -> None:
        self.req = req
        self.task: asyncio.Task[None] | None = None
        self.parked: asyncio.Future[None] | None = None
        self.release: asyncio.Future[None] | None = None
        self.receive: Receive | None = None
        self.send: Send | None = None
        self.sent_start: Message | None = None
        self.answered: list[bytes] = []
        self.ended = False

    async def outer_send(self, message: Message) -> None:
        # The capture layer's view of the server. Falcon sends the real response; kept here are
        # the start message (it carries the transaction id and governance headers) and, when the
        # capture layer answers by itself (a governance block), that answer's body.
        kind = message.get("type")
        if kind == "http.response.start":
            self.sent_start = message
        elif kind == "http.response.body" and self.send is None:
            self.answered.append(bytes(message.get("body", b"")))

    async def begin(self, capture: Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]], resp: Any) -> None:
        req = self.req
        scope = req.scope
        list_scope_headers(req)
        first = getattr(req, "_first_event", _MISSING)
        receive = getattr(req, "_receive", _MISSING)
        teeable = first is not _MISSING and receive is not _MISSING and getattr(req, "_stream", None) is None
        replay = _Replay(first if teeable else None, receive if teeable else _never_receive)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        parked = self.parked = loop.create_future()
        self.release = loop.create_future()
        scope[STATE_KEY] = self
        task = self.task = loop.create_task(capture(scope, replay, self.outer_send))
        task.add_done_callback(_settled(parked))
        await parked
        if self.send is None:
            # The capture layer answered without calling the app (a governance rule blocked the
            # call): Falcon answers the same, without routing.
            self.ended = True
            scope.pop(STATE_KEY, None)
            start = self.sent_start
            if start is not None:
                resp.status = int(start.get("status", 500))
                for name, value in start.get("headers") or ():
                    resp.set_header(name.decode("latin-1"), value.decode("latin-1"))
                resp.data = b"".join(self.answered)
                resp.complete = True
            return
        if teeable and self.receive is not None and self.receive is not replay:
            # Falcon's stream is built lazily from these: make it read through the tee.
            req._receive = self.receive
            req._first_event = None

    async def respond(self, resp: Any) -> None:
        """Send the capture layer the response Falcon will send; tee streams in place."""
        req = self.req
        send = self.send
        annotations = annotations_of(req.scope)
        if send is None or annotations is None:
            await self.complete()
            return
        note_route(req, annotations)
        code, body, stream_kind, headers = await asgi_outgoing(req, resp)
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        apply_added_headers(resp, headers, (self.sent_start or {}).get("headers"))
        if not tee_stream(resp, stream_kind, self):
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": False})
            await self.complete()

    async def chunk(self, data: bytes) -> None:
        send = self.send
        if send is not None and data and not self.ended:
            await send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self) -> None:
        if self.ended:
            return
        send = self.send
        if send is not None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        await self.complete()

    async def complete(self) -> None:
        """Release the inner app and wait for the capture task to hand the record over."""
        self.resume()
        task = self.task
        if task is not None:
            try:
                await asyncio.shield(task)
            except Exception as exc:
                warn_once("falcon-asgi-complete", "moesif: could not complete a call (%s: %s)", type(exc).__name__, exc)

    def resume(self, error: BaseException | None = None) -> None:
        """Let the parked inner app return (or raise ``error``), so the capture task completes; never raises."""
        if self.ended:
            return
        self.ended = True
        self.req.scope.pop(STATE_KEY, None)
        release = self.release
        if release is not None and not release.done():
            if error is None:
                release.set_result(None)
            else:
                release.set_exception(error)


async def _never_receive() -> Message:
    return {"type": "http.disconnect"}


def _settled(parked: asyncio.Future[None]) -> Callable[[asyncio.Task[None]], None]:
    def settled(task: asyncio.Task[None]) -> None:
        if not parked.done():
            parked.set_result(None)  # the task ended before the inner app ran
        if not task.cancelled():
            task.exception()  # raised into it by resume(error) and re-raised by the capture layer: seen

    return settled


async def parked_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The inner ASGI app of the capture layer: hands its receive and send to the component, then waits."""
    call = scope.get(STATE_KEY)
    if not isinstance(call, AsgiCall) or call.parked is None or call.release is None:
        return
    call.receive = receive
    call.send = send
    release = call.release
    call.parked.set_result(None)
    del call  # the waiting frame must not keep the call alive
    await release
