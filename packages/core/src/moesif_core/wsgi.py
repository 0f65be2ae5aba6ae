"""Capture for any WSGI app: a drop-in replacement for ``moesifwsgi.MoesifMiddleware``.

The request path only records: times, the header list, URL parts, the body bytes the app reads
(teed, never read ahead), the chunks the server pulls from the response (teed up to
``LOG_BODY_MAX_BYTES``, never consumed ahead, so streams stay streams) and the callbacks'
results. The record is finished exactly once (when the server exhausts or closes the response,
when the app returns its whole body as a list, or when the app raises) and handed to the agent,
whose thread builds and sends the event.

Example::

    from moesif_core.wsgi import MoesifMiddleware
    app.wsgi_app = MoesifMiddleware(app.wsgi_app, {"APPLICATION_ID": "..."})
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from ._version import __version__
from .agent_api import AgentApi
from .annotations import KEY as ANNOTATIONS_KEY
from .annotations import RequestAnnotations
from .body_tee import (
    BodyTee,
    keep_whole_response,  # noqa: F401  (a step the C path calls, see _native_capture)
)
from .call_filter import keep_call
from .callbacks import call_safely
from .exchange_core import ExchangeCore
from .governance import Governor
from .governance_gate import GovernanceGate, blocked_response_body, facts_of, merge_header_pairs, status_line
from .log import logger, warn_failure, warn_once
from .native import native_part
from .record import RawExchange, native_record_from_environ, record_from_environ
from .settings import Settings

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["EXCHANGE_TYPES", "NATIVE", "CallExchange", "Exchange", "MoesifMiddleware", "ResponseTee"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Callable[[bytes], object]]
Annotate = Callable[[dict[str, Any], RequestAnnotations], None]

_TXN_HEADER = "X-Moesif-Transaction-Id"

try:
    # The usual call in C (see _wsgi_exchange.c); the Python below does the rest and stays the
    # reference the tests hold it to.
    _native: Any = native_part("_wsgi_exchange", 1)
except ImportError:  # not built, another interpreter, or MOESIF_PURE_PYTHON=1
    _native = None

#: True when calls are captured by the C request path (``moesif_core._wsgi_exchange``).
NATIVE: Final = _native is not None
_NOTHING: Final = object()  # ResponseTee: no chunk yet
_TEED: Final = object()  # ResponseTee: the chunks go to the exchange's tee as they come


class _InputTee:
    """Wraps ``wsgi.input``: every read passes through untouched; ``body`` keeps the first bytes."""

    __slots__ = ("_stream", "body")

    def __init__(self, stream: Any, body: BodyTee) -> None:
        self._stream = stream
        self.body = body

    def readinto(self, buffer: Any) -> Any:
        # Werkzeug and io wrappers read through readinto when the stream has it: tee it too.
        n = self._stream.readinto(buffer)
        if n:
            self.body.add(memoryview(buffer)[:n])
        return n

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self.body.add(data)
        return data

    def readline(self, *args: Any) -> bytes:
        line: bytes = self._stream.readline(*args)
        self.body.add(line)
        return line

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        for line in lines:
            self.body.add(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.body.add(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        # Servers add their own methods (e.g. gunicorn's Body.readinto); keep them reachable.
        return getattr(self._stream, name)


class _PrefixedStream:
    """``wsgi.input`` after governance read the start of the body: replays those bytes, then the rest."""

    __slots__ = ("_prefix", "_stream")

    def __init__(self, prefix: bytes, stream: Any) -> None:
        self._prefix = io.BytesIO(prefix)
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest: bytes = self._stream.read()
            return self._prefix.read() + rest
        data = self._prefix.read(size)
        if len(data) < size:
            data += self._stream.read(size - len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = self._prefix.readline(-1 if size is None else size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        rest: bytes = self._stream.readline(-1 if size is None or size < 0 else size - len(line))
        return line + rest

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class CallExchange(Protocol):
    """What integrations and the shared steps below use of an exchange, the C one or :class:`Exchange`."""

    middleware: MoesifMiddleware
    environ: dict[str, Any]
    record: RawExchange
    annotations: RequestAnnotations
    request_body: BodyTee | None
    response_body: BodyTee | None
    extra_headers: dict[str, str] | None
    keep: bool
    done: bool

    def respond(self, code: int, headers: list[tuple[str, str]], /) -> list[tuple[str, str]]: ...
    def keep_chunk(self, chunk: bytes, /) -> None: ...
    def keep_last_chunk(self, chunk: bytes, /) -> None: ...
    def finish(self, error: BaseException | None = None) -> None: ...


class Exchange(ExchangeCore):
    """The state of one call while the app and server work on it.

    Integrations that see a call through framework hooks rather than around the WSGI app (Falcon's
    middleware components) drive it directly: :meth:`MoesifMiddleware.begin_exchange` at the
    start, :meth:`respond` with what the framework will send, the body to :meth:`keep_chunk` (or
    the stream through :class:`ResponseTee`; a body known whole to :meth:`keep_last_chunk`), then
    :meth:`finish`.
    """

    __slots__ = (
        "annotations",
        "environ",
        "extra_headers",
        "middleware",
        "record",
        "request_body",
    )

    middleware: MoesifMiddleware

    def __init__(self, middleware: MoesifMiddleware, environ: dict[str, Any], record: RawExchange) -> None:
        self.middleware = middleware
        self.environ = environ
        self.record = record
        self.annotations = RequestAnnotations()
        self.request_body: BodyTee | None = None  # set when the request has a body and LOG_BODY is on
        self.response_body = None
        self.keep = True  # False once sampling or SKIP dropped the call: stop recording
        self.done = False
        self.extra_headers: dict[str, str] | None = None  # from governance rules that do not block

    def respond(self, code: int, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Record status and headers, ask the callbacks, decide sampling; returns the headers to send (a transaction id added)."""
        record = self.record
        record.status = code
        mw = self.middleware
        if mw.annotate is not None:
            annotate(self)
        if self.extra_headers:
            headers = merge_header_pairs(headers, self.extra_headers)
        if record.transaction_id is not None:
            headers = [*headers, (_TXN_HEADER, record.transaction_id)]
        record.response_headers = headers
        record.response_header_style = "pairs"
        if not self.keep:
            return headers
        if mw.has_callbacks:
            identify(self, headers)
        else:
            self.annotations.apply_to(record)
        self.keep = keep_call(mw.agent, record, self.annotations)
        return headers

    # WSGI has one body to keep: the response's (the request's is teed on wsgi.input).
    keep_chunk = ExchangeCore.keep_response_chunk
    keep_last_chunk = ExchangeCore.keep_last_response_chunk

    finish_kind = "wsgi-finish"

    def decide_unstarted(self, error: BaseException | None) -> None:
        decide_unstarted(self, error)  # the module's step, which the C exchange calls too


