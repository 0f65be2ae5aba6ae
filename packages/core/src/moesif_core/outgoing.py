"""Capturing the app's own calls to other APIs (``requests`` and ``httpx``) as ``Outgoing`` events.

Capture patches a few methods of the HTTP client libraries, process-wide, while at least one
capture is started, and restores the originals when the last one stops. Each exchange becomes
a :class:`~moesif_core.record.RawExchange` that goes through the same agent queue and sender as
incoming calls: nothing here starts a thread or touches the network.

Which agent gets the calls: an outgoing call belongs to the process, not to one app, so sending
it to every started capture would log it several times. Captures form a stack: calls go to the
most recently started capture that is still running; stopping it hands them back to the one
started before. Starting capture again for the same agent returns its running capture.

Calls to any started capture's ``BASE_URI``, and calls carrying an ``X-Moesif-Application-Id``
header (another Moesif SDK posting), are never captured. Our own posts use ``http.client`` and
never pass through the patched methods.

Example::

    from moesif_core.outgoing import start_capture, stop_capture

    capture = start_capture({"APPLICATION_ID": "...", "SKIP_OUTGOING": lambda req, res: "health" in req.url})
    requests.get("https://api.example.com/orders")   # logged as an Outgoing event
    stop_capture()                                   # the originals are back
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from .annotations import RequestAnnotations
from .call_filter import keep_call
from .log import logger, warn_once, warn_rate_limited
from .record import RawExchange
from .settings import Settings

if TYPE_CHECKING:
    from types import TracebackType

    from .agent import Agent

__all__ = ["OutgoingCall", "OutgoingCapture", "Patch", "current_capture", "start_capture", "stop_capture"]

T = TypeVar("T")

# The client libraries we know how to capture: module of ours -> the library it needs.
_LIBRARY_MODULES: Final = (("moesif_core.outgoing_requests", "requests"), ("moesif_core.outgoing_httpx", "httpx"))
_MOESIF_HEADER: Final = "x-moesif-application-id"
_ERROR_TEXT_LIMIT: Final = 500

_lock = threading.RLock()
# Started captures, oldest first; calls go to the last one. Replaced whole, never mutated, so
# the request path reads it without the lock.
_captures: tuple[OutgoingCapture, ...] = ()
_patches: list[Patch] = []

# Calls whose body ended inside a client's send(): their callbacks run when send() returns, once
# the client has stored the body on the response (so a callback may call ``res.json()``).
_deferred: contextvars.ContextVar[list[OutgoingCall] | None] = contextvars.ContextVar("moesif_outgoing_deferred", default=None)


# -- starting and stopping ------------------------------------------------------------------------


class OutgoingCapture:
    """One agent's share of the process's outgoing calls; :meth:`stop` ends it (idempotent)."""

    def __init__(self, settings: Settings, agent: Agent, *, owns_agent: bool) -> None:
        self.settings = settings
        self.agent = agent
        self._owns_agent = owns_agent
        self._running = True
        self.libraries: tuple[str, ...] = ()  # the client libraries patched when this capture started

    @property
    def running(self) -> bool:
        return self._running

    @property
    def receiving(self) -> bool:
        """True while outgoing calls go to this capture (it is the most recently started one running)."""
        captures = _captures
        return bool(captures) and captures[-1] is self

    def stop(self, timeout: float | None = None) -> None:
        """Stop capturing for this agent; the last stop restores the patched methods.

        When :func:`start_capture` created the agent, it is flushed (up to ``timeout``) and closed.
        """
        global _captures
        with _lock:
            if not self._running:
                return
            self._running = False
            _captures = tuple(c for c in _captures if c is not self)
            if not _captures:
                _uninstall()
        if self._owns_agent:
            self.agent.close(timeout)

    def __enter__(self) -> OutgoingCapture:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "receiving" if self.receiving else "running" if self._running else "stopped"
        return f"<OutgoingCapture {state} -> {self.settings.base_uri} via {', '.join(self.libraries) or 'nothing'}>"


def start_capture(settings: Mapping[str, Any] | Settings, agent: Agent | None = None) -> OutgoingCapture:
    """Capture this process's ``requests`` and ``httpx`` calls for ``agent`` (created when None).

    ``settings`` is a settings dict or :class:`~moesif_core.settings.Settings`; a wrong one raises
    :class:`~moesif_core.settings.SettingsError`. Returns the agent's running capture if it has one.
    Works without any web framework; :func:`stop_capture` or :meth:`OutgoingCapture.stop` ends it.
    """
    global _captures
    resolved = Settings.resolve(settings)
    with _lock:
        if agent is not None:
            for capture in _captures:
                if capture.agent is agent:
                    return capture
        owns = agent is None
        if agent is None:
            from ._version import __version__
            from .agent import Agent

            agent = Agent(resolved, user_agent=f"moesif-core/{__version__}")
        capture = OutgoingCapture(resolved, agent, owns_agent=owns)
        if not _patches:
            _install()
        capture.libraries = tuple(dict.fromkeys(patch.library for patch in _patches))
        if not capture.libraries:
            warn_once(
                "outgoing-no-library",
                "moesif: CAPTURE_OUTGOING_REQUESTS is on but neither requests nor httpx is installed; nothing to capture",
            )
        _captures = (*_captures, capture)
        if resolved.debug:
            logger.debug("moesif: capturing outgoing calls (%s) for %r", ", ".join(capture.libraries), agent)
        return capture


def stop_capture(capture: OutgoingCapture | None = None, timeout: float | None = None) -> None:
    """Stop ``capture``, or every running capture when None; the patched methods are restored when none is left."""
    targets = [capture] if capture is not None else list(_captures)
    for target in reversed(targets):
        target.stop(timeout)


def current_capture() -> OutgoingCapture | None:
    """The capture outgoing calls go to now, or None when capture is off."""
    captures = _captures
    return captures[-1] if captures else None


# -- patching -------------------------------------------------------------------------------------


class Patch:
    """One method of a client library replaced by a wrapper, restorable exactly.

    ``wrap(original, patch)`` builds the wrapper; the wrapper must pass straight through when
    ``patch.active`` is False (it was uninstalled, but someone patched on top of it and it could
    not be taken out of the chain).
    """

    __slots__ = ("active", "library", "name", "original", "owner", "wrap", "wrapper")

    _MISSING: Final[Any] = object()

    def __init__(self, library: str, owner: type, name: str, wrap: Callable[[Any, Patch], Any]) -> None:
        self.library = library
        self.owner = owner
        self.name = name
        self.wrap = wrap
        self.original: Any = Patch._MISSING
        self.wrapper: Any = None
        self.active = False

    def install(self) -> None:
        # The class's own attribute, not getattr(): restoring must put back exactly what was there.
        self.original = self.owner.__dict__.get(self.name, Patch._MISSING)
        current = getattr(self.owner, self.name)
        self.wrapper = self.wrap(current, self)
        self.active = True
        setattr(self.owner, self.name, self.wrapper)

    def uninstall(self) -> None:
        self.active = False
        if self.owner.__dict__.get(self.name) is not self.wrapper:
            # Someone wrapped our wrapper: taking it out would drop theirs. It stays, inactive.
            warn_once(
                f"outgoing-unpatch-{self.owner.__name__}.{self.name}",
                "moesif: %s.%s was patched again by other code after us; our inactive wrapper stays in its chain",
                self.owner.__qualname__,
                self.name,
            )
            return
        if self.original is Patch._MISSING:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self.original)


def _install() -> None:
    for module_name, library in _LIBRARY_MODULES:
        try:
            importlib.import_module(library)
        except ImportError:
            continue
        try:
            module = importlib.import_module(module_name)
            patches: list[Patch] = module.patches()
            for patch in patches:
                patch.install()
                _patches.append(patch)
        except Exception as exc:  # a library version we do not understand: capture the others
            warn_once(
                f"outgoing-patch-{library}",
                "moesif: could not capture %s calls (%s: %s); other calls are still captured",
                library,
                type(exc).__name__,
                exc,
            )


def _uninstall() -> None:
    # Last installed first, so stacked wrappers of ours unwind in order.
    while _patches:
        patch = _patches.pop()
        try:
            patch.uninstall()
        except Exception as exc:  # pragma: no cover - setattr on a class does not fail in practice
            warn_once("outgoing-unpatch", "moesif: could not restore %s (%s)", patch.name, exc)


# -- deciding what is captured --------------------------------------------------------------------


def is_moesif_call(url: str, header_names: Iterable[str] = ()) -> bool:
    """True for a post to a started capture's ``BASE_URI`` or any call carrying a Moesif application id header."""
    lowered = url.lower()
    for capture in _captures:
        base = capture.settings.base_uri.lower()
        if lowered.startswith(base) and lowered[len(base) : len(base) + 1] in ("", "/", "?", "#"):
            return True
    return any(name.lower() == _MOESIF_HEADER for name in header_names)


