"""The ASGI request path in C (``_asgi_exchange.c``) records what the Python one records, call for call.

Each generated call (how the app answers, the request's body, the settings, the callbacks, the
sampling rate, a server whose send fails) is served twice, once by a middleware on each path, and
everything is compared: what the server was sent, what the app received, the record slot by slot,
the counters and what was raised.
"""

from __future__ import annotations

import asyncio
import random
from collections import UserDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moesif_core import asgi
from moesif_core.annotations import annotations_of
from moesif_core.record import RawExchange
from moesif_core.testing import RecordingAgent

pytestmark = pytest.mark.skipif(not asgi.NATIVE, reason="moesif_core._asgi_exchange is not built")

_SLOTS = [name for name in RawExchange.__slots__ if name not in ("request_time", "response_time")]
_TXN = b"x-moesif-transaction-id"


class AppFailed(Exception):
    pass


class ClientGone(Exception):
    pass


chunk = st.one_of(st.binary(max_size=12), st.builds(bytearray, st.binary(max_size=8)), st.none(), st.just("text"))

behaviours = st.fixed_dictionaries(
    {
        "status": st.sampled_from([200, 404, 201, "200", None, True]),
        "headers": st.sampled_from([[(b"content-type", b"application/json")], [], None, ((b"x-a", b"1"),)]),
        "shape": st.sampled_from(
            ["whole", "parts", "no-start", "raise-before", "raise-after", "raise-mid", "pathsend", "unfinished", "cancelled"]
        ),
        "chunks": st.lists(chunk, min_size=1, max_size=3),
        "body_key": st.booleans(),
        "message_type": st.sampled_from(["dict", "mapping"]),
        "read_body": st.booleans(),
        "annotation": st.sampled_from([None, "skip", "user", "route", "metadata"]),
        "after_last": st.booleans(),
    }
)

requests = st.fixed_dictionaries(
    {
        "body": st.sampled_from([None, [b"hello"], [b"hel", b"lo world"], [b""]]),
        "client_id": st.sampled_from([None, b"client-txn-1"]),
        "send_fails": st.sampled_from([None, "start", "body"]),
    }
)

configs = st.fixed_dictionaries(
    {
        "LOG_BODY": st.booleans(),
        "LOG_BODY_MAX_BYTES": st.sampled_from([4, 1024]),
        "DISABLED_TRANSACTION_ID": st.booleans(),
        "identify": st.sampled_from([None, "value", "async", "raises"]),
        "skip": st.sampled_from([None, "no", "yes", "raises"]),
        "annotate": st.sampled_from([None, "route", "raises"]),
        "factory": st.sampled_from(["plain", "raises"]),
        "rate": st.sampled_from([100, 0, 50]),
    }
)


class Message(dict[str, Any]):
    """A message that is a mapping but not a plain dict: the C path reads it through ``get``."""


def make_app(b: dict[str, Any]) -> Callable[..., Any]:
    kind = dict if b["message_type"] == "dict" else Message

    def body_message(data: Any, more: bool) -> dict[str, Any]:
        message = kind({"type": "http.response.body", "more_body": more})
        if b["body_key"]:
            message["body"] = data
        return message

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if b["read_body"]:
            while True:
                message = await receive()
                if not message.get("more_body"):
                    break
        ann = annotations_of(scope)
        if ann is not None and b["annotation"] == "skip":
            ann.skip = True
        elif ann is not None and b["annotation"] == "user":
            ann.user_id = "user-7"
        elif ann is not None and b["annotation"] == "route":
            ann.route = "/orders/{id}"
        elif ann is not None and b["annotation"] == "metadata":
            ann.add_metadata({"plan": "gold"})
        shape = b["shape"]
        if shape == "raise-before":
            raise AppFailed("before")
        if shape == "cancelled":
            raise asyncio.CancelledError()
        if shape == "no-start":
            return
        start = kind({"type": "http.response.start"})
        if b["status"] is not None:
            start["status"] = b["status"]
        if b["headers"] is not None:
            start["headers"] = b["headers"]
        await send(start)
        if shape == "raise-after":
            raise AppFailed("after")
        if shape == "pathsend":
            await send(kind({"type": "http.response.pathsend", "path": "/tmp/x"}))
            return
        chunks = b["chunks"]
        if shape == "whole":
            await send(body_message(chunks[0], False))
        else:
            for index, data in enumerate(chunks):
                if shape == "raise-mid" and index == 1:
                    raise AppFailed("mid-stream")
                last = index == len(chunks) - 1 and shape != "unfinished"
                await send(body_message(data, not last))
        if b["after_last"]:
            await send(body_message(b"late", False))

    return app