# -- steps both exchanges share -------------------------------------------------------------
# The C exchange (``_wsgi_exchange.c``) does the usual call itself and calls these for the rest,
# so each rare case is written once.


def annotate(exchange: CallExchange) -> None:
    """Let the integration note what only its framework knows (the route, a view's marks)."""
    try:
        exchange.middleware.annotate(exchange.environ, exchange.annotations)  # type: ignore[misc]
    except Exception as exc:  # never lose the call over a route name
        warn_failure("wsgi-annotate", "read the route of a call", exc)


def identify(exchange: CallExchange, headers: list[tuple[str, str]]) -> None:
    """Ask the user's callbacks who made the call; what the app said (annotations) goes first."""
    try:
        mw = exchange.middleware
        settings = mw.settings
        ann = exchange.annotations
        environ = exchange.environ
        record = exchange.record
        app = mw.callback_app
        record.user_id = (
            ann.user_id
            if ann.user_id is not None
            else call_safely("IDENTIFY_USER", settings.identify_user, app, environ, headers)
        )
        record.company_id = (
            ann.company_id
            if ann.company_id is not None
            else call_safely("IDENTIFY_COMPANY", settings.identify_company, app, environ, headers)
        )
        record.session_token = (
            ann.session_token
            if ann.session_token is not None
            else call_safely("GET_SESSION_TOKEN", settings.get_session_token, app, environ)
        )
        metadata = call_safely("GET_METADATA", settings.get_metadata, app, environ)
        record.metadata = ann.merged_metadata(metadata)
        if ann.route is not None:
            record.route = ann.route
    except Exception as exc:  # our own bug: lose the identity, never the response
        warn_failure("wsgi-identify", "identify the call", exc)


