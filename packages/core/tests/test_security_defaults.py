"""Safe by default: credentials never leave masked-out, never reach the logs, nothing listens beyond
loopback, and the Collector API's certificate is verified.

Every test runs a real app (Flask through ``moesif_core.wsgi``, FastAPI through ``moesif_core.asgi``)
with the real agent and event builder against the local collector on 127.0.0.1, and looks at what
the collector stored, byte for byte, and at every log record the ``moesif`` logger produced.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response

from moesif_core.asgi import MoesifMiddleware as AsgiMiddleware
from moesif_core.collector import LocalCollector
from moesif_core.transport import TransportError
from moesif_core.wsgi import MoesifMiddleware as WsgiMiddleware

APP_ID = "moesif-app-id-7f3a9c2e51d84b06a1e2"  # long enough that a leak of it in full is unambiguous
FAST: dict[str, Any] = {
    "EVENT_BATCH_TIMEOUT": 0.05,
    "RETRY_BACKOFF": 0.02,
    "RETRY_BACKOFF_MAX": 0.1,
    "HTTP_CONNECT_TIMEOUT": 1.0,
    "HTTP_READ_TIMEOUT": 2.0,
    "CONFIG_REFRESH_INTERVAL": 3600.0,
}

# Every credential value sent; none of them may appear in a stored event or a log line.
JWT_CLAIMS = {"sub": "user-42", "scope": "admin"}
JWT = "eyJhbGciOiJIUzI1NiJ9." + base64.urlsafe_b64encode(json.dumps(JWT_CLAIMS).encode()).rstrip(b"=").decode() + ".c2lnbmF0dXJl"
SECRETS = {
    "authorization": f"Bearer {JWT}",
    "proxy-authorization": "Basic cHJveHk6cHJveHktcGFzc3dvcmQtOTk=",
    "cookie": "session=cookie-secret-1a2b3c",
    "x-api-key": "api-key-secret-4d5e6f",
    "set-cookie": "session=set-cookie-secret-7g8h9i; HttpOnly",
    "password": "json-password-secret-11",
    "token": "json-token-secret-22",
    "secret": "json-nested-secret-33",
    "form-password": "form-password-secret-44",
    "form-token": "form-token-secret-55",
    "response-secret": "response-client-secret-66",
}
# What must not leak: the values themselves, and the signature/payload parts of the JWT.
FORBIDDEN = [
    *(v for k, v in SECRETS.items() if k not in ("authorization", "proxy-authorization", "cookie", "set-cookie")),
    JWT,
    JWT.split(".")[1],
    "c2lnbmF0dXJl",
    "cHJveHk6cHJveHktcGFzc3dvcmQtOTk",
    "cookie-secret-1a2b3c",
    "set-cookie-secret-7g8h9i",
]


def request_headers() -> dict[str, str]:
    return {
        "Authorization": SECRETS["authorization"],
        "Proxy-Authorization": SECRETS["proxy-authorization"],
        "Cookie": SECRETS["cookie"],
        "X-Api-Key": SECRETS["x-api-key"],
    }


def json_body() -> dict[str, Any]:
    return {
        "user": "ann",
        "password": SECRETS["password"],
        "auth": {"token": SECRETS["token"], "deeper": [{"secret": SECRETS["secret"]}]},
    }


def form_body() -> str:
    return f"user=ann&password={SECRETS['form-password']}&token={SECRETS['form-token']}"


def flask_app() -> flask.Flask:
    app = flask.Flask("security")

    @app.post("/login")
    def login() -> flask.Response:
        flask.request.get_json()  # the capture keeps what the app reads, never reads ahead
        response = flask.jsonify({"ok": True, "client_secret": SECRETS["response-secret"]})
        response.headers["Set-Cookie"] = SECRETS["set-cookie"]
        return response

    @app.post("/form")
    def form() -> Any:
        return {"fields": sorted(flask.request.form)}

    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/login")
    async def login(request: Request) -> Response:
        await request.body()
        body = json.dumps({"ok": True, "client_secret": SECRETS["response-secret"]})
        return Response(body, media_type="application/json", headers={"Set-Cookie": SECRETS["set-cookie"]})

    @app.post("/form")
    async def form(request: Request) -> dict[str, Any]:
        return {"size": len(await request.body())}

    return app


def drive(flavour: str, settings: dict[str, Any]) -> Any:
    """Serve the two credential-laden calls through ``flavour`` under the middleware; returns the middleware."""
    if flavour == "flask":
        app = flask_app()
        middleware: Any = WsgiMiddleware(app.wsgi_app, settings)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        transport: Any = httpx.WSGITransport(app=app)
        client = httpx.Client(transport=transport, base_url="http://app.test")
        with client:
            assert client.post("/login", json=json_body(), headers=request_headers()).status_code == 200
            assert (
                client.post(
                    "/form",
                    content=form_body(),
                    headers={**request_headers(), "Content-Type": "application/x-www-form-urlencoded"},
                ).status_code
                == 200
            )
        return middleware
    middleware = AsgiMiddleware(fastapi_app(), settings=settings)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://app.test") as client:
            assert (await client.post("/login", json=json_body(), headers=request_headers())).status_code == 200
            form_headers = {**request_headers(), "Content-Type": "application/x-www-form-urlencoded"}
            assert (await client.post("/form", content=form_body(), headers=form_headers)).status_code == 200

    asyncio.run(run())
    return middleware


@pytest.fixture
def collector() -> Iterator[LocalCollector]:
    with LocalCollector(application_id=APP_ID) as started:
        yield started
    started.close()


def all_log_text(records: list[logging.LogRecord]) -> str:
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    return "\n".join(handler.format(record) for record in records)


@pytest.mark.parametrize("flavour", ["flask", "fastapi"])
def test_credentials_are_masked_in_delivered_events_by_default(collector: LocalCollector, flavour: str) -> None:
    middleware = drive(flavour, {"APPLICATION_ID": APP_ID, "BASE_URI": collector.base_uri, **FAST})
    try:
        assert middleware.flush(10)
        login, form = sorted(collector.wait_for_events(2), key=lambda e: e["request"]["uri"])[::-1]
        stored = orjson.dumps(collector.events()).decode()
        for value in FORBIDDEN:
            assert value not in stored, f"{value!r} reached the collector"
        for name in ("authorization", "proxy-authorization", "cookie", "x-api-key"):
            assert login["request"]["headers"][name] == "*****"
            assert form["request"]["headers"][name] == "*****"
        assert login["response"]["headers"]["set-cookie"] == "*****"
        assert login["request"]["body"]["password"] == "*****"
        assert login["request"]["body"]["auth"]["token"] == "*****"
        assert login["request"]["body"]["auth"]["deeper"][0]["secret"] == "*****"
        assert login["request"]["body"]["user"] == "ann"  # the rest is kept
        assert login["response"]["body"]["client_secret"] == "*****"
        assert login["user_id"] == "user-42"  # read from the token before it was masked
        form_text = (
            base64.b64decode(form["request"]["body"]).decode()
            if form["request"]["transfer_encoding"] == "base64"
            else str(form["request"]["body"])
        )
        assert "user=ann" in form_text
        assert "password=*****" in form_text
        assert "token=*****" in form_text
    finally:
        middleware.close(1)


@pytest.mark.parametrize("flavour", ["flask", "fastapi"])
def test_debug_logs_carry_no_credential_and_no_full_application_id(
    collector: LocalCollector, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A retry and a rejection too, so the delivery paths that log an answer's details speak as well.
    collector.fail_next(1, 503, body=f'{{"echo": "{APP_ID}"}}'.encode())
    collector.fail_next(1, 401)
    with caplog.at_level(logging.DEBUG, logger="moesif"):
        middleware = drive(flavour, {"APPLICATION_ID": APP_ID, "BASE_URI": collector.base_uri, "DEBUG": True, **FAST})
        try:
            middleware.flush(10)
            drive_again = drive(flavour, {"APPLICATION_ID": APP_ID, "BASE_URI": collector.base_uri, "DEBUG": True, **FAST})
            assert drive_again.flush(10)
            drive_again.close(1)
            logging.getLogger("moesif").debug("settings %r, agent %r", middleware.settings, middleware.agent)
        finally:
            middleware.close(1)
    records = [r for r in caplog.records if r.name.startswith("moesif")]
    text = all_log_text(records)
    assert any(r.levelno == logging.DEBUG for r in records)  # DEBUG really spoke
    assert "masked request headers" in text
    assert APP_ID not in text
    for value in FORBIDDEN:
        assert value not in text, f"{value!r} reached the logs"
    assert "user-42" not in text  # ids derived from tokens are not logged either


def test_the_local_collector_listens_on_loopback_only_by_default() -> None:
    with LocalCollector() as collector:
        assert collector.host == "127.0.0.1"
        assert collector.base_uri.startswith("http://127.0.0.1:")
        listening = _listening_addresses(collector.port)
        assert listening == {"127.0.0.1"}, listening


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of TCP sockets in LISTEN state on ``port``, from the kernel's own table."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs Linux /proc/net/tcp")
    found = set()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        address, port_hex = fields[1].split(":")
        if int(port_hex, 16) == port and fields[3] == "0A":
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    v6 = Path("/proc/net/tcp6")
    if v6.exists():
        for line in v6.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                found.add("ipv6:" + fields[1].split(":")[0])
    return found


def test_the_collector_refuses_events_with_a_wrong_application_id(
    collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "some-other-application-id-0000"
    with caplog.at_level(logging.WARNING, logger="moesif"):
        middleware = drive("flask", {"APPLICATION_ID": wrong, "BASE_URI": collector.base_uri, **FAST})
        try:
            middleware.flush(10)
            stats = middleware.stats()
        finally:
            middleware.close(1)
    assert collector.events() == []
    assert stats["dropped_unauthorized"] == 2
    assert stats["sent"] == 0
    posts = [r for r in collector.requests if r.path == "/v1/events/batch"]
    assert posts and {r.status for r in posts} == {401}
    assert wrong not in caplog.text
    assert "APPLICATION_ID is wrong" in caplog.text


# -- TLS ------------------------------------------------------------------------------------------


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    hits = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def self_signed_server(self_signed_cert: tuple[Path, Path]) -> Iterator[str]:
    cert, key = self_signed_cert
    server = _TLSServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        assert server.hits == 0, "a request got through an unverified TLS connection"
        server.shutdown()
        server.server_close()


def test_the_senders_transport_verifies_the_collectors_certificate(self_signed_server: str) -> None:
    middleware = drive("flask", {"APPLICATION_ID": APP_ID, "BASE_URI": self_signed_server, **FAST, "MAX_RETRIES": 1})
    try:
        middleware.flush(5)
        stats = middleware.stats()
        assert stats["sent"] == 0
        assert stats["dropped_retries_exhausted"] == 2
        # The very factory the sender workers build their connections with.
        transport = middleware.agent._new_transport()
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            transport.request("POST", "/v1/events/batch", b"[]")
        context = transport._ssl_context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        transport.close()
    finally:
        middleware.close(0.5)


def test_a_rejection_that_echoes_the_application_id_is_logged_without_it(
    collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    # The warning quotes the start of the collector's answer, which may quote the request back.
    collector.fail_next(1, 400, body=f'{{"error": "bad batch", "application_id": "{APP_ID}"}}'.encode())
    with caplog.at_level(logging.DEBUG, logger="moesif"):
        middleware = drive("flask", {"APPLICATION_ID": APP_ID, "BASE_URI": collector.base_uri, **FAST})
        try:
            middleware.flush(10)
        finally:
            middleware.close(1)
    assert middleware.stats()["dropped_rejected"] == 2
    assert "HTTP 400" in caplog.text
    assert "bad batch" in caplog.text
    assert APP_ID not in caplog.text
