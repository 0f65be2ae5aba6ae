"""Fuzzing the capture layer: whatever a client sends and whatever a callback returns, the app's
answer is byte for byte what it is without us, nothing raises, and the event builds and serialises.

Hypothesis generates requests (method, path, query, host, header names and values of any latin-1
text, JWTs with random, valid and invalid base64url segments, non-object and huge payloads, Basic
credentials), bodies (any bytes, JSON, forms, gzip, deflate, cut gzip) under any content type and
content encoding, app responses (any latin-1 headers, chunked bodies) and callbacks that raise or
return odd things (None, huge ints, NaN, bytes, lone surrogates, objects that cannot be printed,
dicts with non-string keys, generators, coroutines in WSGI, deep nesting). Each example runs the
same raw WSGI or ASGI app with and without the middleware, then builds every recorded event with
the real :class:`~moesif_core.event_builder.EventBuilder`.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moesif_core.asgi import MoesifMiddleware as AsgiMiddleware
from moesif_core.event_builder import EventBuilder
from moesif_core.record import RawExchange
from moesif_core.settings import Settings
from moesif_core.wsgi import MoesifMiddleware as WsgiMiddleware

FUZZ = settings(
    max_examples=150,
    deadline=None,
    # function_scoped_fixture: wsgi_request_path only picks the path, the same for every example.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
TXN = "x-moesif-transaction-id"


class StubAgent:
    """Records what the capture layer submits; sampling as the example says (no threads, no network)."""

    def __init__(self, settings: Settings, rate: int, needs_identity: bool) -> None:
        self.settings = settings
        self.records: list[RawExchange] = []
        self.rate = rate
        self.sampling_needs_identity = needs_identity

    def submit(self, record: RawExchange) -> bool:
        self.records.append(record)
        return True

    def ensure_started(self) -> None:
        pass

    def count(self, reason: str) -> None:
        pass

    def sample_rate(self, **_: Any) -> int:
        return self.rate


# -- strategies -----------------------------------------------------------------------------------

latin1_char = st.characters(min_codepoint=0, max_codepoint=255)
latin1 = st.text(alphabet=latin1_char, max_size=40)
latin1_name = st.text(alphabet=latin1_char, min_size=1, max_size=24)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
credential_keys = st.sampled_from(["password", "token", "secret", "access_token", "Password", "api_key", "note", "sub"])
json_bodies = st.dictionaries(credential_keys | st.text(max_size=8), json_values, max_size=6) | json_values


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


jwt_segment = st.one_of(
    st.binary(max_size=48).map(b64url),  # valid base64url of anything
    json_values.map(lambda v: b64url(orjson.dumps(v))),  # non-object payloads
    st.dictionaries(st.sampled_from(["sub", "user", "org", "SUB"]), json_values, max_size=3).map(
        lambda v: b64url(orjson.dumps(v))
    ),
    st.integers(2000, 20000).map(lambda n: b64url(orjson.dumps({"sub": "u" * n, "claims": list(range(n // 10))}))),  # huge
    latin1,  # not base64 at all
    st.text(alphabet="ABCDEFabc012-_+/=", max_size=30),  # base64-ish, often with bad padding
)
jwts = st.lists(jwt_segment, min_size=1, max_size=4).map(".".join)
basics = st.one_of(
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.tuples(latin1, latin1).map(lambda p: base64.b64encode(f"{p[0]}:{p[1]}".encode()).decode()),
    latin1,
).map(lambda v: f"Basic {v}")
authorizations = st.one_of(jwts.map(lambda t: f"Bearer {t}"), jwts, basics, latin1, st.tuples(latin1, jwts).map(" ".join))

content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/vnd.api+json",
            "application/x-www-form-urlencoded",
            "text/plain; charset=utf-8",
            "text/html; charset=no-such-charset",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
        ]
    ),
    latin1,
)
content_encodings = st.one_of(st.sampled_from(["gzip", "deflate", "br", "identity", "gzip, deflate", "x-bogus", ""]), latin1)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "form", "gzip", "deflate", "cut-gzip", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=3000))
    if kind == "empty":
        return b""
    if kind == "form":
        pairs = draw(st.lists(st.tuples(credential_keys | latin1, latin1), max_size=5))
        return urlencode(pairs, encoding="latin-1").encode()
    data = orjson.dumps(draw(json_bodies))
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "deflate":
        return zlib.compress(data)
    if kind == "cut-gzip":
        return gzip.compress(data)[: draw(st.integers(0, 20))]
    return data


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__

    def __bool__(self) -> bool:
        raise RuntimeError("no truth for you")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no equality for you")

    __hash__ = None  # type: ignore[assignment]


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _numbers() -> Iterator[int]:
    yield from range(3)


async def _coroutine_value() -> str:
    return "from a coroutine"


ODD_VALUES: list[Callable[[], Any]] = [
    lambda: None,
    lambda: 0,
    lambda: -1,
    lambda: 2**80,
    lambda: 3.5,
    lambda: float("nan"),
    lambda: float("inf"),
    lambda: True,
    lambda: "",
    lambda: "user-1",
    lambda: "lone-\udcff-surrogate",
    lambda: b"bytes-\xff",
    lambda: bytearray(b"ba"),
    Unprintable,
    object,
    lambda: {1: "int key", None: "none key", 2.5: "float key"},
    lambda: {(1, 2): "tuple key"},
    lambda: {"set": {1, 2}, "bytes": b"\x00\xff", "obj": object(), "bad": Unprintable()},
    lambda: {"nested": _deep(300)},
    lambda: _deep(300),
    lambda: [1, "two", None],
    _numbers,
]


@st.composite
def callbacks(draw: st.DrawFn, asgi: bool) -> dict[str, Any]:
    """Settings with callbacks that return odd values, raise, or are async (a coroutine in WSGI)."""
    chosen: dict[str, Any] = {}
    for key in ("IDENTIFY_USER", "IDENTIFY_COMPANY", "GET_METADATA", "GET_SESSION_TOKEN", "SKIP", "MASK_EVENT_MODEL"):
        how = draw(st.sampled_from(["unset", "value", "raise", "async"]))
        if how == "unset":
            continue
        if key == "SKIP" and how == "value":
            # Truthy values skip the call (nothing to build): keep most examples recorded.
            factory = draw(st.sampled_from([ODD_VALUES[0], ODD_VALUES[1], ODD_VALUES[8], ODD_VALUES[13]]))
        else:
            factory = draw(st.sampled_from(ODD_VALUES))
        if how == "raise":

            def raising(*_: Any) -> Any:
                raise ValueError("callback failed")

            chosen[key] = raising
        elif how == "async" and key != "MASK_EVENT_MODEL":

            async def async_callback(*_: Any, _factory: Callable[[], Any] = factory) -> Any:
                return _factory()

            chosen[key] = async_callback
        else:

            def callback(*_: Any, _factory: Callable[[], Any] = factory) -> Any:
                return _factory()

            chosen[key] = callback
    if not asgi and draw(st.booleans()):
        # A sync callback handing back a coroutine object, not an async def.
        chosen["GET_SESSION_TOKEN"] = lambda *_: _coroutine_value()
    return chosen


@st.composite
def exchanges(draw: st.DrawFn) -> dict[str, Any]:
    """One request and the app's answer to it."""
    headers = draw(st.lists(st.tuples(latin1_name, latin1), max_size=6))
    if draw(st.booleans()):
        headers.append(("Authorization", draw(authorizations)))
    if draw(st.booleans()):
        headers.append((draw(st.sampled_from(["Cookie", "X-Api-Key", "Proxy-Authorization", "X-Forwarded-For"])), draw(latin1)))
    if draw(st.booleans()):
        headers.append(("X-Moesif-Transaction-Id", draw(latin1)))
    request_body = draw(bodies())
    if request_body or draw(st.booleans()):
        headers.append(("Content-Type", draw(content_types)))
    if draw(st.booleans()):
        headers.append(("Content-Encoding", draw(content_encodings)))
    response_body = draw(bodies())
    response_headers = draw(st.lists(st.tuples(latin1_name, latin1), max_size=5))
    response_headers.append(("Content-Type", draw(content_types)))
    if draw(st.booleans()):
        response_headers.append(("Content-Encoding", draw(content_encodings)))
    if draw(st.booleans()):
        response_headers.append(("Set-Cookie", draw(latin1)))
    cuts = sorted(draw(st.lists(st.integers(0, len(response_body)), max_size=3)))
    chunks = [response_body[a:b] for a, b in zip([0, *cuts], [*cuts, len(response_body)], strict=True)]
    return {
        "method": draw(st.one_of(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]), latin1_name)),
        "path": draw(st.one_of(st.just("/"), latin1.map(lambda p: "/" + p), st.just(""))),
        "root_path": draw(st.one_of(st.just(""), latin1.map(lambda p: "/" + p))),
        "query": draw(latin1),
        "host": draw(st.one_of(st.none(), latin1)),
        "headers": headers,
        "request_body": request_body,
        "status": draw(st.one_of(st.sampled_from([200, 201, 204, 302, 400, 404, 500]), st.integers(100, 999))),
        "response_headers": response_headers,
        "response_chunks": chunks,
        "generator": draw(st.booleans()),
    }


