"""The local collector's HTTP API: what it stores, what it refuses, and its fault knobs, over real sockets."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from moesif_core.collector import ConfigFileError, LocalCollector

APP_ID = "test-app"


def make_event(
    path: str = "/items",
    status: int = 200,
    user_id: str | None = "u1",
    *,
    latency_ms: int = 120,
    verb: str = "GET",
    direction: str = "Incoming",
    n: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "request": {
            "time": "2026-11-21T18:16:46.000",
            "uri": f"http://app.local{path}?n={n}",
            "verb": verb,
            "ip_address": "127.0.0.1",
            "headers": {"accept": "application/json"},
            "body": None,
            "transfer_encoding": None,
            "api_version": None,
        },
        "response": {
            "time": f"2026-11-21T18:16:46.{latency_ms:03d}",
            "status": status,
            "headers": {"content-type": "application/json"},
            "body": {"n": n},
            "transfer_encoding": "json",
        },
        "user_id": user_id,
        "company_id": None,
        "session_token": None,
        "metadata": None,
        "tags": None,
        "direction": direction,
        "weight": 1,
        "blocked_by": None,
        "transaction_id": f"tx-{n}",
        **extra,
    }


def post(
    base_uri: str,
    path: str,
    body: bytes | Any,
    *,
    app_id: str | None = APP_ID,
    gzipped: bool = False,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; returns (status, lower-cased headers, body)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json; charset=utf-8"}
    if app_id is not None:
        sent["X-Moesif-Application-Id"] = app_id
    if gzipped:
        raw = gzip.compress(raw)
        sent["Content-Encoding"] = "gzip"
    sent.update(headers or {})
    host, port = base_uri.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=raw if method != "GET" else None, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get(base_uri: str, path: str, *, app_id: str | None = APP_ID) -> tuple[int, dict[str, str], bytes]:
    return post(base_uri, path, b"", app_id=app_id, method="GET")


@pytest.fixture
def collector() -> Any:
    c = LocalCollector(application_id=APP_ID)
    with c:
        yield c
    c.close()


# -- accepted input ----------------------------------------------------------------------------------


def test_gzip_batch_is_stored_exactly_as_received_in_arrival_order(collector: LocalCollector) -> None:
    first = [make_event(n=i) for i in range(3)]
    second = [make_event(n=i) for i in range(3, 5)]
    for batch in (first, second):
        status, headers, body = post(collector.base_uri, "/v1/events/batch", batch, gzipped=True)
        assert (status, body) == (201, b"")
        assert headers["x-moesif-config-etag"] == collector.config_etag
    assert collector.wait_for_events(5, timeout=1) == first + second


def test_plain_batch_and_single_event_are_both_stored(collector: LocalCollector) -> None:
    assert post(collector.base_uri, "/v1/events/batch", [make_event(n=1)])[0] == 201
    assert post(collector.base_uri, "/v1/events", make_event(n=2))[0] == 201
    assert [e["transaction_id"] for e in collector.events()] == ["tx-1", "tx-2"]


def test_events_filter_by_path_status_user_and_direction(collector: LocalCollector) -> None:
    batch = [make_event("/a", 200, "ann"), make_event("/b", 503, "bob"), make_event("/a", 404, "bob", direction="Outgoing")]
    assert post(collector.base_uri, "/v1/events/batch", batch, gzipped=True)[0] == 201
    assert collector.events(path="/a") == [batch[0], batch[2]]
    assert collector.events(status=503) == [batch[1]]
    assert collector.events(status="4xx") == [batch[2]]
    assert collector.events(user_id="bob") == batch[1:]
    assert collector.events(direction="outgoing") == [batch[2]]
    assert collector.events(path="/a", user_id="bob") == [batch[2]]
    assert collector.wait_for_events(1, timeout=1, path="/b") == [batch[1]]


@pytest.mark.parametrize(
    ("path", "payload", "reader"),
    [
        ("/v1/users", {"user_id": "u1", "metadata": {"plan": "pro"}}, "users"),
        ("/v1/users/batch", [{"user_id": "u1"}, {"user_id": "u2"}], "users"),
        ("/v1/companies", {"company_id": "c1"}, "companies"),
        ("/v1/companies/batch", [{"company_id": "c1"}, {"company_id": "c2", "company_domain": "x.io"}], "companies"),
        ("/v1/subscriptions", {"subscription_id": "s1", "company_id": "c1", "status": "active"}, "subscriptions"),
        ("/v1/subscriptions/batch", [{"subscription_id": "s1", "company_id": "c1"}], "subscriptions"),
    ],
)
def test_users_companies_and_subscriptions_are_stored(collector: LocalCollector, path: str, payload: Any, reader: str) -> None:
    status, _, _ = post(collector.base_uri, path, payload, gzipped=path.endswith("batch"))
    assert status == 201
    expected = payload if isinstance(payload, list) else [payload]
    assert getattr(collector, f"wait_for_{reader}")(len(expected), timeout=1) == expected
    assert getattr(collector, reader)() == expected
    assert collector.events() == []


def test_chunked_request_body_is_read(collector: LocalCollector) -> None:
    body = json.dumps([make_event(n=7)]).encode()
    conn = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    conn.request(
        "POST",
        "/v1/events/batch",
        body=iter([body[:10], body[10:]]),
        headers={"X-Moesif-Application-Id": APP_ID, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    assert conn.getresponse().status == 201
    conn.close()
    assert collector.events()[0]["transaction_id"] == "tx-7"


def test_connection_is_kept_alive_between_posts(collector: LocalCollector) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    peers = []
    for n in range(3):
        conn.request("POST", "/v1/events/batch", body=json.dumps([make_event(n=n)]), headers={"X-Moesif-Application-Id": APP_ID})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201
        assert not resp.will_close
        assert conn.sock is not None
        peers.append(conn.sock.getsockname())
    conn.close()
    assert len(set(peers)) == 1, "each post opened a new connection"
    assert len(collector.events()) == 3


def test_every_request_is_recorded(collector: LocalCollector) -> None:
    post(collector.base_uri, "/v1/events/batch", [make_event()], gzipped=True, headers={"User-Agent": "moesif-core/1.0"})
    get(collector.base_uri, "/v1/config", app_id="wrong")
    first, second = collector.requests
    assert (first.method, first.path, first.status, first.fault) == ("POST", "/v1/events/batch", 201, None)
    assert first.headers["user-agent"] == "moesif-core/1.0"
    assert first.headers["content-encoding"] == "gzip"
    assert first.body_size == int(first.headers["content-length"])
    assert first.time <= second.time
    assert (second.method, second.path, second.status) == ("GET", "/v1/config", 401)


# -- refused input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "extra_headers", "status", "fragment"),
    [
        ("/v1/events/batch", b'[{"request": ', {}, 400, "not valid JSON"),
        ("/v1/events/batch", b"", {}, 400, "empty"),
        ("/v1/events/batch", b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
        ("/v1/events/batch", gzip.compress(b"[]")[:-12], {"Content-Encoding": "gzip"}, 400, "truncated"),
        ("/v1/events/batch", b"[]", {"Content-Encoding": "br"}, 415, "not supported"),
        ("/v1/events/batch", b'{"request": {}}', {}, 400, "must be a JSON array"),
        ("/v1/events/batch", b"[1]", {}, 400, "events[0] must be a JSON object"),
        ("/v1/events/batch", json.dumps([make_event(), {"response": {}}]).encode(), {}, 400, "events[1].request is required"),
        ("/v1/events/batch", json.dumps([make_event(status="200")]).encode(), {}, 400, "response.status must be an integer"),
        ("/v1/events", b"[]", {}, 400, "/v1/events/batch"),
        ("/v1/users", b'{"metadata": {}}', {}, 400, "user.user_id is required"),
        ("/v1/users/batch", b'[{"user_id": "a"}, {"user_id": ""}]', {}, 400, "users[1].user_id"),
        ("/v1/companies", b'{"company_id": 5}', {}, 400, "company.company_id"),
        ("/v1/subscriptions", b'{"subscription_id": "s"}', {}, 400, "subscription.company_id"),
        ("/v1/events/batch", b"[]", {"Content-Length": "abc"}, 400, "Content-Length"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    collector: LocalCollector, path: str, body: bytes, extra_headers: dict[str, str], status: int, fragment: str
) -> None:
    got_status, headers, answer = post(collector.base_uri, path, body, headers=extra_headers)
    assert got_status == status
    assert headers["content-type"] == "application/json"
    message = json.loads(answer)["message"]
    assert fragment in message
    assert collector.events() == [] and collector.users() == [] and collector.companies() == []
    assert collector.requests[-1].status == status


def test_event_with_a_wrong_type_names_the_field(collector: LocalCollector) -> None:
    event = make_event()
    event["request"]["verb"] = 5
    status, _, body = post(collector.base_uri, "/v1/events/batch", [make_event(), event])
    assert status == 400
    assert json.loads(body) == {
        "error": "bad_event",
        "message": "events[1].request.verb is required and must be a non-empty string",
    }


def test_lenient_collector_accepts_toy_events() -> None:
    with LocalCollector(application_id=APP_ID, strict_events=False) as c:
        assert post(c.base_uri, "/v1/events/batch", [{"n": 1}])[0] == 201
        assert post(c.base_uri, "/v1/events/batch", [1])[0] == 400
        assert c.events() == [{"n": 1}]


@pytest.mark.parametrize("gzipped", [False, True])
def test_oversize_body_gets_413_and_stores_nothing(gzipped: bool) -> None:
    with LocalCollector(application_id=APP_ID, max_body_bytes=4000) as c:
        batch = [make_event(n=i) for i in range(20)]  # ~10 KB of JSON, far less gzipped
        status, _, body = post(c.base_uri, "/v1/events/batch", batch, gzipped=gzipped)
        assert status == 413
        assert "4000" in json.loads(body)["message"]
        assert c.events() == []
        assert post(c.base_uri, "/v1/events/batch", batch[:1], gzipped=gzipped)[0] == 201


def test_default_body_limit_is_50_megabytes() -> None:
    c = LocalCollector()
    assert c.max_body_bytes == 50 * 1024 * 1024
    c.close()


@pytest.mark.parametrize(
    ("sent", "error"),
    [(None, "missing_application_id"), ("", "missing_application_id"), ("someone-else", "wrong_application_id")],
)
def test_missing_or_wrong_application_id_gets_401(collector: LocalCollector, sent: str | None, error: str) -> None:
    for path, method in (("/v1/events/batch", "POST"), ("/v1/users", "POST"), ("/v1/config", "GET"), ("/v1/rules", "GET")):
        payload: Any = [make_event()] if path.endswith("batch") else {"user_id": "u"}
        status, _, body = post(collector.base_uri, path, payload, app_id=sent, method=method)
        assert status == 401, path
        answer = json.loads(body)
        assert answer["error"] == error
        assert "X-Moesif-Application-Id" in answer["message"]
    assert collector.events() == [] and collector.users() == []


def test_wrong_application_id_message_does_not_echo_long_ids_in_full(collector: LocalCollector) -> None:
    _, _, body = post(collector.base_uri, "/v1/events/batch", [make_event()], app_id="eyJhbGciOiJIUzI1NiJ9.secret-part")
    assert "secret-part" not in body.decode()


def test_application_id_none_accepts_any_non_empty_id() -> None:
    with LocalCollector(application_id=None) as c:
        assert post(c.base_uri, "/v1/events/batch", [make_event()], app_id="anything")[0] == 201
        assert post(c.base_uri, "/v1/events/batch", [make_event()], app_id=None)[0] == 401
        assert len(c.events()) == 1


def test_unknown_path_is_404_and_wrong_method_is_405(collector: LocalCollector) -> None:
    status, _, body = post(collector.base_uri, "/v2/events", [make_event()])
    assert status == 404 and "/v2/events" in json.loads(body)["message"]
    assert post(collector.base_uri, "/v1/config", {"x": 1})[0] == 405
    assert get(collector.base_uri, "/v1/events/batch")[0] == 405


# -- config and rules --------------------------------------------------------------------------------


def test_default_config_samples_everything(collector: LocalCollector) -> None:
    status, headers, body = get(collector.base_uri, "/v1/config")
    assert status == 200
    assert json.loads(body)["sample_rate"] == 100
    assert headers["x-moesif-config-etag"] == collector.config_etag
    status, _, body = get(collector.base_uri, "/v1/rules")
    assert (status, json.loads(body)) == (200, [])


def test_set_config_serves_it_with_the_given_etag_and_event_posts_carry_it(collector: LocalCollector) -> None:
    config = {"sample_rate": 50, "user_sample_rate": {"u1": 0}}
    assert collector.set_config(config, etag="v2") == "v2"
    status, headers, body = get(collector.base_uri, "/v1/config")
    assert (status, json.loads(body), headers["x-moesif-config-etag"]) == (200, config, "v2")
    assert post(collector.base_uri, "/v1/events/batch", [make_event()], gzipped=True)[1]["x-moesif-config-etag"] == "v2"


def test_automatic_etag_follows_the_content(collector: LocalCollector) -> None:
    a = collector.set_config({"sample_rate": 10, "regex_config": []})
    b = collector.set_config({"regex_config": [], "sample_rate": 10})
    c = collector.set_config({"sample_rate": 20})
    assert a == b != c
    assert get(collector.base_uri, "/v1/config")[1]["x-moesif-config-etag"] == c


def test_set_rules_serves_them(collector: LocalCollector) -> None:
    rules = [
        {
            "_id": "r1",
            "type": "regex",
            "block": True,
            "applied_to": "matching",
            "regex_config": [],
            "response": {"status": 403, "headers": {}, "body": {"error": "blocked"}},
        }
    ]
    collector.set_rules(rules)
    status, _, body = get(collector.base_uri, "/v1/rules")
    assert (status, json.loads(body)) == (200, rules)


def test_config_file_is_served_and_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "collector.json"
    path.write_text(json.dumps({"config": {"sample_rate": 25}, "rules": [{"_id": "r1"}]}))
    with LocalCollector(application_id=APP_ID, config_file=path) as c:
        _, headers, body = get(c.base_uri, "/v1/config")
        assert json.loads(body) == {"sample_rate": 25}
        first_etag = headers["x-moesif-config-etag"]
        assert json.loads(get(c.base_uri, "/v1/rules")[2]) == [{"_id": "r1"}]
        path.write_text(json.dumps({"config": {"sample_rate": 75}}))
        stat = path.stat()
        import os

        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))  # a coarse clock must not hide the edit
        _, headers, body = get(c.base_uri, "/v1/config")
        assert json.loads(body) == {"sample_rate": 75}
        assert headers["x-moesif-config-etag"] != first_etag
        assert json.loads(get(c.base_uri, "/v1/rules")[2]) == [{"_id": "r1"}]  # absent key: last rules stay
        path.write_text("{broken")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 20_000_000))
        assert json.loads(get(c.base_uri, "/v1/config")[2]) == {"sample_rate": 75}  # a broken edit keeps the last good one


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{nope", "not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"config": []}', "'config' must be an object"),
        ('{"rules": {}}', "'rules' must be an array"),
        ('{"rules": [1]}', "rules[0]"),
        ('{"confg": {}}', "unknown keys"),
        ('{"config": {"sample_rate": 300}}', "sample_rate"),
    ],
)
def test_bad_config_file_is_refused_with_a_clear_message(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigFileError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        LocalCollector(config_file=path)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read config file"):
        LocalCollector(config_file=tmp_path / "absent.json")


# -- fault knobs -------------------------------------------------------------------------------------


def test_fail_next_answers_the_given_status_and_headers_then_recovers(collector: LocalCollector) -> None:
    collector.fail_next(2, status=429, headers={"Retry-After": "1"}, body=b'{"error": "slow down"}')
    for n in range(2):
        status, headers, body = post(collector.base_uri, "/v1/events/batch", [make_event(n=n)], gzipped=True)
        assert (status, headers["retry-after"], body) == (429, "1", b'{"error": "slow down"}')
    assert collector.events() == []
    assert post(collector.base_uri, "/v1/events/batch", [make_event(n=9)], gzipped=True)[0] == 201
    assert [e["transaction_id"] for e in collector.events()] == ["tx-9"]
    assert [r.fault for r in collector.requests] == ["fail", "fail", None]


def test_faults_apply_to_data_posts_only_not_to_config(collector: LocalCollector) -> None:
    collector.fail_next(1, status=401)
    assert get(collector.base_uri, "/v1/config")[0] == 200
    assert post(collector.base_uri, "/v1/users", {"user_id": "u"})[0] == 401
    assert post(collector.base_uri, "/v1/users", {"user_id": "u"})[0] == 201
    assert collector.pending_faults == 0


def test_faults_queue_in_order(collector: LocalCollector) -> None:
    collector.fail_next(1, status=503)
    collector.fail_next(1, status=401)
    assert [post(collector.base_uri, "/v1/events/batch", [make_event()])[0] for _ in range(3)] == [503, 401, 201]


def test_hang_next_never_answers_until_stop_and_stores_nothing() -> None:
    c = LocalCollector(application_id=APP_ID).start()
    c.hang_next()
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=0.3)
    conn.request("POST", "/v1/events/batch", body=json.dumps([make_event()]), headers={"X-Moesif-Application-Id": APP_ID})
    with pytest.raises(TimeoutError):
        conn.getresponse()
    [hung] = c.wait_for_requests(1, timeout=2)
    assert (hung.status, hung.fault) == (None, "hang")
    # Another client is served meanwhile, and the hung one ends when the collector stops.
    assert post(c.base_uri, "/v1/events/batch", [make_event(n=1)])[0] == 201
    conn.sock.settimeout(5)  # type: ignore[union-attr]
    c.stop()
    assert conn.sock.recv(1) == b""  # type: ignore[union-attr]
    conn.close()
    assert [e["transaction_id"] for e in c.events()] == ["tx-1"]
    c.close()


def test_close_mid_response_next_cuts_the_answer_and_stores_nothing(collector: LocalCollector) -> None:
    collector.close_mid_response_next()
    conn = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    conn.request("POST", "/v1/events/batch", body=json.dumps([make_event()]), headers={"X-Moesif-Application-Id": APP_ID})
    resp = conn.getresponse()
    assert resp.status == 201
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    assert collector.events() == []
    assert collector.requests[-1].fault == "close"
    assert post(collector.base_uri, "/v1/events/batch", [make_event()])[0] == 201


def test_delay_holds_every_answer_back(collector: LocalCollector) -> None:
    collector.delay = 2.0
    conn = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=0.2)
    conn.request("GET", "/v1/config", headers={"X-Moesif-Application-Id": APP_ID})
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    collector.delay = 0.0
    assert get(collector.base_uri, "/v1/config")[0] == 200


def test_clear_forgets_data_requests_and_faults(collector: LocalCollector) -> None:
    post(collector.base_uri, "/v1/events/batch", [make_event()])
    post(collector.base_uri, "/v1/users", {"user_id": "u"})
    collector.fail_next(3)
    collector.clear()
    assert (collector.events(), collector.users(), collector.requests, collector.pending_faults) == ([], [], [], 0)
    assert post(collector.base_uri, "/v1/events/batch", [make_event()])[0] == 201


# -- lifecycle and durability --------------------------------------------------------------------------


def test_restart_rebinds_the_same_port_and_keeps_what_was_stored() -> None:
    c = LocalCollector(application_id=APP_ID).start()
    port = c.port
    assert post(c.base_uri, "/v1/events/batch", [make_event(n=1)])[0] == 201
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/v1/rules", headers={"X-Moesif-Application-Id": APP_ID})
    idle.getresponse().read()
    c.stop()
    assert not c.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert idle.sock is not None and idle.sock.recv(1) == b""  # the idle keep-alive connection was cut too
    idle.close()
    c.start()
    assert c.port == port and c.base_uri == f"http://127.0.0.1:{port}"
    assert post(c.base_uri, "/v1/events/batch", [make_event(n=2)])[0] == 201
    assert [e["transaction_id"] for e in c.events()] == ["tx-1", "tx-2"]
    c.close()


def test_stop_and_start_are_idempotent() -> None:
    c = LocalCollector()
    c.stop()
    c.start()
    c.start()
    assert get(c.base_uri, "/v1/config")[0] == 200
    c.stop()
    c.stop()
    c.close()


def test_concurrent_posts_lose_nothing(collector: LocalCollector) -> None:
    answers: list[int] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for b in range(10):
            batch = [make_event(n=worker * 1000 + b * 10 + i) for i in range(10)]
            status = post(collector.base_uri, "/v1/events/batch", batch, gzipped=True)[0]
            with lock:
                answers.append(status)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [201] * 160
    ids = [e["transaction_id"] for e in collector.wait_for_events(1600, timeout=5)]
    assert len(ids) == 1600
    assert set(ids) == {f"tx-{w * 1000 + k}" for w in range(16) for k in range(100)}


def test_file_database_keeps_everything_accepted_after_close(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with LocalCollector(application_id=APP_ID, db_path=db) as c:
        assert post(c.base_uri, "/v1/events/batch", [make_event(n=i) for i in range(50)], gzipped=True)[0] == 201
        assert post(c.base_uri, "/v1/companies", {"company_id": "c1"})[0] == 201
    c.close()
    reopened = LocalCollector(db_path=db)
    assert [e["transaction_id"] for e in reopened.events()] == [f"tx-{i}" for i in range(50)]
    assert reopened.companies() == [{"company_id": "c1"}]
    reopened.close()


def test_wait_for_events_says_how_many_arrived_on_timeout(collector: LocalCollector) -> None:
    post(collector.base_uri, "/v1/events/batch", [make_event()])
    collector.fail_next()
    post(collector.base_uri, "/v1/events/batch", [make_event()])
    with pytest.raises(AssertionError) as info:
        collector.wait_for_events(3, timeout=0.2)
    message = str(info.value)
    assert "expected at least 3 events within 0.2 s, but 1 arrived" in message
    assert "POST /v1/events/batch -> 500" in message


def test_wait_for_events_returns_as_soon_as_enough_arrive(collector: LocalCollector) -> None:
    timer = threading.Timer(0.1, lambda: post(collector.base_uri, "/v1/events/batch", [make_event(), make_event()]))
    timer.start()
    assert len(collector.wait_for_events(2, timeout=10)) == 2
    timer.join()


def test_listening_beyond_loopback_needs_explicit_permission() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        LocalCollector(host="0.0.0.0")
    LocalCollector(host="0.0.0.0", allow_remote=True).close()


def test_settings_point_the_middleware_at_the_collector(collector: LocalCollector) -> None:
    settings = collector.settings(LOG_BODY=False)
    assert settings == {"APPLICATION_ID": APP_ID, "BASE_URI": collector.base_uri, "EVENT_BATCH_TIMEOUT": 0.05, "LOG_BODY": False}
    from moesif_core.settings import Settings

    assert Settings.resolve(settings).base_uri == collector.base_uri


def test_nothing_slow_happens_in_wait_helpers_when_data_is_already_there(collector: LocalCollector) -> None:
    post(collector.base_uri, "/v1/users", {"user_id": "u"})
    started = time.monotonic()
    assert collector.wait_for_users(1, timeout=30) == [{"user_id": "u"}]
    assert collector.wait_for_companies(0, timeout=30) == []
    assert time.monotonic() - started < 30
