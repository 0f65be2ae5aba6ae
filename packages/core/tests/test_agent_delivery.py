"""The delivery engine against a real HTTP collector on 127.0.0.1: retries, faults, limits, ids,
served config and sampling, fork and exit.

A stand-in event builder keeps these tests about delivery rather than event contents (the event
builder's own tests cover those): it makes the smallest event the local collector accepts,
carrying the record's transaction id (to check exactly-once delivery) and weight.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from moesif_core import request_path
from moesif_core.agent import Agent
from moesif_core.collector import LocalCollector
from moesif_core.record import RawExchange
from moesif_core.settings import Settings

# Small timeouts and backoff so a test that exercises retries takes a fraction of a second.
FAST: dict[str, Any] = {
    "EVENT_BATCH_TIMEOUT": 0.05,
    "RETRY_BACKOFF": 0.02,
    "RETRY_BACKOFF_MAX": 0.2,
    "MAX_RETRIES": 60,
    "HTTP_CONNECT_TIMEOUT": 0.5,
    "HTTP_READ_TIMEOUT": 1.0,
    "SHUTDOWN_TIMEOUT": 10.0,
    "CONFIG_REFRESH_INTERVAL": 3600.0,
}


def stub_build(record: RawExchange) -> dict[str, Any]:
    return {
        "request": {"time": "2026-01-01T00:00:00.000", "uri": f"http://test{record.path}", "verb": record.method},
        "response": {"time": "2026-01-01T00:00:00.001", "status": record.status},
        "transaction_id": record.transaction_id,
        "weight": record.weight,
        "direction": "Incoming",
    }


def make_record(tag: str, index: int, *, path: str = "/items", body_size: int = 0) -> RawExchange:
    record = RawExchange()
    record.method = "GET"
    record.path = path
    record.status = 200
    record.transaction_id = f"{tag}-{index}"
    if body_size:
        # A distinct object per record, so memory measurements see real per-record bytes.
        record.request_body = index.to_bytes(8, "big") + b"q" * (body_size - 8)
        record.response_body = index.to_bytes(8, "big") + b"r" * (body_size - 8)
    return record


def make_agent(
    base_uri: str, application_id: str = "test-app", *, build: Callable[[RawExchange], Any] | None = stub_build, **extra: Any
) -> Agent:
    settings = Settings.resolve({"APPLICATION_ID": application_id, "BASE_URI": base_uri, **FAST, **extra})
    return Agent(settings, user_agent="moesif-core-tests/0", build=build)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def transaction_ids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(event["transaction_id"] for event in events)


EVENTS = "/v1/events/batch"


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    made: list[Agent] = []
    yield made
    for agent in made:
        agent.close(0.5)


def event_posts(collector: LocalCollector) -> list[Any]:
    return [r for r in collector.requests if r.method == "POST" and r.path == EVENTS]


def test_events_are_batched_gzipped_and_sent_with_the_contract_headers(
    moesif_collector: LocalCollector, agents: list[Agent]
) -> None:
    agent = make_agent(moesif_collector.base_uri, BATCH_SIZE=50, EVENT_BATCH_TIMEOUT=5.0)
    agents.append(agent)
    for i in range(120):
        assert agent.submit(make_record("batched", i))
    assert agent.flush(10)
    events = moesif_collector.wait_for_events(120)
    assert transaction_ids(events) == sorted(f"batched-{i}" for i in range(120))
    posts = event_posts(moesif_collector)
    assert len(posts) == 3  # 50 + 50 full batches, then the flush sends the last 20 at once
    for post in posts:
        assert post.headers["x-moesif-application-id"] == "test-app"
        assert post.headers["content-type"] == "application/json; charset=utf-8"
        assert post.headers["content-encoding"] == "gzip"
        assert post.headers["user-agent"] == "moesif-core-tests/0"
    stats = agent.stats()
    assert stats["sent"] == 120
    assert stats["batches_sent"] == 3
    assert stats["queued"] == 120
    assert stats["in_queue"] == 0


def test_every_event_arrives_once_after_the_collector_was_down_and_came_back(agents: list[Agent]) -> None:
    collector = LocalCollector()
    collector.start()
    base_uri = collector.base_uri
    collector.stop()
    try:
        agent = make_agent(base_uri, MAX_RETRIES=1000)
        agents.append(agent)
        for i in range(300):
            assert agent.submit(make_record("outage", i))
        wait_until(lambda: agent.stats()["retried"] >= 3, what="retries while the collector is down")
        collector.start()
        assert agent.flush(15)
        events = collector.wait_for_events(300)
        assert transaction_ids(events) == sorted(f"outage-{i}" for i in range(300))
        stats = agent.stats()
        assert stats["sent"] == 300
        assert stats["dropped_retries_exhausted"] == 0
    finally:
        collector.close()


def test_server_errors_are_retried_until_accepted(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    moesif_collector.fail_next(2, 500)
    agent = make_agent(moesif_collector.base_uri)
    agents.append(agent)
    for i in range(5):
        agent.submit(make_record("five-hundred", i))
    assert agent.flush(10)
    assert transaction_ids(moesif_collector.wait_for_events(5)) == [f"five-hundred-{i}" for i in range(5)]
    assert [p.status for p in event_posts(moesif_collector)] == [500, 500, 201]
    assert agent.stats()["retried"] == 2


def test_throttled_post_waits_as_long_as_retry_after_says(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    moesif_collector.fail_next(1, 429, {"Retry-After": "1"})
    agent = make_agent(moesif_collector.base_uri, RETRY_BACKOFF=0.01, RETRY_BACKOFF_MAX=5.0)
    agents.append(agent)
    agent.submit(make_record("throttled", 0))
    assert agent.flush(10)
    moesif_collector.wait_for_events(1)
    throttled, accepted = event_posts(moesif_collector)
    assert (throttled.status, accepted.status) == (429, 201)
    # Without Retry-After the first retry would come within RETRY_BACKOFF (10 ms).
    assert accepted.time - throttled.time >= 0.9


def test_a_collector_that_never_answers_costs_one_read_timeout(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    moesif_collector.hang_next(1)
    agent = make_agent(moesif_collector.base_uri, HTTP_READ_TIMEOUT=0.3, EVENT_WORKER_COUNT=1)
    agents.append(agent)
    for i in range(10):
        agent.submit(make_record("hung", i))
    assert agent.flush(10)
    assert transaction_ids(moesif_collector.wait_for_events(10)) == sorted(f"hung-{i}" for i in range(10))
    posts = event_posts(moesif_collector)
    assert posts[0].fault == "hang"
    assert posts[-1].status == 201
    # Later events flow normally over a fresh connection.
    for i in range(10, 20):
        agent.submit(make_record("hung", i))
    assert agent.flush(10)
    assert len(moesif_collector.wait_for_events(20)) == 20


def test_a_response_cut_in_the_middle_is_retried(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    moesif_collector.close_mid_response_next(1)
    agent = make_agent(moesif_collector.base_uri)
    agents.append(agent)
    for i in range(3):
        agent.submit(make_record("cut", i))
    assert agent.flush(10)
    assert transaction_ids(moesif_collector.wait_for_events(3)) == [f"cut-{i}" for i in range(3)]
    assert agent.stats()["retried"] >= 1


def test_retries_run_out_and_the_batch_is_dropped_and_counted(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    moesif_collector.fail_next(3, 503)
    agent = make_agent(moesif_collector.base_uri, MAX_RETRIES=2)
    agents.append(agent)
    for i in range(4):
        agent.submit(make_record("exhausted", i))
    assert not agent.flush(10)
    stats = agent.stats()
    assert stats["dropped_retries_exhausted"] == 4
    assert stats["retried"] == 2
    assert stats["sent"] == 0


def test_a_rejected_batch_is_dropped_with_one_log_line(
    moesif_collector: LocalCollector, agents: list[Agent], caplog: pytest.LogCaptureFixture
) -> None:
    moesif_collector.fail_next(2, 400, body=b'{"error": "bad batch"}')
    agent = make_agent(moesif_collector.base_uri)
    agents.append(agent)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        for i in range(2):
            agent.submit(make_record("rejected", i))
            assert not agent.flush(10)
    assert agent.stats()["dropped_rejected"] == 2
    assert agent.stats()["retried"] == 0
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1
    assert "HTTP 400" in lines[0]


@pytest.mark.moesif_collector(application_id="the-right-application-id")
def test_a_wrong_application_id_gets_one_clear_warning(
    moesif_collector: LocalCollector, agents: list[Agent], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "the-wrong-application-id"
    agent = make_agent(moesif_collector.base_uri, wrong)
    agents.append(agent)
    with caplog.at_level(logging.WARNING, logger="moesif"):
        for i in range(3):
            agent.submit(make_record("unauthorized", i))
            assert not agent.flush(10)
        wait_until(lambda: any(r.path == "/v1/config" for r in moesif_collector.requests), what="the config fetch")
    stats = agent.stats()
    assert stats["dropped_unauthorized"] == 3
    assert stats["retried"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "APPLICATION_ID is wrong" in warnings[0]
    assert "the-...n-id" in warnings[0]
    assert all(wrong not in message for message in caplog.messages)


def test_two_agents_deliver_to_their_own_ids_and_collectors(agents: list[Agent]) -> None:
    with (
        LocalCollector(application_id="first-application-id") as first,
        LocalCollector(application_id="second-application-id") as second,
    ):
        agent_one = make_agent(first.base_uri, "first-application-id")
        agent_two = make_agent(second.base_uri, "second-application-id")
        agents.extend([agent_one, agent_two])
        for i in range(10):
            agent_one.submit(make_record("one", i))
            agent_two.submit(make_record("two", i))
        assert agent_one.flush(10)
        assert agent_two.flush(10)
        assert transaction_ids(first.wait_for_events(10)) == sorted(f"one-{i}" for i in range(10))
        assert transaction_ids(second.wait_for_events(10)) == sorted(f"two-{i}" for i in range(10))
        assert {r.headers["x-moesif-application-id"] for r in first.requests} == {"first-application-id"}
        assert {r.headers["x-moesif-application-id"] for r in second.requests} == {"second-application-id"}
        assert all(r.status in (200, 201) for r in [*first.requests, *second.requests])


def test_a_failing_builder_costs_only_its_event(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    def flaky_build(record: RawExchange) -> dict[str, Any] | None:
        number = int(str(record.transaction_id).rsplit("-", 1)[1])
        if number % 3 == 0:
            raise ValueError("cannot build this one")
        if number % 3 == 1:
            return None
        return stub_build(record)

    agent = make_agent(moesif_collector.base_uri, build=flaky_build)
    agents.append(agent)
    for i in range(9):
        agent.submit(make_record("flaky", i))
    assert not agent.flush(10)  # six of them could not be built
    assert transaction_ids(moesif_collector.wait_for_events(3)) == ["flaky-2", "flaky-5", "flaky-8"]
    assert agent.stats()["dropped_build_error"] == 6
    # The worker survived: later events still go out.
    agent.submit(make_record("flaky", 11))
    assert agent.flush(10)
    assert len(moesif_collector.wait_for_events(4)) == 4


def test_the_built_in_builder_keeps_the_capture_order_and_cuts_posts_at_batch_max_bytes(
    moesif_collector: LocalCollector, agents: list[Agent]
) -> None:
    """Events the native writer writes (a batch at once) and those the Python builder builds (here:
    the ones with metadata) arrive in the order they were captured, in posts cut at the limit."""
    agent = make_agent(
        moesif_collector.base_uri,
        build=None,
        BATCH_SIZE=100,
        EVENT_BATCH_TIMEOUT=5.0,
        EVENT_WORKER_COUNT=1,
        BATCH_MAX_BYTES=8192,
    )
    agents.append(agent)
    body = b'{"items": [' + b",".join(b'{"id": %d}' % i for i in range(100)) + b"]}"
    for i in range(30):
        record = make_record("ordered", i, path=f"/items/{i}")
        record.request_time = record.response_time = 1795321112.25
        record.host = "api.example.com"
        record.request_headers = [("Content-Type", "application/json")]
        record.response_headers = [("Content-Type", "application/json")]
        record.response_body = body
        if i % 10 == 0:
            record.metadata = {"n": i}
        assert agent.submit(record)
    assert agent.flush(10)
    events = moesif_collector.wait_for_events(30)
    assert [event["transaction_id"] for event in events] == [f"ordered-{i}" for i in range(30)]
    assert [event["metadata"] for event in events if event["metadata"]] == [{"n": i} for i in range(0, 30, 10)]
    assert all(event["response"]["body"] == orjson.loads(body) for event in events)
    # About 1.7 KB an event: the 30 go in several posts, none over the limit once decoded.
    sizes = [post.decoded_size for post in event_posts(moesif_collector)]
    assert len(sizes) >= 7
    assert all(size is not None and size <= 8192 for size in sizes)
    assert agent.stats()["sent"] == 30


def test_users_and_companies_go_through_the_same_sender(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    moesif_collector.fail_next(1, 502)
    agent = make_agent(moesif_collector.base_uri)
    agents.append(agent)
    assert agent.submit_entity("users", {"user_id": "u1", "metadata": {"plan": "pro"}})
    assert agent.submit_entity("companies/batch", [{"company_id": "c1"}, {"company_id": "c2"}])
    assert not agent.submit_entity("planets", {"id": "earth"})
    assert agent.flush(10)
    assert [u["user_id"] for u in moesif_collector.wait_for_users(1)] == ["u1"]
    assert sorted(c["company_id"] for c in moesif_collector.wait_for_companies(2)) == ["c1", "c2"]
    stats = agent.stats()
    assert stats["entities_sent"] == 2
    assert stats["retried"] == 1


def test_submit_after_close_is_dropped_and_counted(moesif_collector: LocalCollector) -> None:
    agent = make_agent(moesif_collector.base_uri)
    agent.submit(make_record("closing", 0))
    assert agent.close(10)
    assert agent.close(10)  # idempotent
    assert not agent.submit(make_record("closing", 1))
    assert agent.stats()["dropped_shutdown"] == 1
    assert transaction_ids(moesif_collector.wait_for_events(1)) == ["closing-0"]


def test_close_with_the_collector_down_gives_up_at_its_deadline_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    collector = LocalCollector()
    collector.start()
    base_uri = collector.base_uri
    collector.close()
    agent = make_agent(base_uri, MAX_RETRIES=10_000, RETRY_BACKOFF=0.5, RETRY_BACKOFF_MAX=30.0, BATCH_SIZE=10)
    for i in range(25):
        agent.submit(make_record("lost", i))
    with caplog.at_level(logging.WARNING, logger="moesif"):
        assert not agent.close(0.5)
    wait_until(lambda: agent.stats()["in_flight"] == 0, what="in-flight batches to give up")
    stats = agent.stats()
    assert stats["dropped_shutdown"] == 25
    assert stats["sent"] == 0
    assert sum("not delivered" in m for m in caplog.messages) == 1


def test_flush_with_nothing_submitted_touches_nothing() -> None:
    agent = make_agent("http://127.0.0.1:9")
    assert agent.flush(0.1)
    assert agent.stats()["queued"] == 0
    assert agent.close(0.1)


def test_debug_logs_each_delivery_decision_without_the_application_id(
    moesif_collector: LocalCollector, agents: list[Agent], caplog: pytest.LogCaptureFixture
) -> None:
    moesif_collector.application_id = None  # accept any id
    moesif_collector.fail_next(1, 503)
    secret_id = "a-long-secret-application-id-value"
    agent = make_agent(moesif_collector.base_uri, secret_id, DEBUG=True)
    agents.append(agent)
    with caplog.at_level(logging.DEBUG, logger="moesif"):
        agent.submit(make_record("debug", 0))
        assert agent.flush(10)
    text = "\n".join(caplog.messages)
    assert "failed (HTTP 503); retry 1" in text
    assert "sent batch of 1" in text
    assert secret_id not in text


def test_queue_bytes_stay_under_the_cap_while_the_collector_is_down(agents: list[Agent]) -> None:
    collector = LocalCollector()
    collector.start()
    base_uri = collector.base_uri
    collector.close()
    cap = 2_000_000
    agent = make_agent(base_uri, EVENT_QUEUE_MAX_BYTES=cap, MAX_RETRIES=100_000, RETRY_BACKOFF_MAX=0.2)
    agents.append(agent)
    agent.submit(make_record("warm", 0, body_size=2048))
    rss_before = _rss_bytes()
    largest = 0
    for i in range(100_000):
        agent.submit(make_record("down", i, body_size=2048))
        if i % 1000 == 0:
            largest = max(largest, agent.stats()["bytes_in_queue"])
    stats = agent.stats()
    growth = _rss_bytes() - rss_before
    assert largest <= cap
    assert stats["bytes_in_queue"] <= cap
    assert stats["queued"] + stats["dropped_bytes_full"] == 100_001
    assert stats["dropped_bytes_full"] > 99_000
    # Kept whole, 100,000 records with two 2 KB bodies would be over 400 MB.
    assert growth < 100 * 1024 * 1024, f"RSS grew by {growth / 1e6:.0f} MB"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- served config and sampling -------------------------------------------------------------------

SAMPLING_CONFIG: dict[str, Any] = {
    "sample_rate": 50,
    "user_sample_rate": {"rare-user": 10},
    "company_sample_rate": {"big-co": 25},
    "regex_config": [{"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}],
}


def test_sampling_follows_the_served_config_once_it_arrives(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    from moesif_core.annotations import RequestAnnotations
    from moesif_core.call_filter import keep_call

    moesif_collector.set_config(SAMPLING_CONFIG)
    agent = make_agent(moesif_collector.base_uri)
    agents.append(agent)

    def rate(route: str = "/orders", user_id: str | None = None, company_id: str | None = None) -> int:
        return agent.sample_rate(route=route, verb="GET", ip="127.0.0.1", status=200, user_id=user_id, company_id=company_id)

    # Nothing fetched yet (no thread started by creating the agent): everything is kept.
    assert rate("/health") == 100
    assert not agent.sampling_needs_identity
    assert not any(r.path == "/v1/config" for r in moesif_collector.requests)
    agent.ensure_started()
    wait_until(lambda: agent.config.received, what="the first config")
    assert agent.config.raw_config["sample_rate"] == 50
    assert rate("/health/live") == 0
    assert rate("/orders") == 50
    assert rate("/orders", user_id="rare-user") == 10
    assert rate("/orders", company_id="big-co") == 25
    assert agent.sampling_needs_identity

    kept: list[RawExchange] = []
    for i in range(400):
        record = make_record("sampled", i, path="/health" if i % 4 == 0 else "/orders")
        if keep_call(agent, record, RequestAnnotations()):
            kept.append(record)
            agent.submit(record)
    assert agent.flush(10)
    events = moesif_collector.wait_for_events(len(kept))
    assert len(events) == len(kept)
    assert 100 <= len(kept) <= 200  # 300 calls at 50 %, 100 at 0 %
    assert {event["weight"] for event in events} == {2}
    assert all(not event["request"]["uri"].endswith("/health") for event in events)
    assert agent.stats()["sampled_out"] == 400 - len(kept)


def test_a_new_config_etag_on_an_event_post_triggers_a_refetch(moesif_collector: LocalCollector, agents: list[Agent]) -> None:
    first_etag = moesif_collector.set_config({"sample_rate": 100})
    moesif_collector.set_rules([{"_id": "r1", "type": "regex", "block": False}])
    agent = make_agent(moesif_collector.base_uri, CONFIG_REFRESH_INTERVAL=3600.0)
    agents.append(agent)
    agent.ensure_started()
    wait_until(lambda: agent.config.etag == first_etag, what="the first config")
    assert [rule["_id"] for rule in agent.config.raw_rules] == ["r1"]

    second_etag = moesif_collector.set_config({"sample_rate": 10})
    moesif_collector.set_rules([{"_id": "r2", "type": "user", "block": True}])
    assert second_etag != first_etag
    agent.submit(make_record("etag", 0))
    assert agent.flush(10)
    wait_until(lambda: agent.config.etag == second_etag, what="the refetched config")
    assert agent.sample_rate(route="/", verb="GET", ip=None, status=200, user_id=None, company_id=None) == 10
    assert [rule["_id"] for rule in agent.config.raw_rules] == ["r2"]
    assert sum(r.path == "/v1/config" for r in moesif_collector.requests) == 2
    # The same ETag again does not refetch.
    agent.submit(make_record("etag", 1))
    assert agent.flush(10)
    time.sleep(0.2)
    assert sum(r.path == "/v1/config" for r in moesif_collector.requests) == 2


def test_a_failed_config_fetch_keeps_the_last_good_config(agents: list[Agent]) -> None:
    collector = LocalCollector()
    collector.set_config({"sample_rate": 30})
    collector.start()
    try:
        agent = make_agent(collector.base_uri, CONFIG_REFRESH_INTERVAL=0.1)
        agents.append(agent)
        agent.ensure_started()
        wait_until(lambda: agent.config.received, what="the first config")
        collector.stop()
        time.sleep(0.5)  # several refresh intervals, every fetch refused
        assert agent.sample_rate(route="/", verb="GET", ip=None, status=200, user_id=None, company_id=None) == 30
    finally:
        collector.close()


# -- fork and exit --------------------------------------------------------------------------------


def test_parent_and_forked_child_each_deliver_their_own_events_once(
    moesif_collector: LocalCollector, agents: list[Agent]
) -> None:
    # A long batch timeout keeps the parent's events waiting in its queue at the moment of fork.
    agent = make_agent(moesif_collector.base_uri, EVENT_BATCH_TIMEOUT=30.0, BATCH_SIZE=1000)
    agents.append(agent)
    for i in range(50):
        agent.submit(make_record("parent-before", i))
    assert agent.stats()["in_queue"] == 50
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            if agent.stats()["in_queue"] == 0:
                for i in range(30):
                    agent.submit(make_record("child", i))
                code = 0 if agent.flush(10) and agent.stats()["sent"] == 30 else 2
        finally:
            os._exit(code)
    for i in range(40):
        agent.submit(make_record("parent-after", i))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert agent.flush(10)
    expected = [f"parent-before-{i}" for i in range(50)] + [f"child-{i}" for i in range(30)]
    expected += [f"parent-after-{i}" for i in range(40)]
    events = moesif_collector.wait_for_events(120)
    time.sleep(0.2)  # a duplicate would arrive about now
    assert transaction_ids(moesif_collector.events()) == sorted(expected)
    assert len(events) == 120
    assert agent.stats()["sent"] == 90


def _submit_in_multiprocessing_child(agent: Agent, count: int) -> None:
    for i in range(count):
        agent.submit(make_record("mp-child", i))
    # No flush: the process ends through os._exit, and the agent's finaliser must deliver.


def test_a_multiprocessing_fork_child_delivers_at_its_end_without_flushing(
    moesif_collector: LocalCollector, agents: list[Agent]
) -> None:
    import multiprocessing

    agent = make_agent(moesif_collector.base_uri, EVENT_BATCH_TIMEOUT=30.0, BATCH_SIZE=1000)
    agents.append(agent)
    agent.submit(make_record("mp-parent", 0))
    process = multiprocessing.get_context("fork").Process(target=_submit_in_multiprocessing_child, args=(agent, 25))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert transaction_ids(moesif_collector.wait_for_events(25)) == sorted(f"mp-child-{i}" for i in range(25))
    assert agent.flush(10)
    events = moesif_collector.wait_for_events(26)
    assert transaction_ids(events) == sorted([*(f"mp-child-{i}" for i in range(25)), "mp-parent-0"])


_EXITING_SCRIPT = """
import sys
from moesif_core.agent import Agent
from moesif_core.record import RawExchange
from moesif_core.settings import Settings