def check_events(agent: StubAgent, settings: Settings) -> list[dict[str, Any]]:
    builder = EventBuilder(settings)
    events = []
    for record in agent.records:
        data = builder.build_json(record)
        assert data is not None, f"the event of {record!r} could not be built"
        event = orjson.loads(data)
        assert isinstance(event, dict)
        assert isinstance(event["request"]["uri"], str)
        assert 0 <= event["response"]["status"] <= 999
        events.append(event)
    return events


# -- WSGI -----------------------------------------------------------------------------------------


def wsgi_environ(ex: dict[str, Any]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": ex["method"],
        "SCRIPT_NAME": ex["root_path"],
        "PATH_INFO": ex["path"],
        "QUERY_STRING": ex["query"],
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(ex["request_body"]),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(ex["request_body"])),
    }
    if ex["host"] is not None:
        environ["HTTP_HOST"] = ex["host"]
    for name, value in ex["headers"]:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ.setdefault(key, value)
        else:
            environ["HTTP_" + key] = value
    environ["CONTENT_LENGTH"] = str(len(ex["request_body"]))
    return environ


def wsgi_app_for(ex: dict[str, Any]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        received = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        assert received == ex["request_body"]
        start_response(f"{ex['status']} Fuzzed", list(ex["response_headers"]))
        if ex["generator"]:
            return (chunk for chunk in ex["response_chunks"])
        return list(ex["response_chunks"])

    return app


def run_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started.append((status, headers))
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[-1]
    return status, [(k, v) for k, v in headers if k.lower() != TXN], body


@pytest.mark.usefixtures("wsgi_request_path")
@FUZZ
@given(
    ex=exchanges(),
    chosen=callbacks(asgi=False),
    rate=st.sampled_from([100, 50]),
    needs_identity=st.booleans(),
    debug=st.booleans(),
)
def test_wsgi_answers_as_without_us_and_every_event_serialises(
    ex: dict[str, Any], chosen: dict[str, Any], rate: int, needs_identity: bool, debug: bool
) -> None:
    config = Settings.resolve(
        {"APPLICATION_ID": "fuzz-app", "BASE_URI": "http://127.0.0.1:9", "DEBUG": debug, "LOG_BODY_MAX_BYTES": 1024, **chosen}
    )
    expected = run_wsgi(wsgi_app_for(ex), wsgi_environ(ex))
    agent = StubAgent(config, rate, needs_identity)
    middleware = WsgiMiddleware(wsgi_app_for(ex), config, agent=agent)  # type: ignore[arg-type]
    got = run_wsgi(middleware, wsgi_environ(ex))
    assert got == expected
    assert len(agent.records) <= 1
    check_events(agent, config)


# -- ASGI -----------------------------------------------------------------------------------------


def asgi_scope(ex: dict[str, Any]) -> dict[str, Any]:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in ex["headers"]]
    if ex["host"] is not None:
        headers.insert(0, (b"host", ex["host"].encode("latin-1")))
    headers.append((b"content-length", str(len(ex["request_body"])).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": ex["method"],
        "scheme": "http",
        "root_path": ex["root_path"],
        "path": ex["root_path"] + ex["path"],
        "raw_path": (ex["root_path"] + ex["path"]).encode("latin-1"),
        "query_string": ex["query"].encode("latin-1"),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }


def asgi_app_for(ex: dict[str, Any]) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        received = b""
        while True:
            message = await receive()
            received += message.get("body", b"")
            if not message.get("more_body"):
                break
        assert received == ex["request_body"]
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in ex["response_headers"]]
        await send({"type": "http.response.start", "status": ex["status"], "headers": headers})
        chunks = ex["response_chunks"]
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})

    return app


