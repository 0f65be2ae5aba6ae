"""Capture for any ASGI app: a drop-in replacement for ``moesifasgi.MoesifMiddleware``.

Pure ASGI (no ``BaseHTTPMiddleware``): ``receive`` and ``send`` are teed as the app uses them,
never drained ahead, so request bodies stay the app's and streamed responses keep their pace.
The response time is stamped after the last body message went out. An exception in the app
still produces an event (status 500 when no response started) and propagates as without us.
Lifespan shutdown flushes queued events before the server is told shutdown is complete.

Example::

    from moesif_core.asgi import MoesifMiddleware
    app = MoesifMiddleware(app, settings={"APPLICATION_ID": "..."})
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._version import __version__
from .agent_api import AgentApi
from .annotations import KEY as ANNOTATIONS_KEY
from .annotations import RequestAnnotations
from .body_tee import (
    BodyTee,
    keep_whole_response,  # noqa: F401  (a step the C path calls, see _native_capture)
)
from .call_filter import keep_call
from .callbacks import acall_safely
from .exchange_core import ExchangeCore
from .governance import Decision, Governor
from .governance_gate import GovernanceGate, blocked_response_body, facts_of
from .log import warn_failure
from .masking import TRANSACTION_ID_HEADER
from .native import native_part
from .record import RawExchange, native_record_from_scope, record_from_scope
from .settings import Settings

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["NATIVE", "AsgiRequest", "AsgiResponse", "CallExchange", "Exchange", "MoesifMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TXN_HEADER = TRANSACTION_ID_HEADER.encode("latin-1")

try:
    _native: Any = native_part("_asgi_exchange", 1)
except ImportError:
    _native = None

#: Whether the usual HTTP call runs in C (``_asgi_exchange.c``); else all of it is the Python below.
NATIVE: Final = _native is not None


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view of ASGI header pairs (repeated names joined with ", ")."""

    __slots__ = ("_map", "_pairs")

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        self._pairs = pairs
        self._map: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        if self._map is None:
            mapping: dict[str, str] = {}
            for raw_name, raw_value in self._pairs:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                mapping[name] = f"{mapping[name]}, {value}" if name in mapping else value
            self._map = mapping
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._mapping()[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


class AsgiRequest:
    """What ASGI callbacks get as ``request`` when no framework supplies its own request object.

    It offers the parts of Starlette's ``Request`` that identification callbacks use:
    ``headers``, ``method``, ``url``, ``path``, ``query_string``, ``client``, ``scope``, ``state``.
    ``fastapi_moesif`` passes a real Starlette ``Request`` instead.
    """

    __slots__ = ("_headers", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._headers: Headers | None = None

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.scope.get("headers", ()))
        return self._headers

    @property
    def method(self) -> str:
        return str(self.scope.get("method", "GET"))

    @property
    def path(self) -> str:
        return str(self.scope.get("path", "/"))

    @property
    def query_string(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")

    @property
    def url(self) -> str:
        scheme = self.scope.get("scheme", "http")
        host = self.headers.get("host", "")
        query = self.query_string
        return f"{scheme}://{host}{self.path}" + (f"?{query}" if query else "")

    @property
    def client(self) -> Any:
        return self.scope.get("client")

    @property
    def state(self) -> Any:
        return self.scope.setdefault("state", {})


class AsgiResponse:
    """What ASGI callbacks get as ``response``: the status and headers the app sent."""

    __slots__ = ("headers", "status_code")

    def __init__(self, status_code: int, raw_headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.headers = Headers(raw_headers)


RequestFactory = Callable[[Scope], Any]
Annotate = Callable[[Scope, RequestAnnotations], None]


class Exchange(ExchangeCore):
    """One HTTP call while the app and the server work on it.

    Integrations that see a call through framework hooks (Falcon's ASGI components) drive it
    directly: :meth:`MoesifMiddleware.begin_exchange`, the request chunks to
    :meth:`keep_request_chunk`, :meth:`on_response_start` with the start message the framework
    will send, the body to :meth:`keep_response_chunk`, then :meth:`finish`.
    """

    __slots__ = (
        "annotations",
        "extra_headers",
        "middleware",
        "record",
        "request_body",
        "scope",
    )

    middleware: MoesifMiddleware

    def __init__(self, middleware: MoesifMiddleware, scope: Scope, record: RawExchange, has_body: bool) -> None:
        self.middleware = middleware
        self.scope = scope
        self.record = record
        self.annotations = RequestAnnotations()
        settings = middleware.settings
        log_body = settings.log_body
        self.request_body = BodyTee(settings.log_body_max_bytes) if log_body and has_body else None
        self.response_body = None
        self.keep = True
        self.done = False
        self.extra_headers: list[tuple[bytes, bytes]] | None = None  # from governance rules that do not block

    def keep_request_chunk(self, chunk: bytes) -> None:
        if self.request_body is not None:
            self.request_body.add(chunk)

    async def on_response_start(self, message: Message) -> Message:
        """Record status and headers, ask the callbacks, decide sampling; returns the message to send."""
        message = self._record_start(message)
        return await identify_and_decide(self, self.record.response_headers, message)

    def start(self, message: Message) -> Message:
        """:meth:`on_response_start` for a middleware without callbacks: nothing to await, so no coroutine."""
        message = self._record_start(message)
        if self.keep:
            self.annotations.apply_to(self.record)
            self.keep = keep_call(self.middleware.agent, self.record, self.annotations)
        return message

    def start_pairs(self, status: int, headers: list[tuple[str, str]]) -> None:
        """:meth:`start` for glue that holds the response's status and headers as text (Falcon's
        ``resp``), not as a message: nothing encoded to bytes here for the sender to decode again.

        Only for a middleware without callbacks (they get the ASGI message's byte pairs, through
        :meth:`on_response_start`).
        """
        if self.extra_headers:
            start_pairs_encoded(self, status, headers)
            return
        record = self.record
        record.status = status
        txn = record.transaction_id
        record.response_headers = headers if txn is None else [*headers, (TRANSACTION_ID_HEADER, txn)]
        record.response_header_style = "pairs"
        if self.middleware.annotate is not None:
            annotate(self)
        if self.keep:
            self.annotations.apply_to(record)
            self.keep = keep_call(self.middleware.agent, record, self.annotations)

    def _record_start(self, message: Message) -> Message:
        record = self.record
        status = message.get("status", 0)
        record.status = status if isinstance(status, int) else 0
        headers = message.get("headers") or []
        extra = self.extra_headers
        txn = record.transaction_id
        if extra or txn is not None:
            if extra:
                headers = merge_header_pairs(headers, extra)
            if txn is not None:
                headers = [*headers, (_TXN_HEADER, txn.encode("latin-1"))]
            message = {**message, "headers": headers}
        record.response_headers = headers
        record.response_header_style = "asgi"
        if self.middleware.annotate is not None:
            annotate(self)
        return message

    finish_kind = "asgi-finish"

    def decide_unstarted(self, error: BaseException | None) -> None:
        decide_unstarted(self, error)  # the module's step, which the C exchange calls too


class CallExchange(Protocol):
    """An exchange as integrations and the steps below drive it: :class:`Exchange`, or the C one."""

    @property
    def middleware(self) -> MoesifMiddleware: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def record(self) -> RawExchange: ...
    @property
    def annotations(self) -> RequestAnnotations: ...

    keep: bool
    done: bool
    request_body: BodyTee | None
    extra_headers: list[tuple[bytes, bytes]] | None

    def keep_request_chunk(self, chunk: bytes, /) -> None: ...
    def keep_response_chunk(self, chunk: bytes, /) -> None: ...
    def keep_last_response_chunk(self, chunk: bytes, /) -> None: ...
    def start(self, message: Message, /) -> Message: ...
    def on_response_start(self, message: Message, /) -> Awaitable[Message]: ...
    def start_pairs(self, status: int, headers: list[tuple[str, str]], /) -> None: ...
    def finish(self, error: BaseException | None = None) -> None: ...


# -- steps both exchanges share -------------------------------------------------------------
# The C request path (``_asgi_exchange.c``) does the usual call itself and calls these for the
# rest, so each rare case is written once.


def annotate(exchange: CallExchange) -> None:
    """Let the integration note what only its framework knows (the matched route)."""
    try:
        exchange.middleware.annotate(exchange.scope, exchange.annotations)  # type: ignore[misc]
    except Exception as exc:  # never lose the call over a route name
        warn_failure("asgi-annotate", "read the route of a call", exc)


async def identify(exchange: CallExchange, headers: list[tuple[bytes, bytes]]) -> None:
    """Ask the user's callbacks (``SKIP`` first) who made the call; what the app said goes first."""
    mw = exchange.middleware
    ann = exchange.annotations
    record = exchange.record
    if not mw.has_callbacks:
        ann.apply_to(record)
        return
    settings = mw.settings
    request = mw.make_request(exchange.scope)
    response = AsgiResponse(record.status, headers)
    if await acall_safely("SKIP", settings.skip, request, response):
        ann.skip = True
        return
    record.user_id = (
        ann.user_id if ann.user_id is not None else await acall_safely("IDENTIFY_USER", settings.identify_user, request, response)
    )
    record.company_id = (
        ann.company_id
        if ann.company_id is not None
        else await acall_safely("IDENTIFY_COMPANY", settings.identify_company, request, response)
    )
    record.session_token = (
        ann.session_token
        if ann.session_token is not None
        else await acall_safely("GET_SESSION_TOKEN", settings.get_session_token, request, response)
    )
    metadata = await acall_safely("GET_METADATA", settings.get_metadata, request, response)
    record.metadata = ann.merged_metadata(metadata)
    if ann.route is not None:
        record.route = ann.route


def decide_unstarted(exchange: CallExchange, error: BaseException | None) -> None:
    """No response started: the app raised (500), or the client left before it answered (499).

    What the app said about the call still counts; callbacks have no response to see.
    """
    record = exchange.record
    record.status = 499 if error is None or isinstance(error, asyncio.CancelledError) else 500
    mw = exchange.middleware
    if mw.annotate is not None:
        annotate(exchange)
    exchange.annotations.apply_to(record)
    exchange.keep = keep_call(mw.agent, record, exchange.annotations)


def merge_header_pairs(headers: Iterable[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with those a governance rule sets (lower-case names) in place of the app's."""
    names = {name for name, _ in extra}
    return [(k, v) for k, v in headers if bytes(k).lower() not in names] + extra


def tee_receive(exchange: CallExchange, receive: Receive) -> Receive:
    """The ``receive`` the app gets when its request body is logged: each chunk is kept as it passes."""

    async def capture_receive() -> Message:
        message = await receive()
        try:
            if message.get("type") == "http.request":
                exchange.keep_request_chunk(message.get("body", b""))
        except Exception as exc:
            warn_failure("asgi-receive", "record a request chunk", exc)
        return message

    return capture_receive


async def identify_and_decide(exchange: CallExchange, headers: list[tuple[bytes, bytes]], message: Message) -> Message:
    """The rest of :meth:`Exchange.on_response_start` once the start is recorded: callbacks, then sampling."""
    if exchange.keep:
        await identify(exchange, headers)
        exchange.keep = keep_call(exchange.middleware.agent, exchange.record, exchange.annotations)
    return message


def start_pairs_encoded(exchange: CallExchange, status: int, headers: list[tuple[str, str]]) -> None:
    """:meth:`Exchange.start_pairs` when a governance rule adds headers: merged the way the message route merges them."""
    pairs = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    exchange.start({"type": "http.response.start", "status": status, "headers": pairs})


async def identify_then_send(
    exchange: CallExchange, headers: list[tuple[bytes, bytes]], message: Message, original: Message, send: Send
) -> None:
    """The response start with callbacks, once its status and headers are recorded: they are
    awaited before ``message`` goes out (``original``, the app's own, when we failed)."""
    try:
        message = await identify_and_decide(exchange, headers, message)
    except Exception as exc:
        warn_failure("asgi-send", "record a response message", exc)
        message = original
    await send(message)


async def send_then_finish(exchange: CallExchange, send: Send, message: Message) -> None:
    """The last response message: the call completes once it went out."""
    await send(message)
    exchange.finish()


class MoesifMiddleware(AgentApi):
    """ASGI middleware that captures every HTTP call of ``app`` and sends it to Moesif in the background.

    Works with ``app.add_middleware(MoesifMiddleware, settings={...})`` in Starlette and FastAPI,
    and around any ASGI app. ``settings`` takes every key moesifasgi takes; callbacks get
    ``(request, response)`` and may be ``async def``.
    """

    def __init__(
        self,
        app: AsgiApp,
        settings: Mapping[str, Any] | Settings | None = None,
        *,
        framework_config: Mapping[str, Any] | None = None,
        framework_source: str = "framework config",
        agent: Agent | None = None,
        user_agent: str | None = None,
        request_factory: RequestFactory | None = None,
        annotate: Annotate | None = None,
    ) -> None:
        """``annotate(scope, annotations)``, when given, runs as the response starts (and once more
        when the app ends without starting one), before the callbacks: an integration writes there
        what only its framework knows by then (the matched route), with no layer of its own.
        """
        self.app = app
        self.annotate = annotate
        self.settings = Settings.resolve(settings, framework_config=framework_config, framework_source=framework_source)
        if agent is None:
            from .agent import Agent

            agent = Agent(self.settings, user_agent=user_agent or f"moesif-core/{__version__}")
        self.agent = agent
        self._request_factory = request_factory or AsgiRequest
        settings_ = self.settings
        # Checked on every response: one attribute instead of five.
        self.has_callbacks = any(
            cb is not None
            for cb in (
                settings_.identify_user,
                settings_.identify_company,
                settings_.get_session_token,
                settings_.get_metadata,
                settings_.skip,
            )
        )
        # What each call's Exchange starts from: the cap on a response body kept, -1 for none.
        self.response_cap = settings_.log_body_max_bytes if settings_.log_body else -1
        self._gate = GovernanceGate(self.agent)
        self._started = False
        # The C request path, when built: made last, it reads what is set above (and nothing
        # above changes after this).
        self._native = self._native_capture()
        if self.settings.capture_outgoing_requests:
            from .outgoing import start_capture

            start_capture(self.settings, agent=self.agent)

    def make_request(self, scope: Scope) -> Any:
        """The ``request`` object callbacks get for ``scope``."""
        return self._request_factory(scope)

    def _native_capture(self) -> Any:
        if _native is None:
            return None
        settings = self.settings
        return _native.Capture(
            middleware=self,
            steps=sys.modules[__name__],
            make_record=native_record_from_scope,
            record_from_scope=record_from_scope,
            record_type=RawExchange,
            annotations=RequestAnnotations(),
            request_cap=settings.log_body_max_bytes if settings.log_body else -1,
            with_transaction_id=not settings.disabled_transaction_id,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        native = self._native
        if native is not None:
            # The usual HTTP call, begun in C: the app gets the C send wrapper (None: not the
            # usual call -- no HTTP scope, governance rules, our own failure -- served below).
            call = native(scope, receive, send)
            if call is not None:
                try:
                    await self.app(scope, call.receive, call)
                except BaseException as exc:
                    call.finish(exc)
                    raise
                call.finish()
                return
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            exchange, has_body = self.begin_exchange(scope)
        except Exception as exc:  # our own bug: serve the app as if we were not here
            warn_failure("asgi-begin", "start capturing a call", exc)
            await self.app(scope, receive, send)
            return
        if exchange is None:
            await self.app(scope, receive, send)
            return

        app_receive = receive
        if has_body and exchange.request_body is not None:
            app_receive = tee_receive(exchange, receive)

        governor = self.governor()
        if governor is not None:
            try:
                decision, app_receive = await self._govern(governor, exchange, scope, app_receive, has_body)
            except Exception as exc:  # our own bug: the call goes to the app as if no rule existed
                warn_failure("asgi-governance", "apply governance", exc)
                decision = None
            if decision is not None:
                await self._answer_blocked(exchange, decision, send)
                return

        has_callbacks = self.has_callbacks

        async def capture_send(message: Message) -> None:
            kind = message.get("type")
            last = False
            try:
                if kind == "http.response.start":
                    message = await exchange.on_response_start(message) if has_callbacks else exchange.start(message)
                elif kind == "http.response.body":
                    last = not message.get("more_body", False)
                    body = message.get("body", b"")
                    if last:
                        exchange.keep_last_response_chunk(body)
                    else:
                        exchange.keep_response_chunk(body)
                elif kind in ("http.response.pathsend", "http.response.zerocopysend"):
                    last = not message.get("more_body", False)
            except Exception as exc:
                warn_failure("asgi-send", "record a response message", exc)
            await send(message)
            if last:
                exchange.finish()

        try:
            await self.app(scope, app_receive, capture_send)
        except BaseException as exc:
            exchange.finish(exc)
            raise
        exchange.finish()

    async def _govern(
        self, governor: Governor, exchange: CallExchange, scope: Scope, receive: Receive, has_body: bool
    ) -> tuple[Decision | None, Receive]:
        """Apply governance before the app runs: the blocking decision (or None) and the receive the app gets."""
        settings = self.settings
        body = None
        buffered: list[Message] = []
        if governor.needs_body and has_body:
            cap = settings.log_body_max_bytes
            total = 0
            while True:
                message = await receive()
                buffered.append(message)
                if message.get("type") != "http.request":
                    break
                total += len(message.get("body", b""))
                if not message.get("more_body", False) or total > cap:
                    break
            if total <= cap:
                body = b"".join(m.get("body", b"") for m in buffered if m.get("type") == "http.request")
        app_receive = receive
        if buffered:

            async def replay_receive() -> Message:
                if buffered:
                    return buffered.pop(0)
                return await receive()

            app_receive = replay_receive
        user_id = company_id = None
        if governor.needs_identity:
            request = self.make_request(scope)
            response = AsgiResponse(0, [])
            user_id = await acall_safely("IDENTIFY_USER", settings.identify_user, request, response)
            company_id = await acall_safely("IDENTIFY_COMPANY", settings.identify_company, request, response)
        facts, _ = facts_of(exchange.record, governor, body, user_id, company_id, settings)
        decision = governor.evaluate(facts)
        if decision is None:
            return None, app_receive
        if decision.blocked_by is None:
            exchange.extra_headers = [
                (k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in decision.headers.items()
            ]
            return None, app_receive
        return decision, app_receive

    async def _answer_blocked(self, exchange: CallExchange, decision: Decision, send: Send) -> None:
        """Answer a call a rule blocked, as the rule says; the app never sees it."""
        payload = blocked_response_body(decision)
        exchange.record.blocked_by = decision.blocked_by
        exchange.extra_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in decision.headers.items()
        ]
        start: Message = {
            "type": "http.response.start",
            "status": decision.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
        try:
            start = await exchange.on_response_start(start)
            exchange.keep_last_response_chunk(payload)
            await send(start)
            await send({"type": "http.response.body", "body": payload, "more_body": False})
        except BaseException as exc:
            exchange.finish(exc)
            raise
        exchange.finish()

    def governor(self) -> Governor | None:
        """The governance rules of the served config, or None when none are served (the common case)."""
        return self._gate.current()

    def begin_exchange(self, scope: Scope) -> tuple[CallExchange | None, bool]:
        """Start recording the call of ``scope``, and whether its request has a body; the caller ends it exactly once."""
        native = self._native
        if native is not None:
            begun: tuple[CallExchange | None, bool] = native.begin(scope)
            return begun
        return self._py_begin_exchange(scope)

    def _py_begin_exchange(self, scope: Scope) -> tuple[CallExchange | None, bool]:
        now = time.time()
        if not self._started:
            # The first call starts the sender and the config fetch (governance and sampling
            # need it); constructing the middleware never touches the network.
            self._started = True
            self.agent.ensure_started()
        record, has_body = record_from_scope(scope, now, not self.settings.disabled_transaction_id)
        exchange = Exchange(self, scope, record, has_body)
        scope[ANNOTATIONS_KEY] = exchange.annotations
        return exchange, has_body

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def flushing_send(message: Message) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aflush()
            await send(message)

        await self.app(scope, receive, flushing_send)
