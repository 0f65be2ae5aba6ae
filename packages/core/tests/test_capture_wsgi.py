"""The WSGI capture layer, under real Flask and raw WSGI apps: what it records and what it leaves alone."""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from werkzeug.test import Client

from moesif_core.annotations import annotations_of
from moesif_core.wsgi import MoesifMiddleware

# Every test here runs on the C request path and on the Python one (see conftest.wsgi_request_path).
pytestmark = pytest.mark.usefixtures("wsgi_request_path")


def make(app: Any, agent: Any, **settings: Any) -> MoesifMiddleware:
    middleware = MoesifMiddleware(app, {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9", **settings}, agent=agent)
    agent.settings = middleware.settings
    return middleware


@pytest.fixture
def flask_app() -> flask.Flask:
    app = flask.Flask("capture")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return {"id": item_id, "name": "widget"}

    @app.post("/echo")
    def echo() -> Any:
        data = flask.request.get_data()
        return flask.Response(data, content_type=flask.request.content_type or "application/octet-stream")

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("view failed")

    return app


def test_json_get_records_request_and_response(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    response = flask_app.test_client().get(
        "/items/7?full=1", headers={"Authorization": "Bearer x.y.z", "X-Forwarded-For": "1.2.3.4"}
    )
    assert response.json == {"id": 7, "name": "widget"}
    [record] = recording_agent.records
    assert (record.method, record.path, record.query_string, record.status) == ("GET", "/items/7", "full=1", 200)
    assert record.host == "localhost"
    headers = dict(record.request_headers)
    assert headers["HTTP_AUTHORIZATION"] == "Bearer x.y.z"
    assert headers["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    assert record.response_body == b'{"id":7,"name":"widget"}\n'
    assert record.request_body is None
    assert record.request_time <= record.response_time


def test_transaction_id_is_returned_to_the_client_and_recorded(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    client = flask_app.test_client()
    fresh = client.get("/items/1")
    fresh.close()  # as a server does once the body went out: that completes the event
    given = client.get("/items/1", headers={"X-Moesif-Transaction-Id": "abc-123"})
    given.close()
    assert fresh.headers["X-Moesif-Transaction-Id"] == recording_agent.records[0].transaction_id
    parsed = uuid.UUID(recording_agent.records[0].transaction_id)
    assert parsed.version == 4 and str(parsed) == recording_agent.records[0].transaction_id
    assert given.headers["X-Moesif-Transaction-Id"] == "abc-123" == recording_agent.records[1].transaction_id


def test_disabled_transaction_id_adds_no_header(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent, DISABLED_TRANSACTION_ID=True)  # type: ignore[method-assign]
    response = flask_app.test_client().get("/items/1")
    response.close()
    assert "X-Moesif-Transaction-Id" not in response.headers
    assert recording_agent.records[0].transaction_id is None


def test_large_body_is_cut_but_the_app_reads_all_of_it(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    body = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    response = flask_app.test_client().post("/echo", data=body, content_type="application/octet-stream")
    assert response.data == body  # the app got, and echoed, every byte
    [record] = recording_agent.records
    cap = recording_agent.settings.log_body_max_bytes
    assert record.request_body == body[:cap]
    assert record.request_body_size == len(body)
    assert record.request_body_truncated
    assert record.response_body == body[:cap]
    assert record.response_body_size == len(body)
    assert record.response_body_truncated


def test_small_body_is_kept_whole(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    flask_app.test_client().post("/echo", json={"a": 1}).close()
    [record] = recording_agent.records
    assert record.request_body == b'{"a": 1}'
    assert not record.request_body_truncated
    assert not record.response_body_truncated


def test_chunked_request_without_content_length_stays_readable(recording_agent: Any) -> None:
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        assert "CONTENT_LENGTH" not in environ
        stream = environ["wsgi.input"]
        data = b"".join(iter(lambda: stream.read(3), b""))
        seen.append(data)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"got " + data]

    middleware = make(app, recording_agent)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/upload",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b"hello chunked world"),
        "wsgi.input_terminated": True,
        "HTTP_TRANSFER_ENCODING": "chunked",
    }
    statuses: list[str] = []
    body = b"".join(middleware(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert body == b"got hello chunked world"
    assert seen == [b"hello chunked world"]
    [record] = recording_agent.records
    assert record.request_body == b"hello chunked world"
    assert record.host == "localhost:80"


def test_streamed_response_is_not_consumed_ahead_of_the_server(recording_agent: Any) -> None:
    produced: list[int] = []
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def stream() -> Iterator[bytes]:
            for i in range(3):
                produced.append(i)
                yield f"data: {i}\n\n".encode()
                if i == 0:
                    release.wait(5)

        return stream()

    middleware = make(app, recording_agent)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/sse",
        "HTTP_HOST": "api.test",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
    }
    response = middleware(environ, lambda *a: None)
    chunks = iter(response)
    assert next(chunks) == b"data: 0\n\n"
    # The first chunk reached the server while the generator is still suspended before the second.
    assert produced == [0]
    assert recording_agent.records == []
    release.set()
    rest = list(chunks)
    assert rest == [b"data: 1\n\n", b"data: 2\n\n"]
    response.close()  # type: ignore[attr-defined]
    [record] = recording_agent.records
    assert record.response_body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_event_completes_once_when_the_client_disconnects_mid_stream(recording_agent: Any) -> None:
    closed: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])

        def stream() -> Iterator[bytes]:
            try:
                while True:
                    yield b"tick"
            finally:
                closed.append(True)

        return stream()

    middleware = make(app, recording_agent)
    response = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/ticks", "wsgi.input": io.BytesIO()}, lambda *a: None)
    it = iter(response)
    next(it)
    next(it)
    response.close()  # type: ignore[attr-defined]  # the server closes when the client goes away
    response.close()  # type: ignore[attr-defined]
    assert closed == [True]
    [record] = recording_agent.records
    assert record.response_body == b"ticktick"
    assert record.status == 200


def test_app_raising_records_500_and_propagates(recording_agent: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        raise ValueError("broken app")

    middleware = make(app, recording_agent)
    with pytest.raises(ValueError, match="broken app"):
        middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "wsgi.input": io.BytesIO()}, lambda *a: None)
    [record] = recording_agent.records
    assert record.status == 500
    assert record.error == "ValueError"


def test_flask_view_raising_is_recorded_as_500(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    response = flask_app.test_client().get("/boom")
    assert response.status_code == 500
    response.close()
    assert recording_agent.records[0].status == 500


def test_raising_callbacks_do_not_fail_the_request(
    flask_app: flask.Flask, recording_agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("nope")

    flask_app.wsgi_app = make(
        flask_app.wsgi_app,
        recording_agent,
        IDENTIFY_USER=broken,
        IDENTIFY_COMPANY=broken,
        GET_METADATA=broken,
        GET_SESSION_TOKEN=broken,
        SKIP=broken,
    )  # type: ignore[method-assign]
    client = flask_app.test_client()
    with caplog.at_level(logging.WARNING, logger="moesif"):
        assert client.get("/items/3").data
        assert client.get("/items/4").data
    assert len(recording_agent.records) == 2
    assert recording_agent.records[0].user_id is None
    warnings = [r for r in caplog.records if "IDENTIFY_USER raised" in r.getMessage()]
    assert len(warnings) == 1  # once per kind, not once per request


def test_callbacks_get_the_incumbent_arguments_inside_the_request_context(flask_app: flask.Flask, recording_agent: Any) -> None:
    calls: list[tuple[str, Any]] = []

    def identify_user(app: Any, environ: dict[str, Any], response_headers: Any) -> str:
        calls.append(("user", dict(response_headers)["Content-Type"]))
        return str(flask.request.headers.get("X-User"))

    def identify_company(app: Any, environ: dict[str, Any], response_headers: Any) -> str:
        return "acme"

    def metadata(app: Any, environ: dict[str, Any]) -> dict[str, Any]:
        return {"path": environ["PATH_INFO"]}

    flask_app.wsgi_app = make(
        flask_app.wsgi_app,
        recording_agent,
        IDENTIFY_USER=identify_user,
        IDENTIFY_COMPANY=identify_company,
        GET_METADATA=metadata,
        GET_SESSION_TOKEN=lambda app, environ: "sess-1",
    )  # type: ignore[method-assign]
    flask_app.test_client().get("/items/5", headers={"X-User": "u-42"}).close()
    [record] = recording_agent.records
    assert (record.user_id, record.company_id, record.session_token) == ("u-42", "acme", "sess-1")
    assert record.metadata == {"path": "/items/5"}
    assert calls == [("user", "application/json")]


def test_skip_callback_and_annotations_drop_the_call(flask_app: flask.Flask, recording_agent: Any) -> None:
    skip = lambda app, environ: environ["PATH_INFO"] == "/items/1"  # noqa: E731

    @flask_app.get("/quiet")
    def quiet() -> str:
        ann = annotations_of(flask.request.environ)
        assert ann is not None
        ann.skip = True
        return "shh"

    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent, SKIP=skip)  # type: ignore[method-assign]
    client = flask_app.test_client()
    assert client.get("/items/1").data
    assert client.get("/quiet").data == b"shh"
    assert client.get("/items/2").data
    assert [r.path for r in recording_agent.records] == ["/items/2"]
    assert recording_agent.counts["skipped"] == 2


def test_sampled_out_calls_are_counted_and_not_submitted(flask_app: flask.Flask, recording_agent: Any) -> None:
    recording_agent.rate = 0
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    assert flask_app.test_client().get("/items/1").json == {"id": 1, "name": "widget"}
    assert recording_agent.records == []
    assert recording_agent.counts["sampled_out"] == 1


def test_sampling_rate_sets_weight(flask_app: flask.Flask, recording_agent: Any) -> None:
    recording_agent.rate = 100
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    client = flask_app.test_client()
    client.get("/items/1").close()
    assert recording_agent.records[-1].weight == 1


def test_script_name_is_kept_as_the_mount_point(recording_agent: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    middleware = make(app, recording_agent)
    Client(middleware).get("/v1/users", base_url="http://localhost/api").close()
    [record] = recording_agent.records
    assert (record.root_path, record.path, record.status) == ("/api", "/v1/users", 204)


def test_log_body_false_records_no_bodies(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent, LOG_BODY=False)  # type: ignore[method-assign]
    flask_app.test_client().post("/echo", json={"a": 1}).close()
    [record] = recording_agent.records
    assert record.request_body is None and record.response_body is None


def test_binary_body_is_recorded_as_bytes(flask_app: flask.Flask, recording_agent: Any) -> None:
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent)  # type: ignore[method-assign]
    payload = bytes([0, 159, 146, 150, 255, 1])
    assert flask_app.test_client().post("/echo", data=payload, content_type="application/octet-stream").data == payload
    assert recording_agent.records[0].request_body == payload


def test_annotations_survive_an_app_that_raises_before_responding(recording_agent: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        ann = annotations_of(environ)
        assert ann is not None
        ann.route = "/orders/{id}"
        ann.user_id = "u-9"
        raise RuntimeError("after routing")

    with pytest.raises(RuntimeError):
        make(app, recording_agent)(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders/3", "wsgi.input": io.BytesIO()}, lambda *a: None
        )
    [record] = recording_agent.records
    assert (record.status, record.route, record.user_id) == (500, "/orders/{id}", "u-9")


def test_an_id_whose_str_raises_never_costs_the_response_its_transaction_header(
    flask_app: flask.Flask, recording_agent: Any
) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no text for you")

    recording_agent.sampling_needs_identity = True  # as when the served config has per-user rates
    flask_app.wsgi_app = make(flask_app.wsgi_app, recording_agent, IDENTIFY_USER=lambda app, environ, headers: Hostile())  # type: ignore[method-assign]
    response = flask_app.test_client().get("/items/1")
    assert response.json == {"id": 1, "name": "widget"}
    assert response.headers["X-Moesif-Transaction-Id"]
    assert len(recording_agent.records) == 1


def test_a_queued_record_keeps_no_server_object_alive(recording_agent: Any) -> None:
    # A record may wait in the queue while the collector is down: it must hold the headers, not
    # the server's socket, input stream or connection, which its byte estimate does not count.
    import gc
    import weakref

    class Connection:
        pass

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    connection = Connection()
    alive = weakref.ref(connection)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "HTTP_HOST": "example.com",
        "HTTP_X_TRACE": "t-1",
        "wsgi.input": io.BytesIO(b"x" * 1000),
        "server.connection": connection,
    }
    list(make(app, recording_agent)(environ, lambda *a: None))
    del environ, connection
    gc.collect()
    [record] = recording_agent.records
    assert alive() is None
    assert all(type(value) is str for value in record.request_headers.values())
    assert {"HTTP_HOST": "example.com", "HTTP_X_TRACE": "t-1"}.items() <= record.request_headers.items()


def test_a_list_body_is_the_apps_own_and_the_call_is_complete_when_the_app_returns(recording_agent: Any) -> None:
    body = [b"ab", b"", b"cde"]

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    middleware = make(app, recording_agent, LOG_BODY_MAX_BYTES=4)
    result = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "wsgi.input": io.BytesIO()}, lambda *a: None)
    assert result is body  # the server gets the app's list: no tee to pull it through
    [record] = recording_agent.records
    assert (record.status, record.response_body, record.response_body_size, record.response_body_truncated) == (
        200,
        b"abcd",
        5,
        True,
    )


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ([b"abcdef"], (b"abcd", 6, True)),  # one chunk: kept as it is, no tee
        ([b"abc"], (b"abc", 3, False)),
        ([b"ab", b"cdef"], (b"abcd", 6, True)),
        ([], (None, 0, False)),
        (("stream", [b"ab", b"cdef"]), (b"abcd", 6, True)),  # a stream: teed chunk by chunk
        (("stream", [b"abcdef"]), (b"abcd", 6, True)),  # a first chunk over the cap is teed at once
        (("stream", [b"abc"]), (b"abc", 3, False)),  # a lone chunk within the cap: kept as it is
        (("stream", [b"ab", b"", b"cd"]), (b"abcd", 4, False)),
        (("stream", []), (None, 0, False)),
    ],
)
def test_a_body_is_recorded_alike_whatever_shape_the_app_gives_it(
    recording_agent: Any, shape: Any, expected: tuple[bytes | None, int, bool]
) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter(shape[1]) if isinstance(shape, tuple) else shape  # ("stream", chunks): an iterator

    middleware = make(app, recording_agent, LOG_BODY_MAX_BYTES=4)
    result = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "wsgi.input": io.BytesIO()}, lambda *a: None)
    sent = b"".join(result)  # as a server pulls it
    getattr(result, "close", lambda: None)()
    assert sent == b"abcdef"[: expected[1]]
    [record] = recording_agent.records
    assert (record.response_body, record.response_body_size, record.response_body_truncated) == expected


