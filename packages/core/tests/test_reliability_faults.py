"""A real app keeps serving exactly as without us while the collector misbehaves.

Each test serves a Flask app (through ``moesif_core.wsgi`` under Werkzeug's threaded server) or a
FastAPI app (through ``moesif_core.asgi`` under uvicorn), both on 127.0.0.1, next to the same app
without the middleware, and drives the local collector through its fault knobs: down at start,
down mid-load, slow, 500, 429 with Retry-After, 401, hung, cut mid-response, and a full queue.
What is asserted each time: every response equals the bare app's (status, headers minus
``X-Moesif-Transaction-Id``/``Date``/``Server``, body), nothing is lost while the queue has room
(the exact transaction ids the client saw arrive, once), and the counters add up otherwise.

The delivery engine's own fault tests (``test_agent_delivery.py``) submit records by hand; these
add the capture layer, a real server, the real event builder and the app's responses.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import flask
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from werkzeug.serving import make_server

from moesif_core.asgi import MoesifMiddleware as AsgiMiddleware
from moesif_core.collector import LocalCollector
from moesif_core.counters import DROP_REASONS
from moesif_core.wsgi import MoesifMiddleware as WsgiMiddleware

EVENTS = "/v1/events/batch"
IGNORED_HEADERS = frozenset({"date", "server", "x-moesif-transaction-id"})

# Short timeouts and backoff: a retry costs milliseconds, a test a second or two.
FAST: dict[str, Any] = {
    "EVENT_BATCH_TIMEOUT": 0.05,
    "RETRY_BACKOFF": 0.02,
    "RETRY_BACKOFF_MAX": 0.2,
    "MAX_RETRIES": 1000,
    "HTTP_CONNECT_TIMEOUT": 0.5,
    "HTTP_READ_TIMEOUT": 5.0,
    "SHUTDOWN_TIMEOUT": 2.0,
    "CONFIG_REFRESH_INTERVAL": 3600.0,
}

# Offered events end in exactly one of these (or wait in the queue or on the wire).
LOST_AT_SUBMIT = ("dropped_queue_full", "dropped_bytes_full")


# -- the apps -------------------------------------------------------------------------------------


def flask_app() -> flask.Flask:
    app = flask.Flask("reliability")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return {"id": item_id, "name": "widget"}

    @app.post("/echo")
    def echo() -> flask.Response:
        data = flask.request.get_data()
        return flask.Response(data, status=201, content_type=flask.request.content_type or "application/octet-stream")

    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget"}

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        data = await request.body()
        return Response(data, status_code=201, media_type=request.headers.get("content-type", "application/octet-stream"))

    return app


class _Server:
    """One app served on 127.0.0.1 in a background thread."""

    def __init__(self, flavour: str, app: Any) -> None:
        self.flavour = flavour
        if flavour == "flask":
            self._wsgi = make_server("127.0.0.1", 0, app, threaded=True)
            self.port = self._wsgi.server_port
            self._thread = threading.Thread(target=self._wsgi.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
        else:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Inherited by accepted sockets: without it each answer waits out the client's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
            self._uvicorn = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
            self._thread.start()
            wait_until(lambda: self._uvicorn.started, what="uvicorn to start")
        self.base_url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.flavour == "flask":
            self._wsgi.shutdown()
            self._wsgi.server_close()
        else:
            self._uvicorn.should_exit = True
        self._thread.join(10)


@dataclass
class Served:
    """The same app twice: bare, and under the middleware pointed at ``collector``."""

    flavour: str
    middleware: Any
    bare: httpx.Client
    wrapped: httpx.Client

    def stats(self) -> dict[str, int]:
        return dict(self.middleware.stats())


@pytest.fixture(params=["flask", "fastapi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., Served]]:
    """``serve(base_uri, **settings)`` starts the bare and the wrapped app; all stopped after the test."""
    flavour: str = request.param
    servers: list[_Server] = []
    clients: list[httpx.Client] = []
    middlewares: list[Any] = []

    def start(base_uri: str, **settings: Any) -> Served:
        config = {"APPLICATION_ID": "test-app", "BASE_URI": base_uri, **FAST, **settings}
        if flavour == "flask":
            bare_app: Any = flask_app()
            app = flask_app()
            middleware: Any = WsgiMiddleware(app.wsgi_app, config)
            app.wsgi_app = middleware  # type: ignore[method-assign]
            wrapped_app: Any = app
        else:
            bare_app = fastapi_app()
            middleware = AsgiMiddleware(fastapi_app(), settings=config)
            wrapped_app = middleware
        middlewares.append(middleware)
        bare, wrapped = _Server(flavour, bare_app), _Server(flavour, wrapped_app)
        servers.extend([bare, wrapped])
        clients.extend([httpx.Client(base_url=bare.base_url, timeout=30), httpx.Client(base_url=wrapped.base_url, timeout=30)])
        return Served(flavour, middleware, clients[-2], clients[-1])

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()
    for middleware in middlewares:
        middleware.close(0.2)


# -- helpers --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in IGNORED_HEADERS)
    return response.status_code, headers, response.content


def call(served: Served, index: int) -> str:
    """One call of a small mix (JSON GET, binary POST, JSON POST) to both apps; the wrapped answer's transaction id."""
    kind = index % 3
    if kind == 0:
        args: dict[str, Any] = {"method": "GET", "url": f"/items/{index}"}
    elif kind == 1:
        args = {
            "method": "POST",
            "url": "/echo",
            "content": bytes([index % 256]) * 300,
            "headers": {"content-type": "application/octet-stream"},
        }
    else:
        args = {"method": "POST", "url": "/echo", "json": {"n": index, "password": "pw"}}
    expected = served.bare.request(**args)
    got = served.wrapped.request(**args)
    assert comparable(got) == comparable(expected)
    txn = got.headers["x-moesif-transaction-id"]
    assert txn
    return txn


