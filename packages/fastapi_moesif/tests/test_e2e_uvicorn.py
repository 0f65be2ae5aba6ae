"""The example app under a real uvicorn on 127.0.0.1, delivering to the local collector."""

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
def test_uvicorn_app_delivers_events_and_flushes_on_shutdown(moesif_collector: Any) -> None:
    port = free_port()
    # Nothing leaves before shutdown: delivery proves the flush.
    env = moesif_environ(moesif_collector.settings(EVENT_BATCH_TIMEOUT=600))
    command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLES), "--host", "127.0.0.1", "--port", str(port)]
    with serve(command, port=port, env=env, ready_timeout=15) as server:
        base = server.url
        httpx.get(f"{base}/items/0", timeout=5)  # one call before the checked ones: its event is counted below
        with httpx.Client(base_url=base, timeout=5) as client:
            assert client.get("/items/1", headers={"Authorization": TOKEN}).json() == {"id": 1, "name": "widget"}
            assert client.post("/items", json={"a": 1}).json() == {"created": {"a": 1}}
            assert client.get("/nowhere").status_code == 404
            assert client.get("/me", headers={"X-User": "u-9"}).json() == {"id": "u-9", "org": "acme"}
            with client.stream("GET", "/stream") as streamed:
                assert b"".join(streamed.iter_bytes()) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
            # Last: uvicorn closes the connection after an app exception (with or without us).
            assert client.get("/boom").status_code == 500
        server.stop(signal.SIGINT, timeout=20)  # uvicorn runs the lifespan shutdown: the middleware flushes
        events = moesif_collector.wait_for_events(7, timeout=10)
    by_uri = {
        (e["request"]["verb"], e["request"]["uri"].split("?")[0].removeprefix(f"http://127.0.0.1:{port}")): e for e in events
    }
    jwt_call = by_uri[("GET", "/items/1")]
    assert jwt_call["user_id"] == "user-123"
    assert jwt_call["response"]["body"] == {"id": 1, "name": "widget"}
    assert by_uri[("POST", "/items")]["request"]["body"] == {"a": 1}
    assert by_uri[("GET", "/nowhere")]["response"]["status"] == 404
    assert by_uri[("GET", "/boom")]["response"]["status"] == 500
    me = by_uri[("GET", "/me")]
    assert (me["user_id"], me["company_id"], me["metadata"]) == ("u-9", "acme", {"plan": "gold", "_moesif": {"route": "/me"}})
    assert by_uri[("GET", "/stream")]["response"]["status"] == 200