def make_scope(r: dict[str, Any]) -> dict[str, Any]:
    headers = [(b"host", b"example.test"), (b"authorization", b"Bearer abc")]
    if r["body"] is not None:
        headers.append((b"content-length", str(sum(len(c) for c in r["body"])).encode()))
    if r["client_id"] is not None:
        headers.append((_TXN, r["client_id"]))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/orders",
        "raw_path": b"/orders",
        "query_string": b"a=1",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }


def make_settings(c: dict[str, Any]) -> dict[str, Any]:
    def identify(request: Any, response: Any) -> str:
        if c["identify"] == "raises":
            raise RuntimeError("identify failed")
        return f"user-{response.status_code}"

    async def identify_async(request: Any, response: Any) -> str:
        return "async-user"

    def skip(request: Any, response: Any) -> bool:
        if c["skip"] == "raises":
            raise RuntimeError("skip failed")
        return c["skip"] == "yes"

    settings_: dict[str, Any] = {
        "APPLICATION_ID": "parity-app",
        "BASE_URI": "http://127.0.0.1:9",
        "LOG_BODY": c["LOG_BODY"],
        "LOG_BODY_MAX_BYTES": c["LOG_BODY_MAX_BYTES"],
        "DISABLED_TRANSACTION_ID": c["DISABLED_TRANSACTION_ID"],
    }
    if c["identify"] is not None:
        settings_["IDENTIFY_USER"] = identify_async if c["identify"] == "async" else identify
    if c["skip"] is not None:
        settings_["SKIP"] = skip
    return settings_


def make_annotate(kind: str | None) -> Callable[..., None] | None:
    if kind is None:
        return None

    def annotate(scope: dict[str, Any], annotations: Any) -> None:
        if kind == "raises":
            raise RuntimeError("no route")
        if annotations.route is None:
            annotations.route = "/orders/{template}"

    return annotate


def make_factory(kind: str) -> Callable[..., Any] | None:
    if kind == "plain":
        return None

    def factory(scope: dict[str, Any]) -> Any:
        raise RuntimeError("no request object")

    return factory


def serve(native: bool, b: dict[str, Any], r: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    agent = RecordingAgent()
    agent.rate = c["rate"]
    middleware = asgi.MoesifMiddleware(
        make_app(b),
        make_settings(c),
        agent=agent,  # type: ignore[arg-type]
        annotate=make_annotate(c["annotate"]),
        request_factory=make_factory(c["factory"]),
    )
    if not native:
        middleware._native = None
    assert (middleware._native is not None) == native
    sent: list[Any] = []
    received: list[Any] = []
    pending = list(r["body"] or [])

    async def receive() -> dict[str, Any]:
        if pending:
            data = pending.pop(0)
            message = {"type": "http.request", "body": data, "more_body": bool(pending)}
        else:
            message = {"type": "http.disconnect"}
        received.append(message)
        return message

    async def send(message: Any) -> None:
        kind = message.get("type")
        if (r["send_fails"] == "start" and kind == "http.response.start") or (
            r["send_fails"] == "body" and kind == "http.response.body"
        ):
            raise ClientGone(kind)
        sent.append(_comparable_message(message, r))

    scope = make_scope(r)
    random.seed(7)  # a sampling rate of 50 draws the same numbers on both paths
    outcome: dict[str, Any] = {}
    try:
        asyncio.run(middleware(scope, receive, send))
    except (AppFailed, ClientGone, asyncio.CancelledError) as exc:
        outcome["raised"] = f"{type(exc).__name__}: {exc}"
    outcome["sent"] = sent
    outcome["received"] = received
    outcome["counts"] = dict(agent.counts)
    outcome["started_agent"] = agent.started
    outcome["annotations"] = "moesif" in scope
    outcome["records"] = [{name: _comparable(name, getattr(record, name), r) for name in _SLOTS} for record in agent.records]
    return outcome


def _comparable_message(message: Any, r: dict[str, Any]) -> Any:
    comparable = {"class": type(message).__name__, **message}
    if isinstance(message.get("headers"), list):
        comparable["headers"] = _comparable("response_headers", message["headers"], r)
    return comparable


def _name(key: Any) -> str:
    return key.lower() if isinstance(key, str) else bytes(key).decode("latin-1").lower()


def _comparable_id(value: Any, client: str | None) -> Any:
    text = value if isinstance(value, str) else bytes(value).decode("latin-1")
    return value if text == client else "generated"


def _comparable(name: str, value: Any, r: dict[str, Any]) -> Any:
    """A generated id is random: compared by whether there is one (and equal when the client sent it)."""
    client = r["client_id"].decode() if r["client_id"] is not None else None
    if name == "transaction_id":
        return value if value is None or value == client else "generated"
    if name == "response_headers" and isinstance(value, list):
        return [(k, _comparable_id(v, client)) if _name(k) == "x-moesif-transaction-id" else (k, v) for k, v in value]
    return value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=behaviours, r=requests, c=configs)
