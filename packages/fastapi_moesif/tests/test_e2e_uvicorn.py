"""The example app under a real uvicorn on 127.0.0.1, delivering to the local collector."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"
TOKEN = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2ln"  # {"sub": "user-123"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
def test_uvicorn_app_delivers_events_and_flushes_on_shutdown(moesif_collector: Any) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MOESIF_APPLICATION_ID": "test-app",
        "MOESIF_BASE_URI": moesif_collector.base_uri,
        "MOESIF_EVENT_BATCH_TIMEOUT": "600",  # nothing leaves before shutdown: delivery proves the flush
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLES), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/items/0", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    output = server.communicate(timeout=5)[0].decode(errors="replace")
                    raise AssertionError(f"uvicorn did not come up:\n{output}") from None
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=5) as client:
            assert client.get("/items/1", headers={"Authorization": TOKEN}).json() == {"id": 1, "name": "widget"}
            assert client.post("/items", json={"a": 1}).json() == {"created": {"a": 1}}
            assert client.get("/nowhere").status_code == 404
            assert client.get("/me", headers={"X-User": "u-9"}).json() == {"id": "u-9", "org": "acme"}
            with client.stream("GET", "/stream") as streamed:
                assert b"".join(streamed.iter_bytes()) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
            # Last: uvicorn closes the connection after an app exception (with or without us).
            assert client.get("/boom").status_code == 500
        server.send_signal(signal.SIGINT)  # uvicorn runs the lifespan shutdown: the middleware flushes
        server.wait(timeout=20)
        events = moesif_collector.wait_for_events(7, timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=5)
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
