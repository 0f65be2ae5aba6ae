"""Every call of a Pyramid app reaches the capture layer, with the route pattern and the live request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPFound
from pyramid.request import Request
from pyramid.response import Response

from pyramid_moesif import authenticated_userid, moesif_metadata, request_of, skip_moesif

SETTINGS = {"moesif.application_id": "test-app", "moesif.base_uri": "http://127.0.0.1:9"}


class HeaderSecurityPolicy:
    """Pyramid 2 security policy: the user is whatever X-User says (enough for a test)."""

    def identity(self, request: Any) -> Any:
        return request.headers.get("X-User")

    def authenticated_userid(self, request: Any) -> Any:
        return self.identity(request)

    def permits(self, request: Any, context: Any, permission: Any) -> bool:
        return True

    def remember(self, request: Any, userid: Any, **kw: Any) -> list[Any]:
        return []

    def forget(self, request: Any, **kw: Any) -> list[Any]:
        return []


def item(request: Any) -> Any:
    return {"id": int(request.matchdict["item_id"])}


def create(request: Any) -> Any:
    request.response.status = 201
    return {"created": request.json_body}


def old(request: Any) -> Any:
    raise HTTPFound(location="/items/1")


def boom(request: Any) -> Any:
    raise RuntimeError("view failed")


def bad_value(request: Any) -> Any:
    raise ValueError("handled by an exception view")


def value_error_view(exc: Any, request: Any) -> Any:
    return Response("sorry", status=500)


def stream(request: Any) -> Any:
    def chunks() -> Iterator[bytes]:
        yield b"one,"
        yield b"two,"
        yield b"three"

    return Response(app_iter=chunks(), content_type="text/plain")


def health(request: Any) -> Any:
    return Response("ok")


def checkout(request: Any) -> Any:
    # request.moesif is a plain attribute the tween sets: Pyramid's request properties would make
    # a new class for every request.
    assert type(request) is Request
    request.moesif.add_metadata({"cart": 3})
    request.moesif.company_id = "acme"
    return {"ok": True}


def build_app(agent: Any, **settings: Any) -> Any:
    config = Configurator(settings={**SETTINGS, **settings})
    config.include("pyramid_moesif")
    config.configure_moesif(agent=agent)
    config.set_security_policy(HeaderSecurityPolicy())
    routes = [
        ("item", "/items/{item_id:\\d+}", item, "GET", "json", None),
        ("create", "/items", create, "POST", "json", None),
        ("old", "/old", old, None, None, None),
        ("boom", "/boom", boom, None, None, None),
        ("bad_value", "/bad-value", bad_value, None, None, None),
        ("stream", "/stream", stream, None, None, None),
        ("health", "/health", health, None, None, skip_moesif),
        ("checkout", "/checkout", checkout, "POST", "json", moesif_metadata({"feature": "checkout", "tier": "gold"})),
    ]
    for name, pattern, view, method, renderer, decorator in routes:
        config.add_route(name, pattern)
        config.add_view(view, route_name=name, request_method=method, renderer=renderer, decorator=decorator)
    config.add_exception_view(value_error_view, context=ValueError)
    return config.make_wsgi_app()


def test_matched_route_pattern_is_recorded(agent: Any) -> None:
    assert webtest.TestApp(build_app(agent)).get("/items/7").json == {"id": 7}
    [record] = agent.records
    assert (record.status, record.path, record.route) == (200, "/items/7", "/items/{item_id:\\d+}")


def test_unmatched_url_and_wrong_method_are_captured(agent: Any) -> None:
    client = webtest.TestApp(build_app(agent))
    client.get("/nowhere", status=404)
    client.delete("/items/7", status=404)  # Pyramid answers a predicate mismatch with 404
    assert [(r.status, r.path) for r in agent.records] == [(404, "/nowhere"), (404, "/items/7")]
    assert agent.records[0].route is None


def test_redirect_is_captured(agent: Any) -> None:
    webtest.TestApp(build_app(agent)).get("/old", status=302)
    [record] = agent.records
    assert (record.status, record.route) == (302, "/old")
    assert dict(record.response_headers)["Location"].endswith("/items/1")


def test_error_answered_by_an_exception_view_is_a_500_event(agent: Any) -> None:
    webtest.TestApp(build_app(agent)).get("/bad-value", status=500)
    [record] = agent.records
    assert (record.status, record.route) == (500, "/bad-value")


def test_error_escaping_every_tween_is_still_an_event(agent: Any) -> None:
    with pytest.raises(RuntimeError, match="view failed"):
        webtest.TestApp(build_app(agent)).get("/boom")
    [record] = agent.records
    # (The route pattern is noted, but the core only copies annotations when a response starts.)
    assert (record.status, record.error) == (500, "RuntimeError")


def test_streamed_response_is_passed_on_chunk_by_chunk_then_recorded_whole(agent: Any) -> None:
    app = build_app(agent)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/stream"
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    chunks = iter(body)
    assert next(chunks) == b"one,"
    assert agent.records == []  # the call is not over while the stream runs
    assert b"".join(chunks) == b"two,three"
    body.close()
    [record] = agent.records
    assert statuses == ["200 OK"]
    assert (record.response_body, record.route) == (b"one,two,three", "/stream")


def test_skip_view_decorator_drops_the_view(agent: Any) -> None:
    client = webtest.TestApp(build_app(agent))
    client.get("/health")
    client.get("/items/1")
    assert [r.path for r in agent.records] == ["/items/1"]
    assert agent.counts == {"skipped": 1}


def test_metadata_decorator_and_request_moesif_merge_over_get_metadata(agent: Any) -> None:
    app = build_app(agent, **{"moesif.get_metadata": lambda app, environ: {"region": "eu", "tier": "free"}})
    webtest.TestApp(app).post_json("/checkout", {})
    [record] = agent.records
    assert record.metadata == {"region": "eu", "tier": "gold", "feature": "checkout", "cart": 3}
    assert record.company_id == "acme"


def test_callbacks_get_the_router_and_reach_the_pyramid_request(agent: Any) -> None:
    seen: dict[str, Any] = {}

    def identify_company(app: Any, environ: Any, headers: Any) -> Any:
        seen["app"] = app
        request = request_of(environ)
        return request.matchdict["item_id"] if request is not None and request.matchdict else None

    app = build_app(agent, **{"moesif.identify_company": identify_company})
    webtest.TestApp(app).get("/items/42")
    [record] = agent.records
    assert record.company_id == "42"
    assert seen["app"] is app


def test_authenticated_userid_comes_from_the_security_policy(agent: Any) -> None:
    app = build_app(agent, **{"moesif.identify_user": "pyramid_moesif:authenticated_userid"})
    client = webtest.TestApp(app)
    client.get("/items/1", headers={"X-User": "alice"})
    client.get("/items/2")
    assert [r.user_id for r in agent.records] == ["alice", None]
    assert authenticated_userid(None, {}) is None


def test_raising_callbacks_and_security_policy_do_not_fail_the_request(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: Any) -> Any:
        raise KeyError("no company here")

    class BrokenPolicy(HeaderSecurityPolicy):
        def authenticated_userid(self, request: Any) -> Any:
            raise LookupError("session store down")

    app = build_app(
        agent, **{"moesif.identify_company": broken, "moesif.get_metadata": broken, "moesif.identify_user": authenticated_userid}
    )
    app.registry.registerUtility(BrokenPolicy(), __import__("pyramid.interfaces").interfaces.ISecurityPolicy)
    client = webtest.TestApp(app)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        assert client.get("/items/3").json == {"id": 3}
        client.get("/items/4")
    assert [(r.status, r.user_id, r.company_id, r.route) for r in agent.records] == [
        (200, None, None, "/items/{item_id:\\d+}"),
        (200, None, None, "/items/{item_id:\\d+}"),
    ]
    assert caplog.text.count("IDENTIFY_COMPANY raised KeyError") == 1
    assert caplog.text.count("session store down") == 1
