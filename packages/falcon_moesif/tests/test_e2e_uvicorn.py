"""The example Falcon ASGI app under a real uvicorn on 127.0.0.1, delivering to the local collector."""

from __future__ import annotations

import pathlib
import signal
import sys
from typing import Any

import httpx
import pytest

from moesif_core.testing import free_port, moesif_environ, serve

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"
TOKEN = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2ln"  # {"sub": "user-123"}


@pytest.mark.e2e
def test_falcon_asgi_under_uvicorn_delivers_events_and_flushes_on_shutdown(moesif_collector: Any) -> None:
    port = free_port()
    # Nothing leaves before shutdown: delivery proves the flush.
    env = moesif_environ(moesif_collector.settings(EVENT_BATCH_TIMEOUT=600))
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:asgi_app",
        "--app-dir",
        str(EXAMPLES),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with serve(command, port=port, env=env, ready_timeout=15) as server:
        base = server.url
        httpx.get(f"{base}/items/0", timeout=5)  # one call before the checked ones: its event is counted below
        with httpx.Client(base_url=base, timeout=5) as client:
            assert client.get("/items/1", headers={"Authorization": TOKEN}).json() == {"id": 1, "name": "widget"}
            assert client.post("/items", json={"a": 1}).json() == {"created": {"a": 1}}
            assert client.get("/nowhere").status_code == 404
        server.stop(signal.SIGINT, timeout=20)  # uvicorn runs the lifespan shutdown: process_shutdown flushes
        events = moesif_collector.wait_for_events(4, timeout=10)
    by_call = {(e["request"]["verb"], e["request"]["uri"].split("?")[0].removeprefix(base)): e for e in events}
    jwt_call = by_call[("GET", "/items/1")]
    assert jwt_call["user_id"] == "user-123"
    assert jwt_call["response"]["body"] == {"id": 1, "name": "widget"}
    assert by_call[("POST", "/items")]["request"]["body"] == {"a": 1}
    assert by_call[("GET", "/nowhere")]["response"]["status"] == 404
