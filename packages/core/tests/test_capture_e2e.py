"""From a served request to the event the local collector stored, through the real agent and sender."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from typing import Any

import flask
import httpx
from fastapi import FastAPI, Request

from moesif_core.asgi import MoesifMiddleware as AsgiMiddleware
from moesif_core.wsgi import MoesifMiddleware as WsgiMiddleware

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")


def jwt_with_url_safe_payload() -> tuple[str, str]:
    """A JWT whose base64url payload contains both '-' and '_' (the incumbents' standard-alphabet decode fails on it)."""
    for n in range(64):
        user = "u" * n + "??>>~~"
        claims = json.dumps({"sub": user, "org": {"id": "acme"}}, ensure_ascii=False).encode()
        payload = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
        if "-" in payload and "_" in payload:
            return f"eyJhbGciOiJub25lIn0.{payload}.c2ln", user
    raise AssertionError("no such payload")


def flask_app(settings: dict[str, Any]) -> tuple[flask.Flask, WsgiMiddleware]:
    app = flask.Flask("e2e")

    @app.post("/api/orders")
    def orders() -> Any:
        return {"received": flask.request.get_json(), "password": "hunter2"}, 201

    @app.get("/api/bin")
    def binary() -> flask.Response:
        return flask.Response(bytes(range(256)), content_type="application/octet-stream")

    middleware = WsgiMiddleware(app.wsgi_app, settings)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    return app, middleware


def test_wsgi_event_matches_the_spec_field_by_field(moesif_collector: Any) -> None:
    token, user = jwt_with_url_safe_payload()
    app, middleware = flask_app(moesif_collector.settings(AUTHORIZATION_COMPANY_ID_FIELD="org.id", API_VERSION="2.1"))
    body = gzip.compress(json.dumps({"item": "pen", "qty": 2}).encode())
    response = app.test_client().post(
        "/api/orders?src=test",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
            "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
            "X-Api-Key": "secret-key",
        },
        base_url="https://shop.example/mount",
    )
    response.close()  # as a server does once the body went out: that completes the event
    # Flask does not gunzip by itself: the app got the bytes as sent, untouched by us.
    assert response.status_code in (201, 400, 415)
    assert middleware.flush(5)
    [event] = moesif_collector.wait_for_events(1)
    assert set(event) == {
        "request",
        "response",
        "user_id",
        "company_id",
        "session_token",
        "metadata",
        "tags",
        "direction",
        "weight",
        "blocked_by",
        "transaction_id",
    }
    request, resp = event["request"], event["response"]
    assert set(request) == {"time", "uri", "verb", "api_version", "ip_address", "headers", "body", "transfer_encoding"}
    assert set(resp) == {"time", "status", "headers", "body", "ip_address", "transfer_encoding"}
    assert TIME.match(request["time"]) and TIME.match(resp["time"])
    assert request["time"] <= resp["time"]
    assert request["uri"] == "https://shop.example/mount/api/orders?src=test"
    assert request["verb"] == "POST"
    assert request["api_version"] == "2.1"
    assert request["ip_address"] == "203.0.113.9"
    assert request["body"] == {"item": "pen", "qty": 2}  # gzip undone before the JSON check
    assert request["transfer_encoding"] == "json"
    assert request["headers"]["authorization"] != f"Bearer {token}"  # masked by default...
    assert request["headers"]["x-api-key"] != "secret-key"
    assert event["user_id"] == user  # ...after the user id was read from it
    assert event["company_id"] == "acme"
    assert event["direction"] == "Incoming"
    assert event["weight"] == 1
    assert event["blocked_by"] is None
    assert event["transaction_id"] == response.headers["X-Moesif-Transaction-Id"]
    assert request["headers"]["x-moesif-transaction-id"] == event["transaction_id"]
    assert resp["headers"]["x-moesif-transaction-id"] == event["transaction_id"]
    assert resp["status"] == response.status_code


def test_wsgi_binary_and_masked_json_bodies(moesif_collector: Any) -> None:
    app, middleware = flask_app(moesif_collector.settings())
    client = app.test_client()
    assert client.get("/api/bin").data == bytes(range(256))
    assert client.post("/api/orders", json={"item": "x"}).json == {"received": {"item": "x"}, "password": "hunter2"}
    assert middleware.flush(5)
    binary, order = moesif_collector.wait_for_events(2)
    assert binary["response"]["transfer_encoding"] == "base64"
    assert base64.b64decode(binary["response"]["body"]) == bytes(range(256))
    assert order["response"]["body"]["received"] == {"item": "x"}
    assert order["response"]["body"]["password"] != "hunter2"  # masked in the event, untouched for the client


async def test_asgi_event_arrives_with_user_and_truncation_marked(moesif_collector: Any) -> None:
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    middleware = AsgiMiddleware(app, settings=moesif_collector.settings(LOG_BODY_MAX_BYTES=1024))
    token, user = jwt_with_url_safe_payload()
    payload = b"z" * 5000
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://api.test") as client:
        response = await client.post("/upload", content=payload, headers={"Authorization": token})  # a bare JWT
    assert response.json() == {"size": 5000}
    assert middleware.flush(5)
    [event] = moesif_collector.wait_for_events(1)
    assert event["user_id"] == user
    assert event["request"]["transfer_encoding"] == "base64"
    assert len(base64.b64decode(event["request"]["body"])) == 1024
    assert event["metadata"]["_moesif"]["request_body_truncated"] is True
    assert event["metadata"]["_moesif"]["request_body_size"] == 5000


def test_sampling_by_client_ip_uses_the_address_the_event_reports(moesif_collector: Any) -> None:
    moesif_collector.set_config(
        {
            "sample_rate": 100,
            "regex_config": [{"conditions": [{"path": "request.ip_address", "value": "^203\\."}], "sample_rate": 0}],
        }
    )
    app, middleware = flask_app(moesif_collector.settings())
    client = app.test_client()
    client.get("/api/bin").close()  # starts the sender and the config fetch
    assert middleware.flush(5)
    deadline = time.monotonic() + 10
    while not middleware.agent.config.received:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.get("/api/bin", headers={"X-Forwarded-For": "203.0.113.5"}).close()
    client.get("/api/bin", headers={"X-Forwarded-For": "198.51.100.7"}).close()
    assert middleware.flush(5)
    addresses = [e["request"]["ip_address"] for e in moesif_collector.events()]
    assert "198.51.100.7" in addresses
    assert "203.0.113.5" not in addresses
    assert middleware.stats()["sampled_out"] == 1


def test_non_ascii_paths_and_queries_are_percent_encoded_in_the_uri(moesif_collector: Any) -> None:
    app, middleware = flask_app(moesif_collector.settings())

    @app.get("/api/café/<name>")
    def cafe(name: str) -> Any:
        return {"name": name}

    assert app.test_client().get("/api/café/crème?q=ü").json == {"name": "crème"}
    assert middleware.flush(5)
    [event] = moesif_collector.wait_for_events(1)
    assert event["request"]["uri"] == "http://localhost/api/caf%C3%A9/cr%C3%A8me?q=%C3%BC"


async def test_asgi_non_ascii_path_is_percent_encoded_once(moesif_collector: Any) -> None:
    app = FastAPI()

    @app.get("/späti")
    async def spati() -> dict[str, bool]:
        return {"ok": True}

    middleware = AsgiMiddleware(app, settings=moesif_collector.settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://api.test") as client:
        assert (await client.get("/späti")).json() == {"ok": True}
    assert middleware.flush(5)
    [event] = moesif_collector.wait_for_events(1)
    assert event["request"]["uri"] == "http://api.test/sp%C3%A4ti"
