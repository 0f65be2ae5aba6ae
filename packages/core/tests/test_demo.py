"""The demo (``python -m moesif_core.demo``, README's first command): every framework end to end, and its parts."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from moesif_core.collector import EventStore
from moesif_core.demo import apps as demo_apps
from moesif_core.demo import main
from moesif_core.demo.progress import ProgressBar
from moesif_core.demo.runner import outgoing_capture_available
from moesif_core.demo.scenario import BLOCK_RULE_ID, USERS, unsigned_jwt
from moesif_core.demo.servers import serve_wsgi
from moesif_core.demo.shop import caller_of
from moesif_core.demo.traffic import plan_calls

FRAMEWORKS = ("flask", "bottle", "pyramid", "falcon", "fastapi")
RUN_TIMEOUT = 120


def run_demo(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moesif_core.demo", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def stored_events(db: Path) -> list[dict[str, Any]]:
    store = EventStore(str(db), readonly=True)
    try:
        return store.events()
    finally:
        store.close()


def body_bytes(part: dict[str, Any]) -> bytes:
    body = part.get("body")
    if part.get("transfer_encoding") == "base64":
        return base64.b64decode(body or "")
    return str(body).encode()


# -- end to end, one run per framework ------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_demo_runs_each_framework_and_the_collector_holds_every_case(framework: str, tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    done = run_demo("--framework", framework, "--requests", "40", "--exit", "--port", "0", "--db", str(db))
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout

    # The summary table (the collector CLI's `stats` format) names the routes the traffic visited.
    for route in ("GET /products", "POST /orders", "GET /orders", "GET /feed", "GET /reports/export", "DELETE /admin/cache"):
        assert re.search(rf"^{re.escape(route)}\s+\d+\s", out, re.MULTILINE), f"{route} missing from:\n{out}"
    assert re.search(r"^\d+ events, \d+ errors \(", out, re.MULTILINE)
    assert re.search(r"^alice\s+\d+$", out, re.MULTILINE)  # top users
    assert f"calls blocked_by '{BLOCK_RULE_ID}'" in out
    assert re.search(r"collector page: http://127\.0\.0\.1:\d+/", out)
    assert f"{framework} under {'uvicorn' if framework == 'fastapi' else 'waitress'}" in out
    assert "unexpected answer" not in done.stderr

    events = stored_events(db)
    stored = int(re.search(r"(\d+) events stored", out).group(1))  # type: ignore[union-attr]
    assert len(events) == stored >= 35  # 40 calls, the sampled-out health check gone, the outgoing call added

    def at(path: str) -> list[dict[str, Any]]:
        return [e for e in events if e["request"]["uri"].split("?")[0].endswith(path)]

    [blocked] = [e for e in events if e.get("blocked_by")]
    assert blocked["blocked_by"] == BLOCK_RULE_ID
    assert blocked["request"]["verb"] == "DELETE" and blocked["response"]["status"] == 403
    assert at("/health") == []  # sampled out at 0 % by the served config
    assert {e["response"]["status"] for e in at("/reports/export")} == {500}
    assert any(e["response"]["status"] == 422 for e in at("/orders"))
    assert any(e["response"]["status"] == 201 for e in at("/orders"))
    feeds = at("/feed")
    assert feeds and all(b'"tick": 4' in body_bytes(e["response"]) for e in feeds)  # every chunk of the stream captured
    users = {e.get("user_id") for e in events}
    assert {"alice", "bob", "reporting-bot"} <= users  # JWT sub claims and a Basic auth username
    assert {"acme", "globex"} <= {e.get("company_id") for e in events}  # the JWT org claim
    if outgoing_capture_available():
        assert any(str(e.get("direction")).lower() == "outgoing" for e in events)
    store = EventStore(str(db), readonly=True)
    try:
        assert {c["company_id"] for c in store.entities("companies")} == {"acme", "globex", "initech"}
        assert len(store.entities("users")) == len(USERS)
    finally:
        store.close()


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_keeps_serving_until_interrupted_then_stops_everything(sig: signal.Signals, tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the temporary database lands here, so we can see it removed
    proc = subprocess.Popen(
        [sys.executable, "-m", "moesif_core.demo", "--requests", "20", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by the finally below and the test timeout
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        page = next(line.split()[-1] for line in lines if line.startswith("collector page:"))
        with urllib.request.urlopen(page + "api/summary", timeout=10) as response:  # still serving
            assert response.status == 200
        assert list(tmp_path.glob("moesif-demo-*")), "the temporary database should exist while the demo runs"
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "stopping" in rest
    assert list(tmp_path.glob("moesif-demo-*")) == []


# -- the command line ---------------------------------------------------------------------------------


def test_help_documents_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--framework", "--requests", "--port", "--app-port", "--db", "--exit", "--seed"):
        assert option in out
    assert "{flask,bottle,pyramid,falcon,fastapi}" in out


@pytest.mark.parametrize("args", [["--framework", "django"], ["--requests", "0"], ["--port", "70000"]])
def test_bad_options_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_missing_integration_is_named_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        demo_apps.FRAMEWORKS,
        "bottle",
        demo_apps._Framework("bottle_app", ("bottle", "no_such_integration_xyz"), "pip install bottle-moesif"),
    )
    assert main(["--framework", "bottle", "--port", "0", "--exit"]) == 2
    err = capsys.readouterr().err
    assert "no_such_integration_xyz" in err and "pip install bottle-moesif" in err


def test_a_db_that_is_not_a_collector_database_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("my notes, not a database\n" * 100)
    assert main(["--db", str(not_sqlite), "--port", "0", "--exit"]) == 2
    assert "cannot open collector database" in capsys.readouterr().err
    assert not_sqlite.read_text().startswith("my notes")


def test_importing_the_demo_imports_no_framework() -> None:
    code = (
        "import sys, moesif_core.demo, moesif_core.demo.runner; "
        "print(sorted(m for m in ('flask', 'bottle', 'pyramid', 'falcon', 'fastapi', 'uvicorn', 'waitress') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# -- the parts ------------------------------------------------------------------------------------------


def test_traffic_visits_every_case_first_and_repeats_for_a_seed() -> None:
    calls = plan_calls(60, seed=3, with_outgoing=True)
    assert len(calls) == 60
    assert calls == plan_calls(60, seed=3, with_outgoing=True)
    assert calls != plan_calls(60, seed=4, with_outgoing=True)
    tour = {(c.method, c.path): c.expect for c in calls[:17]}
    assert tour[("DELETE", "/admin/cache")] == {403}
    assert tour[("GET", "/reports/export")] == {500}
    assert tour[("GET", "/feed")] == {200}
    assert ("GET", "/rates") in tour
    assert any(c.body is not None and c.expect == {422} for c in calls[:17])  # a validation error
    assert {c.user.authorization.split()[0] for c in calls if c.user} == {"Bearer", "Basic"}
    assert all(c.path != "/rates" for c in plan_calls(60, seed=3, with_outgoing=False))
    assert len(plan_calls(5, seed=3, with_outgoing=True)) == 5


def test_the_app_sees_the_same_caller_as_the_middleware() -> None:
    assert caller_of("Bearer " + unsigned_jwt({"sub": "alice", "org": "acme"})) == "alice"
    assert caller_of("Basic " + base64.b64encode(b"bot:pw").decode()) == "bot"
    for garbage in (None, "", "Bearer not.a-jwt", "Basic ***", "Digest x", "Bearer " + unsigned_jwt({"sub": 5})):
        assert caller_of(garbage) is None


@pytest.mark.parametrize("prefer_waitress", [True, False], ids=["waitress", "wsgiref"])
def test_wsgi_server_answers_on_loopback_and_stops_its_thread(prefer_waitress: bool) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("hidden from the demo's output")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    server = serve_wsgi(app, prefer_waitress=prefer_waitress)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.name == ("waitress" if prefer_waitress else "wsgiref")
        with urllib.request.urlopen(server.url + "/", timeout=10) as response:
            assert response.read() == b"hello"
    finally:
        server.stop()
    assert not server._thread.is_alive()
    server.stop()  # idempotent


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_on_a_terminal_and_writes_two_lines_elsewhere() -> None:
    piped = io.StringIO()
    bar = ProgressBar(3, piped, "sending")
    for _ in range(3):
        bar.advance("GET /x")
    bar.finish("3 calls")
    assert piped.getvalue() == "sending: 3 calls...\nsending: 3 calls\n"

    tty = _Terminal()
    bar = ProgressBar(4, tty, "sending")
    bar.advance("GET /a")
    bar.advance("GET /b")
    assert tty.getvalue().count("\r") == 2
    assert "[" + "#" * 15 + "-" * 15 + "] 2/4  GET /b" in tty.getvalue()
    bar.finish("done")
    assert tty.getvalue().endswith("\rsending: done\n")


@pytest.mark.e2e
def test_stop_is_bounded_even_when_the_demo_is_cut_mid_traffic(tmp_path: Path) -> None:
    """SIGTERM during the traffic unwinds like Ctrl-C: exit 130, the temporary database removed."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moesif_core.demo", "--requests", "100000", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the traffic has started once the progress line is out
            if line.startswith("sending traffic"):
                break
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(tmp_path.glob("moesif-demo-*")) == []