def test_the_c_path_records_what_the_python_path_records(b: dict[str, Any], r: dict[str, Any], c: dict[str, Any]) -> None:
    assert serve(True, b, r, c) == serve(False, b, r, c)


def _plain_app(body: bytes = b'{"ok":true}') -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


def _run(middleware: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


def test_a_record_is_complete_and_handed_over_once_on_the_c_path() -> None:
    agent = RecordingAgent()
    middleware = asgi.MoesifMiddleware(_plain_app(), agent.settings, agent=agent)  # type: ignore[arg-type]
    assert middleware._native is not None
    sent = _run(middleware, make_scope({"body": None, "client_id": None, "send_fails": None}))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["headers"][-1][0] == _TXN
    [record] = agent.records
    assert (record.status, record.response_body, record.response_body_size, record.weight) == (200, b'{"ok":true}', 11, 1)
    assert record.response_header_style == "asgi"
    assert record.request_time <= record.response_time
    # The app gets the C send; finishing its call again changes nothing.
    call = middleware._native(make_scope({"body": None, "client_id": None, "send_fails": None}), None, None)
    assert isinstance(call, asgi._native.Send) and call.receive is None
    call.finish()
    call.finish()
    assert len(agent.records) == 2 and agent.records[1].status == 499


def test_the_python_path_serves_what_the_c_path_does_not_take() -> None:
    agent = RecordingAgent()
    middleware = asgi.MoesifMiddleware(_plain_app(), agent.settings, agent=agent)  # type: ignore[arg-type]
    assert middleware._native is not None
    # Not an HTTP scope, or not a dict: None, the Python path decides.
    assert middleware._native({"type": "websocket"}, None, None) is None
    assert middleware._native({"type": "lifespan"}, None, None) is None
    # Not the usual config (here: sampling by identity) and governance rules served: the Python
    # path applies them.
    agent.sampling_needs_identity = True
    middleware.governor = object  # type: ignore[assignment, method-assign]
    assert middleware._native(make_scope({"body": None, "client_id": None, "send_fails": None}), None, None) is None
    # Only sampling to decide: the C path takes it.
    middleware.governor = lambda: None  # type: ignore[method-assign]
    assert middleware._native(make_scope({"body": None, "client_id": None, "send_fails": None}), None, None) is not None
    assert agent.records == []  # the call begun last is never finished: nothing handed over
    # A scope that is not a dict: begin_exchange gives the Python exchange.
    exchange, _ = middleware.begin_exchange(UserDict(make_scope({"body": None, "client_id": None, "send_fails": None})))
    assert type(exchange) is asgi.Exchange


def test_a_failing_step_of_ours_costs_a_log_line_not_the_call(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenAgent(RecordingAgent):
        def submit(self, record: RawExchange) -> bool:
            raise RuntimeError("queue broke")

    middleware = asgi.MoesifMiddleware(_plain_app(b"fine"), RecordingAgent().settings, agent=BrokenAgent())  # type: ignore[arg-type]
    assert middleware._native is not None
    with caplog.at_level("WARNING", logger="moesif"):
        sent = _run(middleware, make_scope({"body": None, "client_id": None, "send_fails": None}))
    assert sent[-1]["body"] == b"fine"
    assert "could not complete an event (RuntimeError: queue broke)" in caplog.text


def test_a_capture_is_made_once() -> None:
    agent = RecordingAgent()
    middleware = asgi.MoesifMiddleware(_plain_app(), agent.settings, agent=agent)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="initialised once"):
        middleware._native.__init__(
            middleware=middleware,
            steps=asgi,
            make_record=None,
            record_from_scope=None,
            record_type=RawExchange,
            annotations=None,
            request_cap=-1,
            with_transaction_id=True,
        )


# -- the exchange driven directly, as Falcon's ASGI component and the governance path drive it ----------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.sampled_from([200, 503, "x"]), st.sampled_from([[(b"x-a", b"1")], None])),
        st.tuples(st.just("on_response_start"), st.sampled_from([200, 404]), st.sampled_from([[(b"x-a", b"1")], []])),
        st.tuples(st.just("start_pairs"), st.sampled_from([200, 201]), st.sampled_from([[("X-A", "1")], []])),
        st.tuples(st.just("request_chunk"), st.binary(max_size=6), st.none()),
        st.tuples(st.just("chunk"), chunk, st.none()),
        st.tuples(st.just("last_chunk"), chunk, st.none()),
        st.tuples(st.just("finish"), st.sampled_from([None, "error", "cancelled"]), st.none()),
    ),
    max_size=6,
)