@pytest.mark.parametrize("ending", ["close", "raise"])
def test_a_first_chunk_held_back_from_the_tee_is_recorded_however_the_stream_ends(recording_agent: Any, ending: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])

        def stream() -> Iterator[bytes]:
            yield b"first"
            if ending == "raise":
                raise RuntimeError("stream broke")
            yield b"never pulled"

        return stream()

    middleware = make(app, recording_agent)
    response = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/s", "wsgi.input": io.BytesIO()}, lambda *a: None)
    it = iter(response)
    assert next(it) == b"first"
    if ending == "raise":
        with pytest.raises(RuntimeError):
            next(it)
    response.close()  # type: ignore[attr-defined]
    [record] = recording_agent.records
    assert (record.response_body, record.response_body_size) == (b"first", 5)
    assert record.error == ("RuntimeError" if ending == "raise" else None)


def test_a_file_wrapper_goes_to_the_server_as_it_is_and_the_call_is_logged_without_its_body(recording_agent: Any) -> None:
    class FileWrapper:
        def __init__(self, file: Any, block_size: int = 8192) -> None:
            self.file = file

        def __iter__(self) -> Iterator[bytes]:
            return iter(lambda: self.file.read(4), b"")

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file contents"))

    middleware = make(app, recording_agent)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/f", "wsgi.input": io.BytesIO(), "wsgi.file_wrapper": FileWrapper}
    result = middleware(environ, lambda *a: None)
    assert isinstance(result, FileWrapper)  # sendfile stays possible
    [record] = recording_agent.records
    assert (record.status, record.response_body, record.response_body_size) == (200, None, 0)
    assert b"".join(result) == b"file contents"


