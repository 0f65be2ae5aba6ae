"""The collector's web page and the JSON API it polls."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from moesif_core.collector import LocalCollector


def make_event(path: str, status: int, user: str | None, latency_ms: int = 10, n: int = 0) -> dict[str, Any]:
    return {
        "request": {
            "time": "2026-11-21T18:16:46.000",
            "uri": f"http://app.local{path}?n={n}",
            "verb": "POST",
            "headers": {"authorization": "Bearer x"},
            "body": {"q": n},
            "transfer_encoding": "json",
        },
        "response": {"time": f"2026-11-21T18:16:46.{latency_ms:03d}", "status": status, "headers": {}, "body": None},
        "user_id": user,
        "company_id": "acme",
        "direction": "Incoming",
        "transaction_id": f"tx-{n}",
    }


@pytest.fixture
def collector() -> Iterator[LocalCollector]:
    c = LocalCollector(application_id="test-app").start()
    c.store.add_events(
        [make_event("/a", 200, "ann", 10, 1), make_event("/a", 500, "ann", 30, 2), make_event("/b", 404, "bob", 20, 3)]
    )
    yield c
    c.close()


def fetch(c: LocalCollector, path: str, method: str = "GET") -> tuple[int, str, Any]:
    req = urllib.request.Request(c.base_uri + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
            ctype = resp.headers["Content-Type"]
            return resp.status, ctype, json.loads(body) if ctype == "application/json" else body.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.loads(exc.read())


def test_events_api_lists_rows_oldest_first_with_the_last_id(collector: LocalCollector) -> None:
    status, ctype, body = fetch(collector, "/api/events")
    assert (status, ctype) == (200, "application/json")
    assert [
        (r["id"], r["method"], r["route"], r["status"], r["latency_ms"], r["user_id"], r["company_id"]) for r in body["events"]
    ] == [
        (1, "POST", "/a", 200, 10.0, "ann", "acme"),
        (2, "POST", "/a", 500, 30.0, "ann", "acme"),
        (3, "POST", "/b", 404, 20.0, "bob", "acme"),
    ]
    assert body["last_id"] == 3


def test_events_api_polls_after_an_id(collector: LocalCollector) -> None:
    assert fetch(collector, "/api/events?after=3")[2] == {"events": [], "last_id": 3}
    collector.store.add_events([make_event("/c", 201, "cy", 5, 4)])
    body = fetch(collector, "/api/events?after=3")[2]
    assert [r["route"] for r in body["events"]] == ["/c"] and body["last_id"] == 4


def test_events_api_filters_and_skips_past_non_matching_events(collector: LocalCollector) -> None:
    body = fetch(collector, "/api/events?path=/a&status=5xx")[2]
    assert [r["id"] for r in body["events"]] == [2]
    body = fetch(collector, "/api/events?user=bob&status=404")[2]
    assert [r["id"] for r in body["events"]] == [3]
    body = fetch(collector, "/api/events?user=nobody&after=0")[2]
    assert body == {"events": [], "last_id": 3}


def test_events_api_limit_returns_the_latest_then_pages_forward(collector: LocalCollector) -> None:
    body = fetch(collector, "/api/events?limit=2")[2]
    assert [r["id"] for r in body["events"]] == [2, 3]
    body = fetch(collector, "/api/events?after=0&limit=2")[2]
    assert ([r["id"] for r in body["events"]], body["last_id"]) == ([1, 2], 2)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("after=x", "after must be an integer"),
        ("after=-1", "after must be >= 0"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=5000", "limit must be between"),
        ("status=teapot", "status must be a status such as 404"),
    ],
)
def test_events_api_refuses_bad_parameters(collector: LocalCollector, query: str, fragment: str) -> None:
    status, _, body = fetch(collector, "/api/events?" + query)
    assert status == 400
    assert fragment in body["message"]


def test_event_detail_gives_the_event_exactly_as_received(collector: LocalCollector) -> None:
    status, _, body = fetch(collector, "/api/events/2")
    assert status == 200
    assert body["event"] == make_event("/a", 500, "ann", 30, 2)
    assert body["row"]["id"] == 2 and body["row"]["status"] == 500
    assert fetch(collector, "/api/events/99")[0:1] == (404,)
    assert fetch(collector, "/api/events/abc")[0] == 400


def test_summary_api(collector: LocalCollector) -> None:
    status, _, s = fetch(collector, "/api/summary")
    assert status == 200
    assert (s["total"], s["errors"], s["p50_ms"], s["p95_ms"]) == (3, 2, 20.0, 30.0)
    assert s["error_rate"] == pytest.approx(2 / 3)
    assert s["routes"] == [
        {"method": "POST", "route": "/a", "count": 2, "errors": 1, "error_rate": 0.5, "p50_ms": 10.0, "p95_ms": 30.0},
        {"method": "POST", "route": "/b", "count": 1, "errors": 1, "error_rate": 1.0, "p50_ms": 20.0, "p95_ms": 20.0},
    ]
    assert s["top_users"] == [{"user_id": "ann", "count": 2}, {"user_id": "bob", "count": 1}]


def test_summary_of_an_empty_collector() -> None:
    with LocalCollector() as c:
        assert fetch(c, "/api/summary")[2] == {
            "total": 0,
            "errors": 0,
            "error_rate": 0.0,
            "p50_ms": None,
            "p95_ms": None,
            "routes": [],
            "top_users": [],
        }
    c.close()


def test_page_is_self_contained(collector: LocalCollector) -> None:
    status, ctype, html = fetch(collector, "/")
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    assert "<title>Moesif local collector</title>" in html
    for api in ("/api/events", "/api/summary"):
        assert api in html
    # No resource from elsewhere: no external src/href and no absolute URL fetched by script.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"""fetch\(\s*["'`]https?:""", html)
    assert "innerHTML" not in html  # event content is untrusted


def test_api_is_read_only_and_unknown_api_paths_are_404(collector: LocalCollector) -> None:
    assert fetch(collector, "/api/events", method="DELETE")[0] == 405
    assert fetch(collector, "/api/nothing")[0] == 404


def test_web_requests_need_no_application_id_but_data_posts_still_do(collector: LocalCollector) -> None:
    assert fetch(collector, "/api/summary")[0] == 200
    assert fetch(collector, "/v1/config")[0] == 401