def traffic(served: Served, start: int, count: int) -> list[str]:
    return [call(served, i) for i in range(start, start + count)]


def settle(served: Served, offered: int) -> None:
    """Wait until all ``offered`` calls reached the agent: a server may answer the client a moment before it
    tells the middleware the response is complete (WSGI close(), the ASGI send after the last body)."""
    wait_until(
        lambda: served.stats()["queued"] + sum(served.stats()[r] for r in LOST_AT_SUBMIT) >= offered,
        what=f"{offered} calls to be offered to the queue",
    )


def assert_books_balance(stats: dict[str, int], offered: int) -> None:
    """Every offered event is accounted for exactly once (call at rest: nothing being handed between counters)."""
    assert stats["queued"] + sum(stats[r] for r in LOST_AT_SUBMIT) == offered, stats
    lost_after = sum(stats[r] for r in DROP_REASONS if r not in LOST_AT_SUBMIT)
    assert stats["queued"] == stats["sent"] + lost_after + stats["in_queue"] + stats["in_flight"], stats


def stored_ids(collector: LocalCollector) -> list[str]:
    return sorted(event["transaction_id"] for event in collector.events())


def event_posts(collector: LocalCollector) -> list[Any]:
    return [r for r in collector.requests if r.method == "POST" and r.path == EVENTS]


def down_collector() -> LocalCollector:
    """A collector that has a port but is not listening yet."""
    collector = LocalCollector()
    collector.start()
    collector.stop()
    return collector


# -- the collector unreachable --------------------------------------------------------------------


def test_collector_down_at_start_then_up_loses_nothing(serve: Callable[..., Served]) -> None:
    collector = down_collector()
    try:
        served = serve(collector.base_uri)
        txns = traffic(served, 0, 60)
        settle(served, 60)
        wait_until(lambda: served.stats()["retried"] >= 2, what="retries while the collector is down")
        stats = served.stats()
        assert stats["sent"] == 0
        assert_books_balance(stats, 60)
        collector.start()
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        stats = served.stats()
        assert stats["sent"] == 60
        assert_books_balance(stats, 60)
    finally:
        collector.close()


def test_collector_going_down_between_bursts_loses_nothing_and_sends_nothing_twice(serve: Callable[..., Served]) -> None:
    with LocalCollector() as collector:
        served = serve(collector.base_uri)
        txns = traffic(served, 0, 30)
        settle(served, 30)
        assert served.middleware.flush(10)
        assert len(collector.wait_for_events(30)) == 30
        collector.stop()
        txns += traffic(served, 30, 30)
        settle(served, 60)
        wait_until(lambda: served.stats()["retried"] >= 1, what="a failed post while the collector is down")
        collector.start()
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        assert_books_balance(served.stats(), 60)


def test_collector_stopped_under_concurrent_load_loses_nothing(serve: Callable[..., Served]) -> None:
    """The collector goes away while calls keep coming from three client threads, then comes back.

    Delivery is at least once here: a batch stored in the instant its connection was cut is
    retried (the phased test above shows nothing is sent twice otherwise).
    """
    with LocalCollector() as collector:
        served = serve(collector.base_uri, BATCH_SIZE=10)
        answered: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def client(offset: int) -> None:
            try:
                for i in range(offset, offset + 60):
                    txn = call(served, i)
                    with lock:
                        answered.append(txn)
            except BaseException as exc:  # surfaced below: an app error is a failure
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(n * 1000,)) for n in range(3)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(answered) >= 20, what="load to start")
        collector.stop()
        down_at = len(answered)
        wait_until(lambda: served.stats()["retried"] >= 1, what="a post to fail while the collector is down")
        wait_until(lambda: len(answered) >= down_at + 10 or not any(t.is_alive() for t in threads), what="calls while down")
        collector.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert len(answered) == 180
        settle(served, 180)
        assert served.middleware.flush(15)
        stored = stored_ids(collector)
        assert set(stored) == set(answered)
        assert_books_balance(served.stats(), 180)