def run_asgi(app: Callable[..., Any], ex: dict[str, Any]) -> list[dict[str, Any]]:
    body = ex["request_body"]
    pieces = [body[: len(body) // 2], body[len(body) // 2 :]] if body else [b""]
    incoming = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(app(asgi_scope(ex), receive, send))
    for message in sent:
        if message["type"] == "http.response.start":
            message["headers"] = [(bytes(k), bytes(v)) for k, v in message["headers"] if bytes(k).lower() != TXN.encode()]
    return sent


@pytest.mark.usefixtures("asgi_request_path")
@FUZZ
@given(
    ex=exchanges(),
    chosen=callbacks(asgi=True),
    rate=st.sampled_from([100, 50]),
    needs_identity=st.booleans(),
    debug=st.booleans(),
)
def test_asgi_answers_as_without_us_and_every_event_serialises(
    ex: dict[str, Any], chosen: dict[str, Any], rate: int, needs_identity: bool, debug: bool
) -> None:
    config = Settings.resolve(
        {"APPLICATION_ID": "fuzz-app", "BASE_URI": "http://127.0.0.1:9", "DEBUG": debug, "LOG_BODY_MAX_BYTES": 1024, **chosen}
    )
    expected = run_asgi(asgi_app_for(ex), ex)
    agent = StubAgent(config, rate, needs_identity)
    middleware = AsgiMiddleware(asgi_app_for(ex), config, agent=agent)  # type: ignore[arg-type]
    assert run_asgi(middleware, ex) == expected
    assert len(agent.records) <= 1
    check_events(agent, config)


# -- the builder alone, on callback results the capture layer passes on as they are --------------------------------------


@FUZZ
@given(
    value=st.sampled_from(ODD_VALUES),
    # The fields user code fills (the callbacks' results, annotations); the others are ours.
    field=st.sampled_from(["user_id", "company_id", "session_token", "metadata"]),
    headers=st.lists(st.tuples(latin1_name, latin1), max_size=4),
    body=bodies(),
)
def test_any_value_in_any_record_field_still_builds_a_serialisable_event(
    value: Callable[[], Any], field: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    config = Settings.resolve({"APPLICATION_ID": "fuzz-app", "BASE_URI": "http://127.0.0.1:9"})
    record = RawExchange()
    record.request_headers = headers
    record.response_headers = headers
    record.request_body = body or None
    record.response_body = body or None
    record.status = 200
    setattr(record, field, value())
    agent = StubAgent(config, 100, False)
    agent.records.append(record)
    check_events(agent, config)
