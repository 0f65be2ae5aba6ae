"""The ``moesif`` pytest plugin, run in throwaway pytest sessions (pytester)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from moesif_core.collector import LocalCollector, assert_event

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _quiet_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


POSTER = """
import json, urllib.request

def post(collector, payload, path="/v1/events/batch", app_id="test-app"):
    req = urllib.request.Request(collector.base_uri + path, data=json.dumps(payload).encode(), method="POST",
                                 headers={"X-Moesif-Application-Id": app_id})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code

def event(path="/orders", status=200, user="u1"):
    return {"request": {"time": "2026-11-21T18:16:46.000", "uri": "http://app.local" + path + "?x=1", "verb": "GET"},
            "response": {"time": "2026-11-21T18:16:46.040", "status": status}, "user_id": user, "direction": "Incoming"}
"""


def test_fixture_gives_a_started_collector_stopped_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        POSTER
        + """
import socket
seen = {}

def test_uses_it(moesif_collector):
    assert moesif_collector.running
    assert moesif_collector.base_uri.startswith("http://127.0.0.1:")
    settings = moesif_collector.settings(LOG_BODY=False)
    assert settings["APPLICATION_ID"] == "test-app" and settings["BASE_URI"] == moesif_collector.base_uri
    assert settings["EVENT_BATCH_TIMEOUT"] == 0.05 and settings["LOG_BODY"] is False
    assert post(moesif_collector, [event()]) == 201
    [ev] = moesif_collector.wait_for_events(1, timeout=5)
    moesif_collector.assert_event(ev, path="/orders", status=200, user_id="u1", method="get", direction="Incoming")
    seen["port"] = moesif_collector.port

def test_it_was_stopped():
    try:
        socket.create_connection(("127.0.0.1", seen["port"]), timeout=2).close()
    except ConnectionRefusedError:
        return
    raise AssertionError("the collector still listens after its test")

def test_each_test_gets_a_fresh_one(moesif_collector):
    assert moesif_collector.events() == [] and moesif_collector.requests == []
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_assert_event_failure_says_what_differs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        POSTER
        + """
def test_mismatch(moesif_collector):
    post(moesif_collector, [event(path="/cart", status=503, user="bob")])
    [ev] = moesif_collector.wait_for_events(1, timeout=5)
    moesif_collector.assert_event(ev, path="/orders", status=200, user_id="bob")
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the event does not match:",
            "*  path: expected '/orders', got '/cart'",
            "*  status: expected 200, got 503",
            "*  event: GET http://app.local/cart?x=1 -> 503 user=bob company=- direction=Incoming",
        ]
    )
    result.stdout.no_fnmatch_line("*user_id: expected*")


def test_wait_timeout_failure_says_how_many_arrived(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        POSTER
        + """
def test_too_few(moesif_collector):
    post(moesif_collector, [event()])
    post(moesif_collector, [event()], app_id="wrong")
    moesif_collector.wait_for_events(2, timeout=0.2)
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected at least 2 events within 0.2 s, but 1 arrived*POST /v1/events/batch -> 401*"])


def test_marker_sets_config_rules_and_application_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        POSTER
        + """
import json, urllib.request, pytest

@pytest.mark.moesif_collector(application_id=None, config={"sample_rate": 10}, config_etag="e1",
                              rules=[{"_id": "r1"}], strict_events=False)
def test_configured(moesif_collector):
    req = urllib.request.Request(moesif_collector.base_uri + "/v1/config", headers={"X-Moesif-Application-Id": "any"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read()) == {"sample_rate": 10}
        assert resp.headers["X-Moesif-Config-ETag"] == "e1"
    req = urllib.request.Request(moesif_collector.base_uri + "/v1/rules", headers={"X-Moesif-Application-Id": "x"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read()) == [{"_id": "r1"}]
    assert post(moesif_collector, [{"toy": 1}], app_id="whatever") == 201
    assert moesif_collector.settings()["APPLICATION_ID"] == "local-collector"
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_marker_with_unknown_arguments_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest

@pytest.mark.moesif_collector(sample_rate=5)
def test_bad(moesif_collector):
    pass
""")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*@pytest.mark.moesif_collector got unknown arguments*sample_rate*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.moesif_collector(*"])


def test_recorder_fixture_records_calls_of_a_middleware(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import sys

from moesif_core.wsgi import MoesifMiddleware

def test_plugin_loaded_without_the_testing_module():
    assert "moesif_core.pytest_plugin" in sys.modules
    assert "moesif_core.testing" not in sys.modules

def test_records(moesif_recorder):
    def hello(environ, start_response):
        start_response("200 OK", [])
        return [b"hi"]

    app = MoesifMiddleware(hello, moesif_recorder.settings, agent=moesif_recorder)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/hi", "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    response = app(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(response) == b"hi"
    [record] = moesif_recorder.records
    assert (record.method, record.path, record.status) == ("GET", "/hi", 200)
""")
    # In a subprocess: this session has imported moesif_core.testing already.
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_fixture_is_available_here_too(moesif_collector: LocalCollector) -> None:
    req = urllib.request.Request(
        moesif_collector.base_uri + "/v1/users",
        data=json.dumps({"user_id": "u9"}).encode(),
        method="POST",
        headers={"X-Moesif-Application-Id": "test-app"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 201
    assert moesif_collector.wait_for_users(1, timeout=5) == [{"user_id": "u9"}]


@pytest.mark.parametrize(
    ("event", "expected", "message"),
    [
        ("not an event", {"status": 200}, "expected an event (a dict), got str"),
        (
            {"request": {"verb": "POST", "uri": "/x"}, "response": {"status": 200}},
            {"blocked_by": "r1"},
            "blocked_by: expected 'r1', got (absent)",
        ),
        ({"request": {"verb": "POST", "uri": "/x"}}, {"method": "GET"}, "method: expected 'GET', got 'POST'"),
    ],
)
def test_assert_event_messages(event: Any, expected: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError) as info:
        assert_event(event, **expected)
    assert message in str(info.value)