def run_deferring(send: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a client's ``send``; calls whose body ended inside it are finished once it returns."""
    token = _deferred.set([])
    try:
        return send(*args, **kwargs)
    finally:
        _finish_deferred(token)


async def arun_deferring(send: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """:func:`run_deferring` for an async ``send``."""
    token = _deferred.set([])
    try:
        return await send(*args, **kwargs)
    finally:
        _finish_deferred(token)


def _finish_deferred(token: contextvars.Token[list[OutgoingCall] | None]) -> None:
    pending = _deferred.get()
    _deferred.reset(token)
    for call in pending or ():
        call.finish()


# -- one call -------------------------------------------------------------------------------------


def _body_bytes(body: Any, cap: int) -> tuple[bytes | None, int, bool]:
    """A request body known up front -> (kept bytes, size, truncated); streamed bodies are not read."""
    if body is None:
        return None, 0, False
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        return None, 0, False  # a file or generator: reading it here would take it from the client
    size = len(body)
    return bytes(body[:cap]), size, size > cap


class OutgoingCall:
    """One outgoing exchange, from the send to the end (or close) of its response body.

    The library glue calls :meth:`responded` when the headers arrive, :meth:`feed` for each body
    chunk the caller reads, :meth:`body_ended` / :meth:`closed` as the stream ends, or
    :meth:`failed` when no response came; :meth:`finish` runs the callbacks and submits, exactly
    once. Nothing here raises into the caller.
    """

    __slots__ = (
        "__weakref__",
        "_cap",
        "_chunks",
        "_ended",
        "_finalizer",
        "_kept",
        "_lock",
        "_log_body",
        "_response_ref",
        "capture",
        "done",
        "record",
        "request",
    )

    def __init__(
        self, capture: OutgoingCapture, request: Any, method: str, url: str, headers: list[tuple[str, str]], body: Any
    ) -> None:
        settings = capture.settings
        self.capture = capture
        self.request = request
        self.done = False
        self._lock = threading.Lock()
        self._log_body = settings.log_body_outgoing
        self._cap = settings.log_body_max_bytes
        self._chunks: list[bytes] = []
        self._kept = 0
        self._ended = False
        self._response_ref: Callable[[], Any] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        record = RawExchange()
        record.direction = "Outgoing"
        record.request_time = time.time()
        record.method = method.upper()
        record.full_url = url
        parts = urlsplit(url)
        record.scheme = parts.scheme or "http"
        record.host = parts.netloc
        record.path = parts.path or "/"
        record.query_string = parts.query
        record.request_headers = headers
        record.request_header_style = "pairs"
        if self._log_body:
            record.request_body, record.request_body_size, record.request_body_truncated = _body_bytes(body, self._cap)
        self.record = record

    @classmethod
    def begin(
        cls, capture: OutgoingCapture, request: Any, method: str, url: str, headers: list[tuple[str, str]], body: Any
    ) -> OutgoingCall | None:
        """A new call, or None when recording it failed (the client call then goes on uncaptured)."""
        try:
            return cls(capture, request, str(method), str(url), headers, body)
        except Exception as exc:
            warn_once("outgoing-begin", "moesif: could not record an outgoing call (%s: %s)", type(exc).__name__, exc)
            return None

    # -- progress ---------------------------------------------------------------------------

    def responded(self, response: Any, status: int, headers: list[tuple[str, str]]) -> None:
        """The response headers arrived; ``response`` is watched so an abandoned stream is still logged."""
        record = self.record
        record.status = status
        record.response_headers = headers
        record.response_header_style = "pairs"
        record.response_time = time.time()
        try:
            self._response_ref = weakref.ref(response)
        except TypeError:  # not weak-referenceable: keep it until the call ends
            self._response_ref = lambda: response
        else:
            finalizer = weakref.finalize(response, self.abandoned)
            finalizer.atexit = False
            self._finalizer = finalizer

    def feed(self, chunk: Any) -> None:
        """A body chunk the caller read; kept up to ``LOG_BODY_MAX_BYTES``, counted beyond."""
        if self.done:
            return
        try:
            size = len(chunk)
        except TypeError:
            return
        record = self.record
        record.response_body_size += size
        if not self._log_body:
            return
        room = self._cap - self._kept
        if room <= 0:
            if size:
                record.response_body_truncated = True
            return
        if size > room:
            chunk = chunk[:room]
            record.response_body_truncated = True
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            self._chunks.append(bytes(chunk))
            self._kept += len(chunk)

    def body_ended(self) -> None:
        """The caller read the body to its end."""
        if self.done or self._ended:
            return
        self._ended = True
        self.record.response_time = time.time()
        pending = _deferred.get()
        if pending is not None:
            pending.append(self)  # inside the client's send(): finish when it returns
        else:
            self.finish()

    def closed(self) -> None:
        """The response was closed; a body not read to its end is logged as far as it was read."""
        if self.done or self._ended:
            return
        record = self.record
        record.response_time = time.time()
        if record.response_body_size:
            record.response_body_truncated = True  # closed mid-stream: the event has what was read
        self._ended = True
        pending = _deferred.get()
        if pending is not None:
            pending.append(self)
        else:
            self.finish()

    def note_error(self, exc: BaseException) -> None:
        """An exception while the body was read (the caller gets it unchanged)."""
        if not self.done and self.record.error is None:
            self.record.error = _error_text(exc)

    def failed(self, exc: BaseException) -> None:
        """No response: logged with status 0 and the error in ``metadata._moesif``."""
        try:
            self.record.error = _error_text(exc)
            self.record.response_time = time.time()
            self._ended = True
            self.finish()
        except Exception as inner:  # pragma: no cover - finish() guards itself
            warn_once("outgoing-failed", "moesif: could not record a failed outgoing call (%s)", inner)

    def abandoned(self) -> None:
        """The response was garbage-collected unread and unclosed: log what was read (callbacks get ``res=None``)."""
        if self.done:
            return
        if not self._ended:
            self._ended = True
            if self.record.response_body_size:
                self.record.response_body_truncated = True
        self.finish()

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> None:
        """Run the ``*_OUTGOING`` callbacks, sample, and submit; exactly once, never raises."""
        with self._lock:
            if self.done:
                return
            self.done = True
        try:
            self._finish()
        except Exception as exc:
            warn_rate_limited("outgoing-finish", "moesif: could not record an outgoing call (%s: %s)", type(exc).__name__, exc)
        finally:
            finalizer = self._finalizer
            if finalizer is not None:
                finalizer.detach()
            self._chunks = []
            self.request = None

    def _finish(self) -> None:
        capture = self.capture
        agent = capture.agent
        settings = capture.settings
        record = self.record
        ref = self._response_ref
        response = ref() if ref is not None else None
        request = self.request
        if _call_hook("SKIP_OUTGOING", settings.skip_outgoing, request, response):
            agent.count("skipped")
            if settings.debug:
                logger.debug("moesif: outgoing %s %s skipped by SKIP_OUTGOING", record.method, record.full_url)
            return
        record.user_id = _call_hook("IDENTIFY_USER_OUTGOING", settings.identify_user_outgoing, request, response)
        record.company_id = _call_hook("IDENTIFY_COMPANY_OUTGOING", settings.identify_company_outgoing, request, response)
        if not keep_call(agent, record, RequestAnnotations()):
            return
        record.session_token = _call_hook("GET_SESSION_TOKEN_OUTGOING", settings.get_session_token_outgoing, request, response)
        metadata = _call_hook("GET_METADATA_OUTGOING", settings.get_metadata_outgoing, request, response)
        if record.error is not None:
            metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
            metadata["_moesif"] = {"error": record.error}
        record.metadata = metadata
        if self._chunks:
            record.response_body = b"".join(self._chunks)
        agent.submit(record)


def _error_text(exc: BaseException) -> str:
    kind = type(exc)
    name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ not in ("builtins", None) else kind.__qualname__
    try:
        text = str(exc)
    except Exception:
        text = ""
    text = f"{name}: {text}" if text else name
    return text[:_ERROR_TEXT_LIMIT]


def _call_hook(name: str, fn: Callable[..., Any] | None, request: Any, response: Any) -> Any:
    """An ``*_OUTGOING`` callback; None when unset or when it raised (one warning per callback)."""
    if fn is None:
        return None
    try:
        result = fn(request, response)
    except Exception as exc:
        warn_once(
            f"callback:{name}", "moesif: %s raised %s: %s; this part of the event is left out", name, type(exc).__name__, exc
        )
        return None
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        warn_once(f"callback-async:{name}", "moesif: %s must be a plain function (outgoing callbacks are not awaited)", name)
        return None
    return result
