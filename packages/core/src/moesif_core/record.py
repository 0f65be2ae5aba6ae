"""The raw record of one API call: what the request path hands to the background.

The request path must stay cheap, so a record holds references to what the server already built
(the WSGI header list, the ASGI ``scope["headers"]`` list, body chunks joined once) and the
results of user callbacks. Everything else (header normalisation, URL assembly, IP resolution,
JWT parsing, body decoding, masking, JSON) is done by :mod:`moesif_core.event_builder` on the
sender thread.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Final, Literal

from .masking import TRANSACTION_ID_HEADER
from .request_path import header_entries, native_record_maker, new_transaction_id, untrack

__all__ = [
    "HeaderStyle",
    "RawExchange",
    "hand_over",
    "native_record_from_environ",
    "native_record_from_scope",
    "new_transaction_id",
    "record_from_environ",
    "record_from_scope",
]

# How a header list is shaped, so the builder knows how to normalise it:
# "wsgi": environ-style [("HTTP_X_FOO", "v"), ("CONTENT_TYPE", "v")] (names in CGI form)
# "asgi": [(b"x-foo", b"v")] as in an ASGI scope or http.response.start message
# "pairs": [("X-Foo", "v")] plain (name, value) strings, e.g. a WSGI start_response list
# "environ": the header entries of a WSGI environ (HTTP_* and CONTENT_TYPE/CONTENT_LENGTH keys); an
#   environ's other entries may be there too and are not headers
HeaderStyle = Literal["wsgi", "asgi", "pairs", "environ"]

# Fixed cost charged per record against the queue's byte budget: the Python objects of a record
# and its header lists weigh far more than their text.
RECORD_OVERHEAD_BYTES: Final = 1024


class RawExchange:
    """One captured call. Times are ``time.time()`` floats; text fields are ``str``; bodies ``bytes``.

    ``user_id``/``company_id``/``session_token``/``metadata`` hold what the user's callbacks
    returned (``None`` when they returned nothing); the builder falls back to the token in the
    authorization header for the user and company.
    """

    __slots__ = (
        "blocked_by",
        "client_addr",
        "company_id",
        "direction",
        "error",
        "full_url",
        "host",
        "metadata",
        "method",
        "path",
        "query_string",
        "request_body",
        "request_body_size",
        "request_body_truncated",
        "request_header_style",
        "request_headers",
        "request_time",
        "response_body",
        "response_body_size",
        "response_body_truncated",
        "response_header_style",
        "response_headers",
        "response_time",
        "root_path",
        "route",
        "scheme",
        "session_token",
        "status",
        "transaction_id",
        "user_id",
        "weight",
    )

    def __init__(self) -> None:
        self.direction: str = "Incoming"
        self.request_time: float = 0.0
        self.response_time: float = 0.0
        self.method: str = "GET"
        self.scheme: str = "http"
        self.host: str = ""
        self.root_path: str = ""  # WSGI SCRIPT_NAME / ASGI root_path: the app's mount point
        self.path: str = "/"
        self.query_string: str = ""
        self.full_url: str | None = None  # set when the URL is known whole (outgoing calls)
        self.request_headers: Any = ()
        self.request_header_style: HeaderStyle = "pairs"
        self.client_addr: str | None = None
        self.request_body: bytes | None = None  # at most LOG_BODY_MAX_BYTES
        self.request_body_size: int = 0  # bytes the app read in total
        self.request_body_truncated: bool = False
        self.status: int = 0
        self.response_headers: Any = ()
        self.response_header_style: HeaderStyle = "pairs"
        self.response_body: bytes | None = None
        self.response_body_size: int = 0
        self.response_body_truncated: bool = False
        self.user_id: Any = None
        self.company_id: Any = None
        self.session_token: Any = None
        self.metadata: Any = None
        self.transaction_id: str | None = None
        self.blocked_by: str | None = None
        self.weight: int = 1
        self.route: str | None = None  # the route template when the framework knows it
        self.error: str | None = None  # exception type name when the app raised

    def estimated_size(self) -> int:
        """Bytes this record holds, for the queue's byte budget; cheap, not exact."""
        size = RECORD_OVERHEAD_BYTES
        if self.request_body is not None:
            size += len(self.request_body)
        if self.response_body is not None:
            size += len(self.response_body)
        # Header lists: ~64 bytes a pair is close for typical traffic and costs no iteration.
        size += 64 * (len(self.request_headers) + len(self.response_headers))
        return size

    def __repr__(self) -> str:
        return f"<RawExchange {self.direction} {self.method} {self.root_path}{self.path} {self.status}>"


_TRANSACTION_ID_KEY: Final = "HTTP_X_MOESIF_TRANSACTION_ID"