def decide_unstarted(exchange: CallExchange, error: BaseException | None) -> None:
    """The app returned without calling start_response (or the client left first).

    What the app said about the call still counts; callbacks have no response to see.
    """
    record = exchange.record
    record.status = 499 if error is None else 500
    mw = exchange.middleware
    if mw.annotate is not None:
        annotate(exchange)
    exchange.annotations.apply_to(record)
    exchange.keep = keep_call(mw.agent, record, exchange.annotations)


def status_code(status: Any) -> int:
    """The code of a WSGI status line; 0 for one the server will refuse."""
    try:
        return int(status[:3])
    except (TypeError, ValueError):
        return 0


def tee_request_body(exchange: CallExchange, environ: dict[str, Any], cap: int) -> None:
    """Tee ``wsgi.input`` into the exchange when the request says it has a body."""
    length = environ.get("CONTENT_LENGTH")
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    if (length and length != "0") or (coding and "chunked" in coding.lower()):
        stream = environ.get("wsgi.input")
        if stream is not None:
            exchange.request_body = BodyTee(cap)
            environ["wsgi.input"] = _InputTee(stream, exchange.request_body)


class ResponseTee:
    """The app's response iterable as the server sees it: same chunks, same pace, teed up to the cap.

    Most such iterables yield one chunk (Flask's response, most frameworks'). The first chunk is
    held back from the tee until a second one shows the body comes in parts; at the end a lone
    chunk is kept as it is (:meth:`Exchange.keep_last_chunk`), with no tee made. Only a chunk
    within the cap is held: a larger one is teed at once, so nothing beyond the cap stays alive.
    """

    __slots__ = ("_exchange", "_held", "_iterator", "_original")

    def __init__(self, original: Iterable[bytes], exchange: CallExchange) -> None:
        self._original = original
        self._exchange = exchange
        self._iterator: Iterator[bytes] | None = None
        self._held: Any = _NOTHING  # the first chunk while it may be the only one; _TEED after

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        iterator = self._iterator
        if iterator is None:
            iterator = self._iterator = iter(self._original)
        try:
            chunk = next(iterator)
        except StopIteration:
            self._finish(None)
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        held = self._held
        exchange = self._exchange
        if held is _NOTHING and type(chunk) is bytes and len(chunk) <= exchange.middleware.response_cap:
            self._held = chunk
            return chunk
        if held is not _TEED:
            self._held = _TEED
            if held is not _NOTHING:
                exchange.keep_chunk(held)
        exchange.keep_chunk(chunk)
        return chunk

    def _finish(self, error: BaseException | None) -> None:
        held = self._held
        exchange = self._exchange
        if held is not _NOTHING and held is not _TEED:
            self._held = _TEED
            exchange.keep_last_chunk(held)
        exchange.finish(error)

    def close(self) -> None:
        try:
            close = getattr(self._original, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(None)


class MoesifMiddleware(AgentApi):
    """WSGI middleware that captures every call of ``app`` and sends it to Moesif in the background.

    ``settings`` takes every key moesifwsgi takes (see the configuration reference); missing or
    wrong keys raise :class:`~moesif_core.settings.SettingsError` here, at start-up.
    """

    def __init__(
        self,
        app: WsgiApp,
        settings: Mapping[str, Any] | Settings | None = None,
        *,
        framework_config: Mapping[str, Any] | None = None,
        framework_source: str = "framework config",
        callback_app: Any = None,
        agent: Agent | None = None,
        user_agent: str | None = None,
        annotate: Annotate | None = None,
    ) -> None:
        """``annotate(environ, annotations)``, when given, runs as the response starts (and once more
        when the app ends without starting one), before the callbacks: an integration writes there
        what only its framework knows by then (the matched route, a view's marks), with no hook
        of its own in the request path.
        """
        self.app = app
        self.annotate = annotate
        self.settings = Settings.resolve(settings, framework_config=framework_config, framework_source=framework_source)
        if agent is None:
            from .agent import Agent

            agent = Agent(self.settings, user_agent=user_agent or f"moesif-core/{__version__}")
        self.agent = agent
        # What the callbacks get as their first argument: the incumbents pass the wrapped app;
        # integrations pass the framework's app object.
        self.callback_app = callback_app if callback_app is not None else app
        self._gate = GovernanceGate(self.agent)
        settings_ = self.settings
        self.has_callbacks = any(
            cb is not None
            for cb in (settings_.identify_user, settings_.identify_company, settings_.get_session_token, settings_.get_metadata)
        )
        # What each call's Exchange starts from: the cap on a response body kept, -1 for none.
        self.response_cap = settings_.log_body_max_bytes if settings_.log_body else -1
        self._started = False
        # The C request path, when built: made last, it reads what is set above (and nothing
        # above changes after this).
        self._native = self._native_capture()
        if self.settings.capture_outgoing_requests:
            from .outgoing import start_capture

            start_capture(self.settings, agent=self.agent)

    def _native_capture(self) -> Any:
        if _native is None:
            return None
        settings = self.settings
        return _native.Capture(
            middleware=self,
            steps=sys.modules[__name__],
            make_record=native_record_from_environ,
            record_from_environ=record_from_environ,
            record_type=RawExchange,
            annotations=RequestAnnotations(),
            skip=settings.skip,
            request_cap=settings.log_body_max_bytes if settings.log_body else -1,
            with_transaction_id=not settings.disabled_transaction_id,
        )

    # -- the request path -------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        native = self._native
        if native is not None:
            result: Iterable[bytes] = native(environ, start_response)
            return result
        return self._py_call(environ, start_response)

    def _py_call(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """:meth:`__call__` in Python: without the C part, and for what the C part hands back."""
        try:
            exchange = self.begin_exchange(environ)
        except Exception as exc:  # our own bug: the app is served as if we were not here
            warn_failure("wsgi-begin", "start capturing a call", exc)
            exchange = None
        if exchange is None:
            return self.app(environ, start_response)
        governor = self.governor()
        if governor is not None:
            blocked = self._govern(governor, exchange, environ, start_response)
            if blocked is not None:
                return blocked

        def capture_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            try:
                headers = exchange.respond(status_code(status), headers)
            except Exception as exc:
                warn_failure("wsgi-start-response", "record a response start", exc)
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        try:
            result = self.app(environ, capture_start_response)
        except BaseException as exc:
            exchange.finish(exc)
            raise
        if not exchange.keep and exchange.record.status:
            # Dropped (sampling or SKIP) once the response started: give the server the app's own
            # iterable, so a dropped call costs nothing more.
            exchange.done = True
            return result
        kind = type(result)
        if (kind is list or kind is tuple) and exchange.record.status:
            # The whole body is already here (Bottle, Pyramid, most plain apps): keep it and complete
            # the call now; the server gets the app's own list, with no tee to pull it through.
            chunks = cast("Sequence[bytes]", result)
            if len(chunks) == 1:
                exchange.keep_last_chunk(chunks[0])
            else:
                for chunk in chunks:
                    exchange.keep_chunk(chunk)
            exchange.finish()
            return result
        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
            # Keep the server's sendfile path: the call is logged without its body (none was kept).
            exchange.finish()
            return result
        return ResponseTee(result, exchange)

    def begin_exchange(self, environ: dict[str, Any]) -> CallExchange | None:
        """Start recording the call of ``environ`` (None: SKIP said no); tees ``wsgi.input`` when a body is logged.

        The caller applies governance first (:meth:`governor`) and ends the exchange exactly once.
        """
        native = self._native
        if native is not None:
            exchange: CallExchange | None = native.begin(environ)
            return exchange
        return self._py_begin_exchange(environ)

    def _py_begin_exchange(self, environ: dict[str, Any]) -> CallExchange | None:
        now = time.time()
        if not self._started:
            # The first call starts the sender and the config fetch (governance and sampling
            # need it); constructing the middleware never touches the network.
            self._started = True
            self.agent.ensure_started()
        settings = self.settings
        skip = settings.skip
        if skip is not None and call_safely("SKIP", skip, self.callback_app, environ):
            self.agent.count("skipped")
            return None
        record = record_from_environ(environ, now, not settings.disabled_transaction_id)
        exchange = Exchange(self, environ, record)
        environ[ANNOTATIONS_KEY] = exchange.annotations
        if settings.log_body:
            tee_request_body(exchange, environ, settings.log_body_max_bytes)
        return exchange

    def governor(self) -> Governor | None:
        """The governance rules of the served config, or None when none are served (the common case)."""
        return self._gate.current()

    def _govern(
        self, governor: Governor, exchange: CallExchange, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes] | None:
        """Apply governance before the app runs; the blocked answer, or None to call the app."""
        settings = self.settings
        record = exchange.record
        try:
            body = self._read_ahead(environ) if governor.needs_body else None
            user_id = company_id = None
            if governor.needs_identity:
                # No response yet: the callbacks get an empty header list.
                user_id = call_safely("IDENTIFY_USER", settings.identify_user, self.callback_app, environ, [])
                company_id = call_safely("IDENTIFY_COMPANY", settings.identify_company, self.callback_app, environ, [])
            facts, _ = facts_of(record, governor, body, user_id, company_id, settings)
            decision = governor.evaluate(facts)
            if decision is None:
                return None
            if decision.blocked_by is None:
                exchange.extra_headers = decision.headers
                return None
            payload = blocked_response_body(decision)
            status = status_line(decision.status)
            headers = merge_header_pairs(
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))], decision.headers
            )
            record.blocked_by = decision.blocked_by
            headers = exchange.respond(decision.status, headers)
        except Exception as exc:  # our own bug: the call goes to the app as if no rule existed
            warn_once("wsgi-governance", "moesif: governance could not be applied (%s: %s)", type(exc).__name__, exc)
            return None
        if settings.debug:
            logger.debug("moesif: %s %s blocked by governance rule %s", record.method, record.path, decision.blocked_by)
        start_response(status, headers)
        exchange.keep_last_chunk(payload)
        exchange.finish()
        return [payload]

    def _read_ahead(self, environ: dict[str, Any]) -> bytes | None:
        """Read the start of the body for rules on ``request.body.*``; the app still reads all of it."""
        length = environ.get("CONTENT_LENGTH")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not ((length and length != "0") or chunked):
            return None
        stream = environ.get("wsgi.input")
        if stream is None:
            return None
        cap = self.settings.log_body_max_bytes
        try:
            size = min(int(length), cap + 1) if length else cap + 1
        except ValueError:
            return None
        prefix = stream.read(size)
        environ["wsgi.input"] = _PrefixedStream(prefix, stream)
        return prefix if len(prefix) <= cap else None


#: The classes of exchange :meth:`MoesifMiddleware.begin_exchange` may answer.
EXCHANGE_TYPES: Final[tuple[type, ...]] = (Exchange,) if _native is None else (Exchange, _native.Exchange)
