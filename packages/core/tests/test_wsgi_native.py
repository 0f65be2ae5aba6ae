"""The WSGI request path in C (``_wsgi_exchange.c``) records what the Python one records, call for call.

Each generated call (an app's way of answering, the request's body headers, the settings, the
callbacks, the sampling rate) is served twice, once by a middleware on each path, and everything
is compared: what the server got, what the app saw, the record slot by slot, the counters and
what was raised.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moesif_core import wsgi
from moesif_core.annotations import annotations_of
from moesif_core.record import RawExchange
from moesif_core.testing import RecordingAgent

pytestmark = pytest.mark.skipif(not wsgi.NATIVE, reason="moesif_core._wsgi_exchange is not built")

_SLOTS = [name for name in RawExchange.__slots__ if name not in ("request_time", "response_time")]


class AppFailed(Exception):
    pass


class Stream:
    """A response iterable with a close(), as many frameworks return."""

    def __init__(self, chunks: list[Any], fail_at: int | None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise AppFailed("mid-stream")
            yield chunk

    def close(self) -> None:
        self.closed = True


chunk = st.one_of(st.binary(max_size=40), st.text(max_size=5), st.builds(bytearray, st.binary(max_size=8)), st.none())
# One chunk is the usual body (kept without a tee): empty, within the cap of 4 and over it.
chunks = st.one_of(st.sampled_from([[b""], [b"abc"], [b"abcdef"]]), st.lists(chunk, max_size=3))

behaviours = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["200 OK", "404 Not Found", "201 Created", "20 short", "abc", "", 200, None]),
        "headers": st.sampled_from([[("Content-Type", "application/json")], [], (("X-A", "1"),)]),
        "shape": st.sampled_from(["list", "tuple", "generator", "stream", "no-start", "raise-before", "raise-after"]),
        "chunks": chunks,
        "fail_at": st.one_of(st.none(), st.integers(0, 2)),
        "exc_info": st.booleans(),
        "read_body": st.booleans(),
        "annotation": st.sampled_from([None, "skip", "user", "route", "metadata"]),
    }
)

requests = st.fixed_dictionaries(
    {
        "length": st.sampled_from([None, "", "0", "5", "x", 7]),
        "coding": st.sampled_from([None, "", "chunked", "gzip, CHUNKED", "gzip"]),
        "client_id": st.sampled_from([None, "client-txn-1"]),
        "input": st.booleans(),
    }
)

configs = st.fixed_dictionaries(
    {
        "LOG_BODY": st.booleans(),
        "LOG_BODY_MAX_BYTES": st.sampled_from([4, 1024]),
        "DISABLED_TRANSACTION_ID": st.booleans(),
        "identify": st.sampled_from([None, "value", "raises"]),
        "skip": st.sampled_from([None, "no", "yes", "raises"]),
        "annotate": st.sampled_from([None, "route", "raises"]),
        "rate": st.sampled_from([100, 0, 50]),
    }
)


def make_app(b: dict[str, Any]) -> Callable[..., Iterable[Any]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[Any]:
        if b["read_body"] and "wsgi.input" in environ:
            environ["wsgi.input"].read()
        ann = annotations_of(environ)
        if ann is not None and b["annotation"] == "skip":
            ann.skip = True
        elif ann is not None and b["annotation"] == "user":
            ann.user_id = "user-7"
        elif ann is not None and b["annotation"] == "metadata":
            ann.add_metadata({"plan": "gold"})
        shape = b["shape"]
        if shape == "raise-before":
            raise AppFailed("before")
        if shape != "no-start":
            if b["exc_info"]:
                start_response(b["status"], b["headers"], None)
            else:
                start_response(b["status"], b["headers"])
        if shape == "raise-after":
            raise AppFailed("after")
        if shape == "tuple":
            return tuple(b["chunks"])
        if shape == "generator":
            return (chunk for chunk in b["chunks"])
        if shape == "stream":
            return Stream(list(b["chunks"]), b["fail_at"])
        return list(b["chunks"])

    return app


def make_environ(r: dict[str, Any]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "a=1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "example.test",
        "HTTP_AUTHORIZATION": "Bearer abc",
        "wsgi.url_scheme": "http",
    }
    if r["input"]:
        environ["wsgi.input"] = io.BytesIO(b"hello")
    if r["length"] is not None:
        environ["CONTENT_LENGTH"] = r["length"]
    if r["coding"] is not None:
        environ["HTTP_TRANSFER_ENCODING"] = r["coding"]
    if r["client_id"] is not None:
        environ["HTTP_X_MOESIF_TRANSACTION_ID"] = r["client_id"]
    return environ


def make_settings(c: dict[str, Any]) -> dict[str, Any]:
    def identify(app: Any, environ: Any, headers: Any) -> str:
        if c["identify"] == "raises":
            raise RuntimeError("identify failed")
        return "from-callback"

    def skip(app: Any, environ: Any) -> bool:
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
        settings_["IDENTIFY_USER"] = identify
    if c["skip"] is not None:
        settings_["SKIP"] = skip
    return settings_


def make_annotate(kind: str | None) -> Callable[..., None] | None:
    if kind is None:
        return None

    def annotate(environ: dict[str, Any], annotations: Any) -> None:
        if kind == "raises":
            raise RuntimeError("no route")
        annotations.route = "/orders/{id}"

    return annotate


def serve(native: bool, b: dict[str, Any], r: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    agent = RecordingAgent()
    agent.rate = c["rate"]
    middleware = wsgi.MoesifMiddleware(make_app(b), make_settings(c), agent=agent, annotate=make_annotate(c["annotate"]))  # type: ignore[arg-type]
    if not native:
        middleware._native = None
    assert (middleware._native is not None) == native
    started: list[Any] = []

    def start_response(status: Any, headers: Any, *exc_info: Any) -> Callable[[bytes], None]:
        started.append(
            (
                status,
                [(k, _comparable("transaction_id", v, r) if k == "X-Moesif-Transaction-Id" else v) for k, v in headers],
                exc_info,
            )
        )
        return lambda data: None

    environ = make_environ(r)
    random.seed(7)  # a sampling rate of 50 draws the same numbers on both paths
    outcome: dict[str, Any] = {}
    result: Any = None
    try:
        result = middleware(environ, start_response)
        body = []
        for chunk in result:
            body.append(chunk)
        outcome["body"] = body
    except AppFailed as exc:
        outcome["raised"] = str(exc)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    outcome["started"] = started
    outcome["returned"] = type(result).__name__ if not isinstance(result, wsgi.ResponseTee) else "ResponseTee"
    outcome["counts"] = dict(agent.counts)
    outcome["started_agent"] = agent.started
    outcome["annotations"] = "moesif" in environ
    outcome["input"] = type(environ.get("wsgi.input")).__name__
    outcome["records"] = [{name: _comparable(name, getattr(record, name), r) for name in _SLOTS} for record in agent.records]
    return outcome


def _comparable(name: str, value: Any, r: dict[str, Any]) -> Any:
    """A generated id is random: compared by whether there is one (and equal when the client sent it)."""
    if name == "transaction_id":
        return value if value is None or value == r["client_id"] else "generated"
    if name == "response_headers" and isinstance(value, list):
        return [(k, _comparable("transaction_id", v, r) if k == "X-Moesif-Transaction-Id" else v) for k, v in value]
    return value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=behaviours, r=requests, c=configs)
def test_the_c_path_records_what_the_python_path_records(b: dict[str, Any], r: dict[str, Any], c: dict[str, Any]) -> None:
    assert serve(True, b, r, c) == serve(False, b, r, c)


def test_a_record_is_complete_and_handed_over_once_on_the_c_path() -> None:
    agent = RecordingAgent()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok":true}']

    middleware = wsgi.MoesifMiddleware(app, {"APPLICATION_ID": "parity-app", "BASE_URI": "http://127.0.0.1:9"}, agent=agent)  # type: ignore[arg-type]
    assert middleware._native is not None
    environ = make_environ({"length": None, "coding": None, "client_id": None, "input": False})
    assert middleware(environ, lambda status, headers, exc_info=None: None) == [b'{"ok":true}']
    [record] = agent.records
    assert (record.status, record.response_body, record.response_body_size, record.weight) == (200, b'{"ok":true}', 11, 1)
    assert record.response_headers[-1][0] == "X-Moesif-Transaction-Id"
    assert record.request_time <= record.response_time
    exchange = middleware.begin_exchange(make_environ({"length": None, "coding": None, "client_id": None, "input": False}))
    assert exchange is not None and isinstance(exchange, wsgi.EXCHANGE_TYPES)
    exchange.respond(204, [])
    exchange.finish()
    exchange.finish()
    assert len(agent.records) == 2


def test_a_failing_step_of_ours_costs_a_log_line_not_the_call(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenAgent(RecordingAgent):
        def submit(self, record: RawExchange) -> bool:
            raise RuntimeError("queue broke")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        return [b"fine"]

    middleware = wsgi.MoesifMiddleware(
        app, {"APPLICATION_ID": "parity-app", "BASE_URI": "http://127.0.0.1:9"}, agent=BrokenAgent()
    )  # type: ignore[arg-type]
    assert middleware._native is not None
    with caplog.at_level("WARNING", logger="moesif"):
        assert middleware(make_environ({"length": None, "coding": None, "client_id": None, "input": False}), lambda *a: None) == [
            b"fine"
        ]
    assert "could not complete an event (RuntimeError: queue broke)" in caplog.text


def test_a_capture_is_made_once() -> None:
    agent = RecordingAgent()
    middleware = wsgi.MoesifMiddleware(lambda environ, start_response: [], agent.settings, agent=agent)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="initialised once"):
        middleware._native.__init__(
            middleware=middleware,
            steps=wsgi,
            make_record=None,
            record_from_environ=None,
            record_type=RawExchange,
            annotations=None,
            skip=None,
            request_cap=-1,
            with_transaction_id=True,
        )