def build(record):
    return {"request": {"time": "2026-01-01T00:00:00.000", "uri": "http://test/exit", "verb": "GET"},
            "response": {"time": "2026-01-01T00:00:00.001", "status": 200}, "transaction_id": record.transaction_id}

settings = Settings.resolve({"APPLICATION_ID": "test-app", "BASE_URI": sys.argv[1], "EVENT_BATCH_TIMEOUT": 30,
                             "BATCH_SIZE": 100})
agent = Agent(settings, user_agent="exit-test/0", build=build)
for i in range(int(sys.argv[2])):
    record = RawExchange()
    record.transaction_id = f"exit-{i}"
    agent.submit(record)
# and exit at once: the atexit flush must deliver everything
"""


def test_a_process_that_submits_and_exits_at_once_delivers_everything(moesif_collector: LocalCollector) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _EXITING_SCRIPT, moesif_collector.base_uri, "750"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    events = moesif_collector.wait_for_events(750, timeout=5)
    assert transaction_ids(events) == sorted(f"exit-{i}" for i in range(750))


def test_exit_with_the_collector_down_gives_up_at_the_shutdown_timeout(moesif_collector: LocalCollector) -> None:
    import subprocess
    import sys

    base_uri = moesif_collector.base_uri
    moesif_collector.stop()
    script = _EXITING_SCRIPT.replace('"BATCH_SIZE": 100', '"BATCH_SIZE": 100, "SHUTDOWN_TIMEOUT": 0.5, "RETRY_BACKOFF": 0.05')
    done = subprocess.run([sys.executable, "-c", script, base_uri, "20"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "20 events were not delivered" in done.stderr
    assert done.stderr.count("not delivered") == 1


def test_a_queued_record_is_out_of_the_cyclic_gcs_view_and_still_delivered(moesif_collector: LocalCollector) -> None:
    # A record waits in the queue long enough to reach the GC's old generation; it can hold no
    # cycle, so with the native part the GC never walks it (reference counting frees it).
    agent = make_agent(moesif_collector.base_uri)
    record = make_record("untracked", 0)
    assert gc.is_tracked(record)
    assert agent.submit(record)
    assert gc.is_tracked(record) is not request_path.NATIVE
    assert agent.flush(10)
    assert transaction_ids(moesif_collector.wait_for_events(1)) == ["untracked-0"]
    agent.close(5)
