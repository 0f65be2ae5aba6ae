"""moesif_core.testing: the recording agent under the real middlewares, and serve() with real servers."""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from moesif_core.asgi import MoesifMiddleware as AsgiMiddleware
from moesif_core.remote_config import RemoteConfig
from moesif_core.settings import Settings
from moesif_core.testing import RecordingAgent, ServerError, free_port, moesif_environ, serve
from moesif_core.wsgi import MoesifMiddleware as WsgiMiddleware


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("201 Created", [("Content-Type", "application/json")])
    return [b'{"id": 1}']


def call_wsgi(app: Any, path: str = "/orders", method: str = "POST") -> None:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    response = app(environ, lambda status, headers, exc_info=None: None)
    b"".join(response)
    if hasattr(response, "close"):  # a skipped call gets the app's own list back
        response.close()


def test_records_what_the_wsgi_middleware_hands_over() -> None:
    agent = RecordingAgent()
    app = WsgiMiddleware(hello, agent.settings, agent=agent)
    call_wsgi(app)
    [record] = agent.records
    assert (record.method, record.path, record.status, record.response_body) == ("POST", "/orders", 201, b'{"id": 1}')
    assert agent.started
    assert agent.stats() == {}


def test_records_what_the_asgi_middleware_hands_over() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    agent = RecordingAgent()
    scope = {"type": "http", "method": "GET", "path": "/missing", "headers": [], "query_string": b"", "server": ("localhost", 80)}
    asyncio.run(AsgiMiddleware(app, agent.settings, agent=agent)(scope, receive, send))
    [record] = agent.records
    assert (record.method, record.path, record.status) == ("GET", "/missing", 404)


def test_rate_zero_counts_every_call_as_sampled_out_and_can_change_between_calls() -> None:
    agent = RecordingAgent(rate=0)
    app = WsgiMiddleware(hello, agent.settings, agent=agent)
    call_wsgi(app)
    call_wsgi(app)
    assert agent.records == []
    assert agent.counts == agent.stats() == {"sampled_out": 2}
    agent.rate = 100
    call_wsgi(app)
    assert len(agent.records) == 1


def test_skipped_calls_are_counted_not_recorded() -> None:
    agent = RecordingAgent()
    app = WsgiMiddleware(hello, {"APPLICATION_ID": "test-app", "SKIP": lambda app, environ: True}, agent=agent)
    call_wsgi(app)
    assert (agent.records, agent.counts) == ([], {"skipped": 1})


def test_a_governance_rule_in_config_applies() -> None:
    agent = RecordingAgent()
    rule = {
        "_id": "closed",
        "type": "regex",
        "block": True,
        "regex_config": [{"conditions": [{"path": "request.route", "value": "^/orders"}]}],
        "response": {"status": 503, "body": {"error": "closed"}},
    }
    agent.config = RemoteConfig.from_payloads({}, [rule], etag="1")
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    app = WsgiMiddleware(hello, agent.settings, agent=agent)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/orders",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    b"".join(app(environ, start_response))
    assert [status[:3] for status in statuses] == ["503"]
    [record] = agent.records
    assert record.blocked_by == "closed"


def test_lifecycle_and_entities_are_recorded_in_order() -> None:
    agent = RecordingAgent()
    assert agent.flush(1.0) is True
    assert agent.submit_entity("users", {"user_id": "u1"}) is True
    assert agent.close(1.0) is True
    assert agent.calls == ["flush", "entity:users", "close"]
    assert agent.entities == [("users", {"user_id": "u1"})]
    assert agent.flushes == 1


