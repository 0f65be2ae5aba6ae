"""Governance end to end: rules served by the real local collector, enforced in Flask (WSGI) and FastAPI (ASGI)."""

from __future__ import annotations

import time
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI, Request

from moesif_core.asgi import MoesifMiddleware as AsgiMiddleware
from moesif_core.testing import governance_rule as rule
from moesif_core.testing import make_jwt
from moesif_core.wsgi import MoesifMiddleware as WsgiMiddleware

RULES = [
    rule(
        "block-admin",
        "regex",
        groups=[[("request.route", "^/admin"), ("request.verb", "DELETE")]],
        body={"error": "admin closed"},
    ),
    rule("tag-all", "regex", block=False, headers={"X-Governed": "yes"}),
    rule("quota", "user", status=429, headers={"X-Plan": "{{plan}}"}, body={"error": "quota of {{quota}} reached on {{plan}}"}),
    rule("unpaid", "company", applied_to="not_matching", status=402, body={"error": "company {{missing}} must pay"}),
    rule(
        "anonymous", "user", unidentified=True, groups=[[("request.route", "^/private")]], status=401, body={"error": "sign in"}
    ),
    rule(
        "no-delete-all",
        "regex",
        groups=[[("request.body.operationName", "^DeleteAll$")]],
        status=400,
        body={"error": "not allowed"},
    ),
]
CONFIG = {
    "sample_rate": 100,
    "user_rules": {"heavy-user": [{"rules": "quota", "values": {"plan": "free", "quota": "1000"}}]},
    "company_rules": {"paying-co": [{"rules": "unpaid", "values": {}}]},
}


def wait_for_rules(middleware: Any, trigger: Any) -> None:
    """The first call starts the config fetch; wait (bounded) until the rules are in."""
    trigger()
    deadline = time.monotonic() + 10
    while not middleware.agent.config.received:
        assert time.monotonic() < deadline, "the served config never arrived"
        time.sleep(0.02)


@pytest.fixture
def served(moesif_collector: Any) -> Any:
    moesif_collector.set_config(CONFIG)
    moesif_collector.set_rules(RULES)
    return moesif_collector


def flask_app(settings: dict[str, Any]) -> tuple[flask.Flask, WsgiMiddleware, list[str]]:
    app = flask.Flask("governed")
    reached: list[str] = []

    @app.route("/<path:anything>", methods=["GET", "POST", "DELETE"])
    def anything(anything: str) -> Any:
        reached.append(f"{flask.request.method} /{anything}")
        if flask.request.method == "POST":
            return {"echo": flask.request.get_json(silent=True)}
        return {"ok": True}

    middleware = WsgiMiddleware(app.wsgi_app, settings)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    return app, middleware, reached


def fastapi_app(settings: dict[str, Any]) -> tuple[AsgiMiddleware, list[str]]:
    app = FastAPI()
    reached: list[str] = []

    @app.api_route("/{anything:path}", methods=["GET", "POST", "DELETE"])
    async def anything(anything: str, request: Request) -> Any:
        reached.append(f"{request.method} /{anything}")
        if request.method == "POST":
            return {"echo": await request.json()}
        return {"ok": True}

    return AsgiMiddleware(app, settings=settings), reached


def test_wsgi_regex_rule_blocks_a_route_and_the_event_says_which_rule(served: Any) -> None:
    app, middleware, reached = flask_app(served.settings())
    client = app.test_client()
    wait_for_rules(middleware, lambda: client.get("/warmup").close())
    reached.clear()
    blocked = client.delete("/admin/users")
    assert blocked.status_code == 403
    assert blocked.json == {"error": "admin closed"}
    assert blocked.headers["X-Governed"] == "yes"
    assert blocked.headers["X-Moesif-Transaction-Id"]
    allowed = client.get("/admin/users")
    assert allowed.json == {"ok": True}
    assert allowed.headers["X-Governed"] == "yes"  # a headers-only rule adds to the real response
    assert reached == ["GET /admin/users"]  # the blocked call never reached the app
    middleware.flush(5)
    [event] = served.events(path="/admin/users", status=403)
    assert event["blocked_by"] == "block-admin"
    assert event["response"]["body"] == {"error": "admin closed"}


def test_wsgi_company_not_matching_rule_and_body_field_rule(served: Any) -> None:
    settings = served.settings(IDENTIFY_COMPANY=lambda app, environ, headers: environ.get("HTTP_X_COMPANY"))
    app, middleware, reached = flask_app(settings)
    client = app.test_client()
    wait_for_rules(middleware, lambda: client.get("/warmup").close())
    reached.clear()
    outside = client.get("/reports", headers={"X-Company": "freeloader"})
    assert outside.status_code == 402
    assert outside.json == {"error": "company UNKNOWN must pay"}
    assert client.get("/reports", headers={"X-Company": "paying-co"}).json == {"ok": True}
    graphql = client.post("/graphql", json={"operationName": "DeleteAll", "query": "mutation { deleteAll }"})
    assert graphql.status_code == 400
    echoed = client.post("/graphql", json={"operationName": "List", "query": "{ items }"})
    assert echoed.json == {"echo": {"operationName": "List", "query": "{ items }"}}  # the app still read the whole body
    assert reached == ["GET /reports", "POST /graphql"]


async def test_asgi_user_cohort_rule_fills_merge_tags(served: Any) -> None:
    middleware, reached = fastapi_app(served.settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://api.test") as client:
        await client.get("/warmup")
        deadline = time.monotonic() + 10
        while not middleware.agent.config.received:
            assert time.monotonic() < deadline
            await __import__("asyncio").sleep(0.02)
        reached.clear()
        heavy = await client.get("/items", headers={"Authorization": f"Bearer {make_jwt({'sub': 'heavy-user'})}"})
        light = await client.get("/items", headers={"Authorization": f"Bearer {make_jwt({'sub': 'light-user'})}"})
        anonymous = await client.get("/private/data")
        public = await client.get("/public")
        graphql = await client.post("/graphql", json={"operationName": "DeleteAll"})
        listing = await client.post("/graphql", json={"operationName": "List"})
    assert heavy.status_code == 429
    assert heavy.json() == {"error": "quota of 1000 reached on free"}
    assert heavy.headers["x-plan"] == "free"
    assert heavy.headers["x-governed"] == "yes"
    assert light.status_code == 200 and light.headers["x-governed"] == "yes"
    assert anonymous.status_code == 401
    assert public.status_code == 200
    assert graphql.status_code == 400
    assert listing.json() == {"echo": {"operationName": "List"}}
    assert reached == ["GET /items", "GET /public", "POST /graphql"]
    assert middleware.flush(5)
    blocked = {e["blocked_by"] for e in served.events() if e.get("blocked_by")}
    assert blocked == {"quota", "anonymous", "no-delete-all"}
    [quota_event] = [e for e in served.events() if e.get("blocked_by") == "quota"]
    assert quota_event["user_id"] == "heavy-user"
    assert quota_event["response"]["status"] == 429


def test_no_rules_means_nothing_is_governed(moesif_collector: Any) -> None:
    app, middleware, reached = flask_app(moesif_collector.settings())
    client = app.test_client()
    wait_for_rules(middleware, lambda: client.get("/warmup").close())
    response = client.delete("/admin/users")
    assert response.status_code == 200
    assert "X-Governed" not in response.headers