def drive(native: bool, script: list[tuple[Any, ...]], c: dict[str, Any], extra: bool, has_body: bool) -> dict[str, Any]:
    agent = RecordingAgent()
    agent.rate = c["rate"]
    middleware = asgi.MoesifMiddleware(
        make_app({"shape": "no-start", "read_body": False, "annotation": None, "message_type": "dict", "body_key": True}),
        make_settings(c),
        agent=agent,  # type: ignore[arg-type]
        annotate=make_annotate(c["annotate"]),
    )
    if not native:
        middleware._native = None
    scope = make_scope({"body": [b"hello"] if has_body else None, "client_id": None, "send_fails": None})
    random.seed(7)
    exchange, body = middleware.begin_exchange(scope)
    assert exchange is not None and (type(exchange) is not asgi.Exchange) == native
    if extra:
        exchange.extra_headers = [(b"x-rate-limit", b"0")]
    returned: list[Any] = [body]

    async def run() -> None:
        for name, value, headers in script:
            try:
                if name == "start":
                    message = {"type": "http.response.start", "status": value}
                    if headers is not None:
                        message["headers"] = headers
                    returned.append(_comparable_message(exchange.start(message), {"client_id": None}))
                elif name == "on_response_start":
                    message = {"type": "http.response.start", "status": value, "headers": headers}
                    sent = await exchange.on_response_start(message)
                    returned.append(_comparable_message(sent, {"client_id": None}))
                elif name == "start_pairs":
                    returned.append(exchange.start_pairs(value, headers))
                elif name == "request_chunk":
                    returned.append(exchange.keep_request_chunk(value))
                elif name == "chunk":
                    returned.append(exchange.keep_response_chunk(value))
                elif name == "last_chunk":
                    returned.append(exchange.keep_last_response_chunk(value))
                else:
                    error = {None: None, "error": AppFailed("x"), "cancelled": asyncio.CancelledError()}[value]
                    returned.append(exchange.finish(error))
            except Exception as exc:  # what each raises must be the same too
                returned.append(f"raised {type(exc).__name__}")

    asyncio.run(run())
    exchange.finish()
    return {
        "returned": returned,
        "state": (exchange.keep, exchange.done),
        "records": [{name: _comparable(name, getattr(r, name), {"client_id": None}) for name in _SLOTS} for r in agent.records],
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, c=configs, extra=st.booleans(), has_body=st.booleans())
def test_the_c_exchange_driven_directly_records_what_the_python_one_records(
    script: list[tuple[Any, ...]], c: dict[str, Any], extra: bool, has_body: bool
) -> None:
    assert drive(True, script, c, extra, has_body) == drive(False, script, c, extra, has_body)
