"""Every call of a Bottle app reaches the capture layer, including those no route callback sees."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import bottle
import pytest
import webtest

from bottle_moesif import MoesifPlugin, current_annotations

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


def build_app() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/items/<item_id:int>")
    def item(item_id: int) -> Any:
        return {"id": item_id}

    @app.post("/items")
    def create() -> Any:
        bottle.request.environ["app.user"] = "alice"
        bottle.response.status = 201
        return {"created": bottle.request.json}

    @app.get("/old")
    def old() -> Any:
        bottle.redirect("/items/1")

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("route failed")

    @app.get("/stream")
    def stream() -> Iterator[bytes]:
        yield b"one,"
        yield b"two,"
        yield b"three"

    @app.get("/health", moesif={"skip": True})
    def health() -> Any:
        return "ok"

    @app.post("/checkout", moesif={"metadata": {"feature": "checkout", "plan": {"tier": "gold"}}})
    def checkout() -> Any:
        current_annotations().add_metadata({"cart": 3})
        current_annotations().company_id = "acme"
        return {"ok": True}

    return app


@pytest.fixture
def app(agent: Any) -> bottle.Bottle:
    app = build_app()
    app.install(MoesifPlugin(SETTINGS, agent=agent))
    return app


def test_matched_route_rule_is_recorded(app: bottle.Bottle, agent: Any) -> None:
    assert webtest.TestApp(app).get("/items/7").json == {"id": 7}
    [record] = agent.records
    assert (record.status, record.path, record.route) == (200, "/items/7", "/items/<item_id:int>")


def test_unmatched_url_and_wrong_method_never_reach_a_route_but_are_captured(app: bottle.Bottle, agent: Any) -> None:
    client = webtest.TestApp(app)
    client.get("/nowhere", status=404)
    client.delete("/items/7", status=405)
    assert [(r.status, r.path, r.route) for r in agent.records] == [(404, "/nowhere", None), (405, "/items/7", None)]


def test_redirect_is_captured(app: bottle.Bottle, agent: Any) -> None:
    response = webtest.TestApp(app).get("/old", status="3*")
    [record] = agent.records
    assert record.status == response.status_int in (302, 303)
    assert dict(record.response_headers)["Location"].endswith("/items/1")


def test_error_caught_by_bottle_is_a_500_event(app: bottle.Bottle, agent: Any) -> None:
    webtest.TestApp(app).get("/boom", status=500, expect_errors=True)
    [record] = agent.records
    assert (record.status, record.route) == (500, "/boom")


def test_error_raised_to_the_server_is_still_an_event(app: bottle.Bottle, agent: Any) -> None:
    app.catchall = False
    with pytest.raises(RuntimeError, match="route failed"):
        webtest.TestApp(app).get("/boom")
    [record] = agent.records
    assert (record.status, record.error) == (500, "RuntimeError")


def test_streamed_response_is_passed_on_chunk_by_chunk_then_recorded_whole(app: bottle.Bottle, agent: Any) -> None:
    environ: dict[str, Any] = {}
    from wsgiref.util import setup_testing_defaults

    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/stream"
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    chunks = iter(body)
    assert next(chunks) == b"one,"
    assert agent.records == []  # the call is not over while the stream runs
    assert b"".join(chunks) == b"two,three"
    body.close()  # type: ignore[attr-defined]
    [record] = agent.records
    assert statuses == ["200 OK"]
    assert record.response_body == b"one,two,three"


def test_route_config_skip_drops_the_route(app: bottle.Bottle, agent: Any) -> None:
    client = webtest.TestApp(app)
    client.get("/health")
    client.get("/items/1")
    assert [r.path for r in agent.records] == ["/items/1"]
    assert agent.counts == {"skipped": 1}


def test_route_config_metadata_and_annotations_merge_over_get_metadata(agent: Any) -> None:
    app = build_app()
    app.install(MoesifPlugin({**SETTINGS, "GET_METADATA": lambda app, environ: {"region": "eu", "feature": "?"}}, agent=agent))
    webtest.TestApp(app).post("/checkout")
    [record] = agent.records
    assert record.metadata == {"region": "eu", "feature": "checkout", "plan": {"tier": "gold"}, "cart": 3}
    assert record.company_id == "acme"


def test_callbacks_get_the_bottle_app_and_can_use_bottle_request(agent: Any) -> None:
    seen: dict[str, Any] = {}

    def identify_user(app: bottle.Bottle, environ: Any, headers: Any) -> Any:
        seen["app"] = app
        seen["path"] = bottle.request.path
        return environ.get("app.user")

    def identify_company(app: bottle.Bottle, environ: Any, headers: Any) -> Any:
        return bottle.request.get_header("X-Org")

    app = build_app()
    app.install(MoesifPlugin({**SETTINGS, "IDENTIFY_USER": identify_user, "IDENTIFY_COMPANY": identify_company}, agent=agent))
    webtest.TestApp(app).post_json("/items", {"n": 1}, headers={"X-Org": "org-9"}, status=201)
    [record] = agent.records
    assert (record.user_id, record.company_id) == ("alice", "org-9")
    assert seen == {"app": app, "path": "/items"}


def test_raising_callbacks_do_not_fail_the_request(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: Any) -> Any:
        raise KeyError("no user here")

    app = build_app()
    app.install(MoesifPlugin({**SETTINGS, "IDENTIFY_USER": broken, "GET_METADATA": broken, "SKIP": broken}, agent=agent))
    client = webtest.TestApp(app)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        assert client.get("/items/3").json == {"id": 3}
        client.get("/items/4")
    assert [(r.status, r.user_id) for r in agent.records] == [(200, None), (200, None)]
    assert caplog.text.count("IDENTIFY_USER raised KeyError") == 1


def test_current_annotations_outside_a_captured_call_is_harmless() -> None:
    current_annotations().skip = True