def _record_from_environ(environ: dict[str, Any], now: float, with_transaction_id: bool) -> RawExchange:
    record = RawExchange()
    record.request_time = now
    record.method = environ.get("REQUEST_METHOD", "GET")
    record.scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}".rstrip(":")
    record.host = host
    record.root_path = environ.get("SCRIPT_NAME", "")
    record.path = environ.get("PATH_INFO", "") or "/"
    record.query_string = environ.get("QUERY_STRING", "")
    # The environ's headers (PEP 3333: HTTP_* and the CGI content keys, str values). Not a plain
    # copy: that would keep the server's socket, input stream and callbacks alive, unaccounted,
    # while the record waits in the queue, and carry a dozen server strings no event reads.
    record.request_headers = header_entries(environ)
    record.request_header_style = "environ"
    record.client_addr = environ.get("REMOTE_ADDR")
    if with_transaction_id:
        incoming = environ.get(_TRANSACTION_ID_KEY)
        record.transaction_id = incoming if incoming and len(incoming) <= 128 else new_transaction_id()
    return record


_native_maker = native_record_maker(RawExchange(), RECORD_OVERHEAD_BYTES)
#: The C halves of :func:`record_from_environ` and :func:`record_from_scope` (None when not built): what
#: they make, or None for the Python version.
native_record_from_environ: Callable[[dict[str, Any], float, bool], RawExchange | None] | None = (
    _native_maker.from_environ if _native_maker is not None else None
)
native_record_from_scope: Callable[[MutableMapping[str, Any], float, bool], tuple[RawExchange, bool] | None] | None = (
    _native_maker.from_scope if _native_maker is not None else None
)


def _hand_over(record: RawExchange) -> int:
    untrack(record)
    return record.estimated_size()


#: What the agent does with a record the queue is about to take: take it out of the cyclic GC's
#: view (nothing it refers to refers back to it, see ``request_path.untrack``) and answer its
#: :meth:`~RawExchange.estimated_size`; one C call when the native part is built.
hand_over: Callable[[RawExchange], int] = _native_maker.hand_over if _native_maker is not None else _hand_over


def record_from_environ(environ: dict[str, Any], now: float, with_transaction_id: bool) -> RawExchange:
    """A new record of the WSGI call of ``environ`` at ``now``, its transaction id the client's or a new one.

    In C when moesif-core's native part is built (the same record, see
    :func:`moesif_core.request_path.native_record_maker`); in Python for anything it hands back.
    """
    if native_record_from_environ is not None:
        record: RawExchange | None = native_record_from_environ(environ, now, with_transaction_id)
        if record is not None:
            return record
    return _record_from_environ(environ, now, with_transaction_id)


_ASGI_TRANSACTION_ID: Final = TRANSACTION_ID_HEADER.encode("latin-1")


def _record_from_scope(scope: MutableMapping[str, Any], now: float, with_transaction_id: bool) -> tuple[RawExchange, bool]:
    record = RawExchange()
    record.request_time = now
    record.method = scope.get("method", "GET")
    record.scheme = scope.get("scheme", "http")
    raw_headers = scope.get("headers") or []
    if not isinstance(raw_headers, list):
        # The spec allows any iterable; keep one list that both we and the app can read.
        raw_headers = list(raw_headers)
        scope["headers"] = raw_headers
    record.request_headers = raw_headers
    record.request_header_style = "asgi"
    host = ""
    txn = None
    has_body = False
    for name, value in raw_headers:
        if name == b"host":
            host = value.decode("latin-1")
        elif name == b"content-length":
            has_body = value != b"0"
        elif name == b"transfer-encoding":
            has_body = True
        elif name == _ASGI_TRANSACTION_ID:
            txn = value.decode("latin-1")
    if not host:
        server = scope.get("server")
        if server:
            host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
    record.host = host
    root_path = scope.get("root_path", "") or ""
    path = scope.get("path", "/") or "/"
    if root_path and path.startswith(root_path):
        # Newer servers put the mount point in path too; the URL needs it once.
        path = path[len(root_path) :] or "/"
    record.root_path = root_path
    record.path = path
    query = scope.get("query_string", b"")
    record.query_string = query.decode("latin-1") if query else ""
    client = scope.get("client")
    record.client_addr = client[0] if client else None
    if with_transaction_id:
        record.transaction_id = txn if txn and len(txn) <= 128 else new_transaction_id()
    return record, has_body


def record_from_scope(scope: MutableMapping[str, Any], now: float, with_transaction_id: bool) -> tuple[RawExchange, bool]:
    """A new record of the ASGI HTTP call of ``scope`` at ``now``, and whether its request has a body.

    The counterpart of :func:`record_from_environ`: in C for the usual scope (its header list
    read once, no Python loop over it), in Python for anything the C version hands back.
    """
    if native_record_from_scope is not None:
        made: tuple[RawExchange, bool] | None = native_record_from_scope(scope, now, with_transaction_id)
        if made is not None:
            return made
    return _record_from_scope(scope, now, with_transaction_id)
