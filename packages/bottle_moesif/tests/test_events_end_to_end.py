"""Events as the collector receives them: the example app, the real sender, the local collector.

In process with WebTest, then once under waitress on 127.0.0.1.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import webtest

from bottle_moesif import MoesifPlugin
from moesif_core.testing import free_port, make_jwt, moesif_environ, serve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def bearer(claims: dict[str, Any]) -> str:
    return f"Bearer {make_jwt(claims)}"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bottle_moesif_example_app", EXAMPLES / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_path(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {urlsplit(event["request"]["uri"]).path: event for event in events}


def check_the_five_calls(events: list[dict[str, Any]]) -> None:
    found = by_path(events)
    assert sorted(found) == ["/boom", "/items", "/items/1", "/nowhere", "/stream"], sorted(found)
    get, post, missing, boom, stream = (found[p] for p in ("/items/1", "/items", "/nowhere", "/boom", "/stream"))
    assert (get["request"]["verb"], get["response"]["status"]) == ("GET", 200)
    assert get["response"]["body"] == {"id": 1, "name": "widget"}
    assert (post["request"]["verb"], post["response"]["status"], post["user_id"]) == ("POST", 201, "user-42")
    assert post["request"]["body"] == {"name": "pen"}
    assert post["metadata"]["feature"] == "catalog"
    headers = {k.lower(): v for k, v in post["request"]["headers"].items()}
    assert headers["authorization"] != bearer({"sub": "user-42"})  # credentials are masked by default
    assert missing["response"]["status"] == 404
    assert boom["response"]["status"] == 500
    assert stream["response"]["status"] == 200
    body = stream["response"]["body"]
    if stream["response"].get("transfer_encoding") == "base64":
        body = base64.b64decode(body).decode()
    assert body == "data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n"


def test_example_app_in_process_sends_the_expected_events(moesif_collector: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in moesif_collector.settings().items():
        monkeypatch.setenv(f"MOESIF_{key}", str(value))  # the example reads its settings from the environment
    app = load_example().create_app()
    [plugin] = [p for p in app.plugins if isinstance(p, MoesifPlugin)]
    client = webtest.TestApp(app)
    client.get("/items/1")
    client.post_json("/items", {"name": "pen"}, headers={"Authorization": bearer({"sub": "user-42"})}, status=201)
    client.get("/nowhere", status=404)
    client.get("/boom", status=500, expect_errors=True)
    client.get("/stream")
    client.get("/health")
    assert plugin.flush(10.0) is True
    check_the_five_calls(moesif_collector.wait_for_events(5))
    app.close()  # Bottle closes its plugins: the sender is flushed and stopped
    assert plugin.middleware.agent.stats().get("sent", 0) >= 5


@pytest.fixture
def waitress_example(moesif_collector: Any) -> Iterator[str]:
    port = free_port()
    env = moesif_environ(moesif_collector.settings())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--call", "app:create_app"]
    with serve(command, port=port, env=env, cwd=EXAMPLES, ready_timeout=20) as server:
        yield server.url


@pytest.mark.e2e
def test_example_app_under_waitress_sends_the_expected_events(waitress_example: str, moesif_collector: Any) -> None:
    base = waitress_example
    with requests.Session() as http:
        assert http.get(f"{base}/items/1", timeout=10).status_code == 200
        created = http.post(
            f"{base}/items", json={"name": "pen"}, headers={"Authorization": bearer({"sub": "user-42"})}, timeout=10
        )
        assert created.status_code == 201
        assert http.get(f"{base}/nowhere", timeout=10).status_code == 404
        assert http.get(f"{base}/boom", timeout=10).status_code == 500
        streamed = http.get(f"{base}/stream", timeout=10, stream=True)
        assert [line for line in streamed.iter_lines() if line] == [b"data: tick 0", b"data: tick 1", b"data: tick 2"]
        assert http.get(f"{base}/health", timeout=10).text == "ok"
    check_the_five_calls(moesif_collector.wait_for_events(5, timeout=20))
