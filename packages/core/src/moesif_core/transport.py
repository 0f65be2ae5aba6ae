"""HTTP to the Collector API over the standard library, with a timeout on every call.

Why ``http.client`` and not ``requests``: outgoing-call capture patches ``requests`` and ``httpx``,
and our own posts must never be captured as the app's traffic. One :class:`HttpTransport` holds one
persistent keep-alive connection and is used by one thread at a time (each sender worker has its
own). The connect timeout bounds connecting (and the TLS handshake); the read timeout bounds
every later socket operation, so a collector that accepts and never answers costs at most that.
TLS is verified with the system's default context.

The retry policy of a delivery (which answers are worth another try, how long to wait) lives here
too, as pure functions, so it can be tested without sleeping.

Example::

    transport = HttpTransport("http://127.0.0.1:8787", application_id="app", user_agent="moesif-core/1.0",
                              connect_timeout=5, read_timeout=10)
    response = transport.request("POST", "/v1/events/batch", gzip_body(b"[]"), gzip=True)
    response.status  # 201
"""

from __future__ import annotations

import email.utils
import encodings.idna  # noqa: F401  (see below)
import http.client
import math
import random
import ssl
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import urlsplit

_deflate: Any
try:
    # ISA-L writes the same gzip stream as zlib about ten times faster at level 1 (most of the
    # sender's time after building), and releases the GIL. A dependency where it has wheels.
    from isal import isal_zlib as _deflate
except ImportError:
    _deflate = zlib
# Which library gzips the batches: "isal" or "zlib" (for operators and the benchmark report).
GZIP_IMPLEMENTATION: Final = "zlib" if _deflate is zlib else "isal"

__all__ = [
    "GZIP_IMPLEMENTATION",
    "HttpTransport",
    "Response",
    "TransportError",
    "backoff_delay",
    "gzip_body",
    "gzip_parts",
    "is_retryable_status",
    "parse_retry_after",
    "retry_delay",
]

# socket.getaddrinfo encodes host names with the "idna" codec, imported on first use. Imported
# here, on the importing thread: a first import on a sender thread that a fork interrupts leaves
# the module's import lock held forever in the child ("LookupError: unknown encoding: idna").
GZIP_LEVEL: Final = 1  # level 1 compresses JSON events ~5-8x at several times the speed of zlib's default 6
_STALE_CONNECTION_ERRORS: Final = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class TransportError(Exception):
    """The call did not get an HTTP answer: connection refused or cut, timeout, TLS failure."""


class Response:
    """An HTTP answer: status, headers (lower-case names) and the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def gzip_body(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``data`` in gzip format (wbits 31); the GIL is released while it works on large buffers."""
    return _deflate.compress(data, level, wbits=31)  # type: ignore[no-any-return]


def gzip_parts(parts: Iterable[bytes], level: int = GZIP_LEVEL) -> bytes:
    """The concatenation of ``parts`` in gzip format, without ever building the concatenation.

    A batch is ``[`` + events joined by ``,`` + ``]``: adding the brackets to half a megabyte of
    events would copy it once more, under the GIL, for every batch.
    """
    compressor = _deflate.compressobj(level, zlib.DEFLATED, 31)
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    return b"".join(out)


class HttpTransport:
    """One persistent connection to the collector at ``base_uri``; not shared between threads."""

    def __init__(
        self,
        base_uri: str,
        *,
        application_id: str,
        user_agent: str,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"BASE_URI must be an http:// or https:// URL, got {base_uri!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl_context = ssl_context
        self._headers = {
            "X-Moesif-Application-Id": application_id,
            "User-Agent": user_agent,
            "Accept": "application/json",
        }
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # whether the current connection already carried a request

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            return conn
        if conn is not None:
            conn.close()
        if self._https:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._connect_timeout, context=self._ssl_context)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(self._read_timeout)
        self._conn = conn
        self._used = False
        return conn

    def request(self, method: str, path: str, body: bytes | None = None, *, gzip: bool = False) -> Response:
        """Send one request and read the whole answer; raises :class:`TransportError` without one."""
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            if gzip:
                headers["Content-Encoding"] = "gzip"
        target = self._prefix + path
        for attempt in (0, 1):
            reused = False
            try:
                conn = self._connection()
                reused = self._used
                self._used = True
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                answer = Response(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
                if response.will_close:
                    self.close()
                return answer
            except _STALE_CONNECTION_ERRORS as exc:
                self.close()
                # A kept-alive connection the server closed while idle: one fresh try, not a retry.
                if reused and attempt == 0:
                    continue
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.close()
                if isinstance(exc, TimeoutError):
                    raise TransportError(f"timed out ({exc or 'no answer'})") from exc
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def forget(self) -> None:
        """Drop the connection without touching it: after fork it belongs to the parent."""
        self._conn = None


# -- retry policy -------------------------------------------------------------------------------


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth another try; other answers are final."""
    return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2**attempt))``."""
    ceiling = min(cap, base * (2.0 ** min(attempt, 62)))
    return rng() * ceiling


def retry_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: str | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """The wait before retry number ``attempt + 1``: the server's ``Retry-After`` (capped) when given."""
    asked = parse_retry_after(retry_after)
    if asked is not None:
        return min(asked, cap)
    return backoff_delay(attempt, base, cap, rng)
