"""Starting and stopping outgoing capture: exact restore, several agents, our own traffic never captured."""

from __future__ import annotations

import threading
from typing import Any

import flask
import httpx
import pytest
import requests
import requests.adapters
import requests.sessions

from moesif_core.agent import Agent
from moesif_core.collector import LocalCollector
from moesif_core.outgoing import current_capture, start_capture, stop_capture
from moesif_core.settings import Settings, SettingsError
from moesif_core.wsgi import MoesifMiddleware

PATCHED = [
    (requests.adapters.HTTPAdapter, "send"),
    (requests.sessions.Session, "send"),
    (httpx.HTTPTransport, "handle_request"),
    (httpx.AsyncHTTPTransport, "handle_async_request"),
    (httpx.Client, "send"),
    (httpx.AsyncClient, "send"),
]


def originals() -> list[Any]:
    return [owner.__dict__[name] for owner, name in PATCHED]


def test_stopping_the_last_capture_restores_the_original_methods(moesif_collector: Any) -> None:
    before = originals()
    first = start_capture(moesif_collector.settings())
    second = start_capture(moesif_collector.settings())
    assert all(now is not was for now, was in zip(originals(), before, strict=True))
    first.stop()
    assert all(now is not was for now, was in zip(originals(), before, strict=True))  # second still running
    second.stop()
    assert all(now is was for now, was in zip(originals(), before, strict=True))
    assert current_capture() is None
    second.stop()  # idempotent


def test_calls_go_to_the_most_recent_running_capture(moesif_collector: Any, upstream: str) -> None:
    with LocalCollector(application_id="test-app") as other:
        older = start_capture(moesif_collector.settings())
        newer = start_capture(other.settings())
        assert newer.receiving and not older.receiving
        requests.get(f"{upstream}/to-newer")
        [event] = other.wait_for_events(1)
        assert event["request"]["uri"].endswith("/to-newer")

        newer.stop()
        assert older.receiving
        requests.get(f"{upstream}/to-older")
        [event] = moesif_collector.wait_for_events(1)
        assert event["request"]["uri"].endswith("/to-older")
        assert len(other.events()) == 1


def test_starting_twice_for_one_agent_returns_the_same_capture(moesif_collector: Any, upstream: str) -> None:
    settings = Settings.resolve(moesif_collector.settings())
    agent = Agent(settings, user_agent="test/1")
    first = start_capture(settings, agent=agent)
    assert start_capture(settings, agent=agent) is first
    requests.get(f"{upstream}/once")
    assert agent.flush(5)
    assert len(moesif_collector.events()) == 1
    first.stop()
    assert not agent._closed  # an agent given to start_capture belongs to its owner
    agent.close()


def test_the_collectors_own_traffic_is_never_captured(moesif_collector: Any, upstream: str) -> None:
    capture = start_capture(moesif_collector.settings())
    requests.get(f"{upstream}/app-call")
    assert capture.agent.flush(5)  # our own post (http.client) is not seen by the patches
    # Another Moesif SDK in the process posting with requests/httpx, to the same collector or with its header:
    requests.get(f"{moesif_collector.base_uri}/v1/config", headers={"X-Moesif-Application-Id": "test-app"})
    httpx.get(f"{moesif_collector.base_uri}/v1/rules", headers={"X-Moesif-Application-Id": "test-app"})
    requests.get(f"{upstream}/with-header", headers={"X-Moesif-Application-Id": "other"})
    requests.get(f"{upstream}/last")
    assert capture.agent.flush(5)
    uris = [e["request"]["uri"] for e in moesif_collector.events()]
    assert uris == [f"{upstream}/app-call", f"{upstream}/last"]


def test_a_wrapper_patched_over_ours_stays_working_and_inactive(moesif_collector: Any, upstream: str) -> None:
    capture = start_capture(moesif_collector.settings())
    ours = requests.sessions.Session.__dict__["send"]
    calls: list[str] = []

    def theirs(self: Any, request: Any, **kwargs: Any) -> Any:
        calls.append(request.url)
        return ours(self, request, **kwargs)

    requests.sessions.Session.send = theirs  # type: ignore[method-assign]
    try:
        stop_capture()
        assert requests.sessions.Session.__dict__["send"] is theirs
        assert requests.get(f"{upstream}/after").status_code == 200
        assert calls == [f"{upstream}/after"]
        assert capture.agent.stats()["queued"] == 0
        # Capture started again: the stale wrapper in the chain stays inactive (no double events).
        again = start_capture(moesif_collector.settings())
        requests.get(f"{upstream}/again")
        assert again.agent.flush(5)
        assert [e["request"]["uri"] for e in moesif_collector.events()] == [f"{upstream}/again"]
        again.stop()
    finally:
        requests.sessions.Session.send = ours.__wrapped__  # type: ignore[attr-defined,method-assign]


def test_a_wsgi_app_with_capture_on_logs_its_outgoing_calls(moesif_collector: Any, upstream: str) -> None:
    app = flask.Flask("outgoing")

    @app.get("/proxy")
    def proxy() -> Any:
        return requests.get(f"{upstream}/json").json()

    middleware = MoesifMiddleware(app.wsgi_app, moesif_collector.settings(CAPTURE_OUTGOING_REQUESTS=True))
    app.wsgi_app = middleware  # type: ignore[method-assign]
    assert app.test_client().get("/proxy").json == {"path": "/json", "user": "u-42"}
    events = moesif_collector.wait_for_events(2)
    assert sorted(e["direction"] for e in events) == ["Incoming", "Outgoing"]
    assert current_capture() is not None and current_capture().agent is middleware.agent  # type: ignore[union-attr]


def test_bad_settings_are_refused_before_anything_is_patched() -> None:
    before = originals()
    with pytest.raises(SettingsError, match="APPLICATION_ID"):
        start_capture({"APPLICATION_ID": ""})
    with pytest.raises(SettingsError, match="SKIP_OUTGOING"):
        start_capture({"APPLICATION_ID": "x", "SKIP_OUTGOING": "not callable"})
    assert originals() == before


def test_calls_from_many_threads_are_each_logged_once(moesif_collector: Any, upstream: str) -> None:
    capture = start_capture(moesif_collector.settings())
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with requests.Session() as session, httpx.Client() as client:
                for i in range(5):
                    assert session.get(f"{upstream}/r/{n}/{i}").json()["path"] == f"/r/{n}/{i}"
                    assert client.get(f"{upstream}/h/{n}/{i}").json()["path"] == f"/h/{n}/{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = moesif_collector.wait_for_events(80)
    uris = sorted(e["request"]["uri"].removeprefix(upstream) for e in events)
    assert uris == sorted(
        [f"/r/{n}/{i}" for n in range(8) for i in range(5)] + [f"/h/{n}/{i}" for n in range(8) for i in range(5)]
    )
    assert capture.agent.flush(5)
    assert len(moesif_collector.events()) == 80