# -- the collector misbehaving --------------------------------------------------------------------


def test_slow_collector_gets_everything_and_the_app_answers_as_usual(serve: Callable[..., Served]) -> None:
    with LocalCollector() as collector:
        collector.delay = 0.3
        served = serve(collector.base_uri)
        txns = traffic(served, 0, 40)
        settle(served, 40)
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        assert served.stats()["retried"] == 0


def test_a_hung_collector_never_holds_up_a_request(serve: Callable[..., Served]) -> None:
    """Both sender workers are stuck in posts that never get an answer, and calls still complete."""
    with LocalCollector() as collector:
        collector.hang_next(2)
        served = serve(collector.base_uri, BATCH_SIZE=5, EVENT_WORKER_COUNT=2, HTTP_READ_TIMEOUT=120.0)
        txns = traffic(served, 0, 20)
        hung = collector.wait_for_requests(2, path=EVENTS)
        assert [r.fault for r in hung] == ["hang", "hang"]
        # Every worker is now waiting on the network: these calls can only complete if the
        # request path does not wait for it.
        txns += traffic(served, 20, 40)
        settle(served, 60)
        stats = served.stats()
        assert stats["sent"] == 0
        assert stats["in_flight"] > 0
        assert_books_balance(stats, 60)
        collector.stop()  # ends the hung posts; the workers retry
        collector.start()
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        assert_books_balance(served.stats(), 60)


def test_server_errors_are_retried_and_the_calls_are_unaffected(serve: Callable[..., Served]) -> None:
    with LocalCollector() as collector:
        collector.fail_next(3, 500)
        served = serve(collector.base_uri)
        txns = traffic(served, 0, 30)
        settle(served, 30)
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        assert [p.status for p in event_posts(collector)][:3] == [500, 500, 500]
        stats = served.stats()
        assert stats["retried"] == 3
        assert_books_balance(stats, 30)


def test_throttling_with_retry_after_delays_delivery_but_loses_nothing(serve: Callable[..., Served]) -> None:
    with LocalCollector() as collector:
        collector.fail_next(2, 429, {"Retry-After": "0.3"})
        served = serve(collector.base_uri, RETRY_BACKOFF_MAX=5.0)
        txns = traffic(served, 0, 30)
        settle(served, 30)
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        assert [p.status for p in event_posts(collector)][:2] == [429, 429]
        assert served.stats()["retried"] == 2


def test_unauthorized_posts_drop_exactly_their_events(serve: Callable[..., Served]) -> None:
    with LocalCollector() as collector:
        collector.fail_next(3, 401, body=b'{"error": "unauthorized"}')
        served = serve(collector.base_uri)
        txns = []
        for i in range(10):  # one call, one flush: one event per post, so the first three posts are the first three events
            txns.append(call(served, i))
            settle(served, i + 1)
            served.middleware.flush(10)
        collector.wait_for_events(7)
        assert stored_ids(collector) == sorted(txns[3:])
        stats = served.stats()
        assert stats["dropped_unauthorized"] == 3
        assert stats["sent"] == 7
        assert stats["retried"] == 0
        assert_books_balance(stats, 10)


def test_responses_cut_mid_way_are_retried_and_arrive_once(serve: Callable[..., Served]) -> None:
    with LocalCollector() as collector:
        collector.close_mid_response_next(2)
        served = serve(collector.base_uri)
        txns = traffic(served, 0, 30)
        settle(served, 30)
        assert served.middleware.flush(15)
        assert stored_ids(collector) == sorted(txns)
        assert served.stats()["retried"] >= 2
        assert_books_balance(served.stats(), 30)


# -- a full queue ---------------------------------------------------------------------------------


def test_queue_bytes_stay_under_the_cap_and_every_drop_is_counted(serve: Callable[..., Served]) -> None:
    collector = down_collector()
    cap = 60_000
    try:
        served = serve(collector.base_uri, EVENT_QUEUE_MAX_BYTES=cap, EVENT_WORKER_COUNT=1, BATCH_SIZE=4)
        largest = 0
        for i in range(120):
            call(served, 3 * i + 1)  # the binary POST: 300 bytes each way
            largest = max(largest, served.stats()["bytes_in_queue"])
        settle(served, 120)
        wait_until(lambda: served.stats()["retried"] >= 1, what="the worker to be retrying")
        stats = served.stats()
        assert largest <= cap
        assert stats["bytes_in_queue"] <= cap
        assert stats["dropped_bytes_full"] > 0
        assert stats["dropped_queue_full"] == 0
        assert_books_balance(stats, 120)
        accepted = stats["queued"]
        collector.start()
        assert served.middleware.flush(15)
        assert len(collector.events()) == accepted  # everything that got in, and nothing else
        stats = served.stats()
        assert stats["sent"] == accepted
        assert_books_balance(stats, 120)
    finally:
        collector.close()