def test_default_settings_ignore_the_environment_and_point_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOESIF_APPLICATION_ID", "from-the-shell")
    agent = RecordingAgent()
    assert agent.settings.application_id == "test-app"
    assert agent.settings.base_uri.startswith("http://127.0.0.1:")
    assert RecordingAgent({"APPLICATION_ID": "mine", "LOG_BODY": False}).settings.log_body is False


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_moesif_environ_carries_settings_that_resolve_back_to_the_same() -> None:
    settings = {
        "APPLICATION_ID": "test-app",
        "EVENT_BATCH_TIMEOUT": 0.05,
        "LOG_BODY": False,
        "REQUEST_HEADER_MASKS": ["X-Key", "X-Other"],
    }
    environ = moesif_environ(settings)
    assert environ["MOESIF_LOG_BODY"] == "false"
    assert environ["MOESIF_REQUEST_HEADER_MASKS"] == "X-Key,X-Other"
    assert Settings.resolve(environ={**environ, "MOESIF_BASE_URI": "http://127.0.0.1:9"}) == Settings.resolve(
        {**settings, "BASE_URI": "http://127.0.0.1:9"}, environ={}
    )
    with pytest.raises(TypeError, match="IDENTIFY_USER is a callable"):
        moesif_environ({"IDENTIFY_USER": lambda *a: None})


def http_server_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def test_serve_yields_a_listening_server_and_stops_it_after(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi")
    port = free_port()
    with serve(http_server_argv(port), port=port, cwd=tmp_path) as server:
        assert server.url == f"http://127.0.0.1:{port}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/hello.txt")
        assert conn.getresponse().read() == b"hi"
        conn.close()
        process = server.process
    assert process.returncode is not None  # SIGTERM on leaving the block


def test_serve_passes_env_on_top_of_the_current_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_PARENT", "kept")
    script = tmp_path / "envserver.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, socket, sys
            sock = socket.socket()
            sock.bind(("127.0.0.1", int(sys.argv[1])))
            sock.listen()
            print(os.environ["FROM_PARENT"], os.environ["ADDED"], flush=True)
            while True:
                sock.accept()[0].close()
            """
        )
    )
    port = free_port()
    with serve([sys.executable, str(script), str(port)], port=port, env={"ADDED": "yes"}) as server:
        assert server.stop() == -signal.SIGTERM
        assert server.output().split() == ["kept", "yes"]


def test_a_server_that_exits_before_listening_fails_with_its_output() -> None:
    port = free_port()
    with (
        pytest.raises(ServerError, match=r"exited with code 3 before listening(.|\n)*it broke"),
        serve([sys.executable, "-c", "import sys; print('it broke'); sys.exit(3)"], port=port),
    ):
        pass


def test_a_server_that_never_listens_is_killed_and_fails() -> None:
    port = free_port()
    argv = [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(600)"]
    with (
        pytest.raises(ServerError, match=r"not listening on port \d+ after 1s(.|\n)*starting"),
        serve(argv, port=port, ready_timeout=1),
    ):
        pass


def test_stop_kills_a_server_that_ignores_its_signal_and_fails(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, socket, sys, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            sock = socket.socket()
            sock.bind(("127.0.0.1", int(sys.argv[1])))
            sock.listen()
            time.sleep(600)
            """
        )
    )
    port = free_port()
    with serve([sys.executable, str(script), str(port)], port=port, stop_timeout=1) as server:
        with pytest.raises(ServerError, match="did not stop"):
            server.stop(timeout=0.5)
        assert server.process.returncode == -signal.SIGKILL


def test_leaving_the_block_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, socket, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sock = socket.socket()\nsock.bind(('127.0.0.1', int(sys.argv[1])))\nsock.listen()\ntime.sleep(600)\n"
    )
    port = free_port()
    with serve([sys.executable, str(script), str(port)], port=port, stop_timeout=0.5) as server:
        process = server.process
    assert process.returncode == -signal.SIGKILL


def test_make_jwt_carries_claims_the_middleware_reads() -> None:
    from moesif_core.identify import identify_from_headers
    from moesif_core.settings import Settings
    from moesif_core.testing import make_jwt

    settings = Settings.resolve({"APPLICATION_ID": "a", "AUTHORIZATION_COMPANY_ID_FIELD": "org.id"}, environ={})
    token = make_jwt({"sub": "user-7", "org": {"id": "acme"}})
    assert identify_from_headers({"authorization": f"Bearer {token}"}, settings) == ("user-7", "acme")
