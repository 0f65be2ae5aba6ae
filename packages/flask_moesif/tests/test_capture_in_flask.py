"""Every call of a Flask app reaches the capture layer, with what only Flask knows filled in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import flask
import pytest

from flask_moesif import MoesifFlask, current_annotations, moesif_metadata, skip_moesif
from moesif_core.event_builder import EventBuilder

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


def build_app() -> flask.Flask:
    app = flask.Flask("capture")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return {"id": item_id}

    @app.post("/items")
    def create() -> Any:
        flask.g.user = "alice"
        return {"created": flask.request.get_json()}, 201

    @app.get("/old")
    def old() -> Any:
        return flask.redirect("/items/1")

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("view failed")

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            yield "one,"
            yield "two,"
            yield "three"

        return flask.Response(chunks(), mimetype="text/plain")

    @app.get("/health")
    @skip_moesif
    def health() -> Any:
        return "ok"

    @app.post("/checkout")
    @moesif_metadata({"feature": "checkout"})
    @moesif_metadata({"tier": "gold"})
    def checkout() -> Any:
        current_annotations().add_metadata({"cart": 3, "tier": "gold-trial"})  # the view's own value wins
        current_annotations().company_id = "acme"
        return {"ok": True}

    return app


def call(client: Any, method: str, url: str, **kw: Any) -> Any:
    response = client.open(url, method=method, **kw)
    response.close()  # as a server does once the body went out: that completes the event
    return response


@pytest.fixture
def app(agent: Any) -> flask.Flask:
    app = build_app()
    MoesifFlask(app, SETTINGS, agent=agent)
    return app


def test_matched_route_template_is_recorded(app: flask.Flask, agent: Any) -> None:
    call(app.test_client(), "GET", "/items/7")
    [record] = agent.records
    assert (record.status, record.path, record.route) == (200, "/items/7", "/items/<int:item_id>")


def test_unmatched_url_and_wrong_method_are_captured(app: flask.Flask, agent: Any) -> None:
    client = app.test_client()
    call(client, "GET", "/nowhere")
    call(client, "DELETE", "/items/7")
    assert [(r.status, r.path, r.route) for r in agent.records] == [(404, "/nowhere", None), (405, "/items/7", None)]


def test_redirect_is_captured_with_its_location(app: flask.Flask, agent: Any) -> None:
    call(app.test_client(), "GET", "/old")
    [record] = agent.records
    assert record.status == 302
    assert dict(record.response_headers)["Location"].endswith("/items/1")


def test_error_handled_by_flask_is_a_500_event(app: flask.Flask, agent: Any) -> None:
    assert call(app.test_client(), "GET", "/boom").status_code == 500
    [record] = agent.records
    assert (record.status, record.route) == (500, "/boom")


def test_error_propagated_to_the_server_is_still_an_event(app: flask.Flask, agent: Any) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="view failed"):
        app.test_client().get("/boom")
    [record] = agent.records
    assert (record.status, record.error) == (500, "RuntimeError")


def add_failing_views(app: flask.Flask) -> None:
    @app.get("/orders/<int:order_id>/fail")
    @moesif_metadata({"feature": "orders"})
    def failing_order(order_id: int) -> Any:
        raise RuntimeError("view failed")

    @app.get("/health/deep")
    @skip_moesif
    def failing_health() -> Any:
        raise RuntimeError("view failed")


@pytest.mark.parametrize("propagate", ["testing", "debug", "PROPAGATE_EXCEPTIONS"])
def test_error_propagated_to_the_server_keeps_its_route_and_marks(app: flask.Flask, agent: Any, propagate: str) -> None:
    # Flask pops its request context before the exception reaches the capture layer.
    add_failing_views(app)
    if propagate == "PROPAGATE_EXCEPTIONS":
        app.config["PROPAGATE_EXCEPTIONS"] = True
    else:
        setattr(app, propagate, True)
    with pytest.raises(RuntimeError, match="view failed"):
        app.test_client().get("/orders/7/fail")
    [record] = agent.records
    assert (record.status, record.error, record.route) == (500, "RuntimeError", "/orders/<int:order_id>/fail")
    event = EventBuilder(agent.settings).build(record)
    assert event["metadata"] == {"feature": "orders", "_moesif": {"route": "/orders/<int:order_id>/fail"}}


def test_skipped_view_that_raises_out_of_flask_sends_nothing(app: flask.Flask, agent: Any) -> None:
    add_failing_views(app)
    app.testing = True
    with pytest.raises(RuntimeError, match="view failed"):
        app.test_client().get("/health/deep")
    assert agent.records == []
    assert agent.counts == {"skipped": 1}


def test_skipped_view_that_raises_inside_flask_sends_nothing(app: flask.Flask, agent: Any) -> None:
    add_failing_views(app)
    assert call(app.test_client(), "GET", "/health/deep").status_code == 500
    assert agent.records == []
    assert agent.counts == {"skipped": 1}


def test_propagated_error_keeps_its_route_and_marks_when_a_middleware_inside_copies_the_environ(agent: Any) -> None:
    # The annotations are shared with the copy: Flask's error path notes the view in them.
    app = build_app()
    add_failing_views(app)
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(dict(environ), start_response)  # type: ignore[method-assign]
    MoesifFlask(app, SETTINGS, agent=agent)
    app.testing = True
    client = app.test_client()
    for url in ("/orders/7/fail", "/health/deep"):
        with pytest.raises(RuntimeError, match="view failed"):
            client.get(url)
    [record] = agent.records
    assert (record.path, record.route, record.metadata) == (
        "/orders/7/fail",
        "/orders/<int:order_id>/fail",
        {"feature": "orders"},
    )
    assert agent.counts == {"skipped": 1}


def test_without_flask_signals_the_apps_handle_exception_notes_the_view(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Flask 2.2 without blinker: connecting to a signal raises RuntimeError.
    class NoSignal:
        def connect(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("Signalling support is unavailable because the blinker library is not installed.")

    monkeypatch.setattr(flask, "got_request_exception", NoSignal())
    app = build_app()
    add_failing_views(app)
    MoesifFlask(app, SETTINGS, agent=agent)
    assert "handle_exception" in vars(app)
    client = app.test_client()
    assert call(client, "GET", "/boom").status_code == 500
    app.testing = True
    for url in ("/orders/7/fail", "/health/deep"):
        with pytest.raises(RuntimeError, match="view failed"):
            client.get(url)
    assert [(r.status, r.route) for r in agent.records] == [(500, "/boom"), (500, "/orders/<int:order_id>/fail")]
    assert agent.records[1].metadata == {"feature": "orders"}
    assert agent.counts == {"skipped": 1}


def test_the_view_of_a_failed_call_is_noted_on_errors_only(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import flask_moesif.extension as extension

    noted: list[str] = []
    note = extension._note_failed_view

    def counting(app: flask.Flask, **extra: Any) -> None:
        noted.append(flask.request.path)
        note(app, **extra)

    monkeypatch.setattr(extension, "_note_failed_view", counting)
    app = build_app()
    MoesifFlask(app, SETTINGS, agent=agent)
    client = app.test_client()
    for url in ("/items/1", "/nowhere", "/boom", "/health"):
        call(client, "GET", url)
    assert noted == ["/boom"]
    assert app.before_request_funcs == {} and app.teardown_request_funcs == {}  # no request hook


@pytest.mark.parametrize("testing", [True, False])
def test_a_failure_noting_the_view_of_a_failed_call_never_replaces_the_apps_error(
    app: flask.Flask, agent: Any, testing: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(view: Any, annotations: Any) -> None:
        raise ValueError("our bug")

    monkeypatch.setattr("flask_moesif.extension.apply_view_options", broken)
    app.testing = testing
    with caplog.at_level(logging.WARNING, logger="moesif"):
        if testing:
            with pytest.raises(RuntimeError, match="view failed"):
                app.test_client().get("/boom")
        else:
            assert call(app.test_client(), "GET", "/boom").status_code == 500
    [record] = agent.records
    assert (record.status, record.path) == (500, "/boom")
    assert "ValueError: our bug" in caplog.text


def test_streamed_response_is_passed_on_chunk_by_chunk_then_recorded_whole(app: flask.Flask, agent: Any) -> None:
    response = app.test_client().get("/stream", buffered=False)
    chunks = iter(response.response)
    assert next(chunks) == b"one,"
    assert agent.records == []  # the call is not over while the stream runs
    assert b"".join(chunks) == b"two,three"
    response.close()
    [record] = agent.records
    assert record.response_body == b"one,two,three"


def test_skip_decorator_drops_the_view(app: flask.Flask, agent: Any) -> None:
    client = app.test_client()
    assert call(client, "GET", "/health").status_code == 200
    call(client, "GET", "/items/1")
    assert [r.path for r in agent.records] == ["/items/1"]
    assert agent.counts == {"skipped": 1}


def test_skip_decorator_holds_when_an_earlier_hook_answers(app: flask.Flask, agent: Any) -> None:
    @app.before_request
    def deny() -> Any:
        return ("no", 401)

    assert call(app.test_client(), "GET", "/health").status_code == 401
    assert agent.records == []


def test_route_and_marks_are_read_when_a_middleware_inside_copies_the_environ(agent: Any) -> None:
    # Werkzeug keeps the request in the environ Flask got: a copy made between us and Flask
    # hides it from our environ, so the request context is asked instead.
    app = build_app()
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(dict(environ), start_response)  # type: ignore[method-assign]
    MoesifFlask(app, SETTINGS, agent=agent)
    client = app.test_client()
    call(client, "GET", "/items/7")
    call(client, "GET", "/health")
    [record] = agent.records
    assert (record.path, record.route) == ("/items/7", "/items/<int:item_id>")
    assert agent.counts == {"skipped": 1}


def test_metadata_decorators_and_annotations_merge_over_get_metadata(agent: Any) -> None:
    app = build_app()
    MoesifFlask(app, {**SETTINGS, "GET_METADATA": lambda app, environ: {"region": "eu", "tier": "free"}}, agent=agent)
    call(app.test_client(), "POST", "/checkout")
    [record] = agent.records
    assert record.metadata == {"region": "eu", "tier": "gold-trial", "feature": "checkout", "cart": 3}
    assert record.company_id == "acme"


def test_callbacks_run_inside_the_flask_request_context(agent: Any) -> None:
    seen: dict[str, Any] = {}

    def identify_user(app: flask.Flask, environ: Any, headers: Any) -> Any:
        seen["app"] = app
        seen["path"] = flask.request.path
        return flask.g.get("user")

    def identify_company(app: flask.Flask, environ: Any, headers: Any) -> Any:
        return flask.request.headers.get("X-Org")

    app = build_app()
    MoesifFlask(app, {**SETTINGS, "IDENTIFY_USER": identify_user, "IDENTIFY_COMPANY": identify_company}, agent=agent)
    call(app.test_client(), "POST", "/items", json={"n": 1}, headers={"X-Org": "org-9"})
    [record] = agent.records
    assert (record.user_id, record.company_id) == ("alice", "org-9")
    assert seen == {"app": app, "path": "/items"}


def test_raising_callbacks_do_not_fail_the_request(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: Any) -> Any:
        raise KeyError("no user here")

    settings = {**SETTINGS, "IDENTIFY_USER": broken, "GET_METADATA": broken, "SKIP": broken}
    app = build_app()
    MoesifFlask(app, settings, agent=agent)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        response = call(app.test_client(), "GET", "/items/3")
        call(app.test_client(), "GET", "/items/4")
    assert response.status_code == 200 and response.json == {"id": 3}
    assert [(r.status, r.user_id) for r in agent.records] == [(200, None), (200, None)]
    assert "IDENTIFY_USER raised KeyError" in caplog.text
    assert caplog.text.count("IDENTIFY_USER raised") == 1  # once, not once per request


def test_current_annotations_outside_a_captured_call_is_harmless() -> None:
    app = build_app()
    with app.test_request_context("/"):
        current_annotations().skip = True
    current_annotations().user_id = "nobody"
