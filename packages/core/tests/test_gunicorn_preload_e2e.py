"""gunicorn --preload -w 2: every event delivered exactly once, none of the master's queue sent twice."""

from __future__ import annotations

import http.client
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from moesif_core.testing import free_port, serve

pytestmark = pytest.mark.e2e

APP = textwrap.dedent(
    """
    import os

    from moesif_core.wsgi import MoesifMiddleware


    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]


    app = MoesifMiddleware(hello, {"APPLICATION_ID": "test-app", "BASE_URI": os.environ["COLLECTOR"], "EVENT_BATCH_TIMEOUT": 0.05})

    # One call served in the master before it forks: its event sits in the master's queue (or is
    # already on its way) when the workers are born. They must not send it again.
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/preloaded", "SERVER_NAME": "master", "SERVER_PORT": "0",
                         "wsgi.url_scheme": "http", "wsgi.input": None}, lambda *a: None))
    """
)


def get(port: int, path: str) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(), response.getheader("X-Moesif-Transaction-Id") or ""
    finally:
        conn.close()


def test_preload_with_two_workers_delivers_every_event_exactly_once(moesif_collector: Any, tmp_path: Path) -> None:
    (tmp_path / "preloaded_app.py").write_text(APP)
    port = free_port()
    env = {"COLLECTOR": moesif_collector.base_uri, "PYTHONPATH": str(tmp_path)}
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--preload",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
        "preloaded_app:app",
    ]
    with serve(command, port=port, env=env, cwd=tmp_path, ready_timeout=30, stop_timeout=30) as server:
        answers = [get(port, f"/hello/{i}") for i in range(300)]
        server.stop(timeout=30)  # SIGTERM: the workers flush what they hold; one that cannot stop fails the test
    assert all(status == 200 for status, _, _ in answers)
    worker_pids = {pid for _, pid, _ in answers}
    assert len(worker_pids) >= 1
    events = moesif_collector.wait_for_events(301, timeout=20)
    time.sleep(0.5)  # anything sent twice would arrive by now
    events = moesif_collector.events()
    txn_ids = [e["transaction_id"] for e in events]
    assert len(txn_ids) == len(set(txn_ids)) == 301, f"{len(txn_ids)} events, {len(set(txn_ids))} distinct"
    assert {txn for _, _, txn in answers} <= set(txn_ids)
    assert len([e for e in events if e["request"]["uri"].endswith("/preloaded")]) == 1