def test_queue_item_cap_drops_exactly_the_overflow(serve: Callable[..., Served]) -> None:
    collector = down_collector()
    try:
        served = serve(collector.base_uri, EVENT_QUEUE_SIZE=15, EVENT_WORKER_COUNT=1, BATCH_SIZE=5)
        txns = traffic(served, 0, 50)
        settle(served, 50)
        wait_until(lambda: served.stats()["retried"] >= 1, what="the worker to be retrying")
        stats = served.stats()
        assert stats["in_queue"] <= 15
        assert stats["dropped_queue_full"] == 50 - stats["queued"] > 0
        assert_books_balance(stats, 50)
        collector.start()
        assert served.middleware.flush(15)
        stored = stored_ids(collector)
        assert len(stored) == len(set(stored)) == stats["queued"]
        assert set(stored) <= set(txns)
        assert_books_balance(served.stats(), 50)
    finally:
        collector.close()


def test_two_middlewares_in_one_process_deliver_to_their_own_application_ids() -> None:
    """A Flask app and a FastAPI app side by side, each with its own id and collector; each collector
    refuses any id but its own, so a crossed wire would show as a 401 and a missing event."""
    with (
        LocalCollector(application_id="flask-application-id") as first,
        LocalCollector(application_id="fastapi-application-id") as second,
    ):
        wsgi_app = flask_app()
        wsgi_mw = WsgiMiddleware(
            wsgi_app.wsgi_app, {"APPLICATION_ID": "flask-application-id", "BASE_URI": first.base_uri, **FAST}
        )
        wsgi_app.wsgi_app = wsgi_mw  # type: ignore[method-assign]
        asgi_mw = AsgiMiddleware(
            fastapi_app(), settings={"APPLICATION_ID": "fastapi-application-id", "BASE_URI": second.base_uri, **FAST}
        )
        servers = [_Server("flask", wsgi_app), _Server("fastapi", asgi_mw)]
        try:
            flask_txns, fastapi_txns = [], []
            with httpx.Client(base_url=servers[0].base_url) as one, httpx.Client(base_url=servers[1].base_url) as two:
                for i in range(15):
                    flask_txns.append(one.get(f"/items/{i}").headers["x-moesif-transaction-id"])
                    fastapi_txns.append(two.get(f"/items/{i}").headers["x-moesif-transaction-id"])
            wait_until(lambda: wsgi_mw.stats()["queued"] == 15 and asgi_mw.stats()["queued"] == 15, what="both queues")
            assert wsgi_mw.flush(10)
            assert asgi_mw.flush(10)
            assert stored_ids(first) == sorted(flask_txns)
            assert stored_ids(second) == sorted(fastapi_txns)
            for collector, app_id in ((first, "flask-application-id"), (second, "fastapi-application-id")):
                assert {r.headers["x-moesif-application-id"] for r in collector.requests} == {app_id}
                assert all(r.status == 200 or r.status == 201 for r in collector.requests)
        finally:
            for server in servers:
                server.stop()
            wsgi_mw.close(0.2)
            asgi_mw.close(0.2)


def test_asyncio_loop_is_free_while_the_collector_hangs() -> None:
    """In ASGI the request path shares the event loop with everything else: a hung collector must
    not tie it up. Calls made on the same loop complete while the sender waits on the network."""
    with LocalCollector() as collector:
        collector.hang_next(1)
        middleware = AsgiMiddleware(
            fastapi_app(),
            settings={
                "APPLICATION_ID": "test-app",
                "BASE_URI": collector.base_uri,
                **FAST,
                "EVENT_WORKER_COUNT": 1,
                "HTTP_READ_TIMEOUT": 120.0,
            },
        )

        async def run() -> list[int]:
            transport = httpx.ASGITransport(app=middleware)
            async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
                first = await client.get("/items/0")
                await asyncio.get_running_loop().run_in_executor(None, lambda: collector.wait_for_requests(1, path=EVENTS))
                rest = await asyncio.gather(*(client.get(f"/items/{i}") for i in range(1, 30)))
                return [first.status_code, *(r.status_code for r in rest)]

        try:
            assert asyncio.run(run()) == [200] * 30
            assert middleware.stats()["sent"] == 0
            collector.stop()
            collector.start()
            assert middleware.flush(15)
            assert len(collector.events()) == 30
        finally:
            middleware.close(0.2)