def test_the_served_config_decides_with_the_real_agent() -> None:
    """``Agent.plain_config`` follows the served config: a rate below 100 or a rule is applied, not skipped."""
    from moesif_core.agent import Agent
    from moesif_core.remote_config import RemoteConfig
    from moesif_core.settings import Settings
    from moesif_core.testing import governance_rule

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    agent = Agent(
        Settings.resolve({"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}, environ={}), user_agent="test"
    )
    agent.ensure_started = lambda: None  # type: ignore[method-assign]  # no config poll: configs are installed below
    try:
        middleware = MoesifMiddleware(app, agent.settings, agent=agent)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders", "HTTP_HOST": "h"}
        statuses: list[str] = []
        assert agent.plain_config
        agent._install_config(RemoteConfig.from_payloads({"sample_rate": 0}, [], "1"))
        assert not agent.plain_config
        assert middleware(dict(environ), lambda status, headers, exc_info=None: statuses.append(status)) == [b"ok"]
        assert agent.stats().get("sampled_out") == 1
        rule = governance_rule("closed", groups=[[("request.route", "^/orders")]], status=503, body={"error": "closed"})
        agent._install_config(RemoteConfig.from_payloads({}, [rule], "2"))
        assert not agent.plain_config
        middleware(dict(environ), lambda status, headers, exc_info=None: statuses.append(status))
        agent._install_config(RemoteConfig.from_payloads({}, [], "3"))
        assert agent.plain_config
        middleware(dict(environ), lambda status, headers, exc_info=None: statuses.append(status))
        assert [status[:3] for status in statuses] == ["200", "503", "200"]
    finally:
        agent.close(0)
