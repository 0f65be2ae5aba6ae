"""``moesif-collector``: serve over a real socket, and tail/stats/export reading the database it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from moesif_core.collector import EventStore
from moesif_core.collector.cli import main


def make_event(path: str, status: int, user: str | None, latency_ms: int = 100, n: int = 0) -> dict[str, Any]:
    return {
        "request": {"time": "2026-11-21T18:16:46.000", "uri": f"http://app.local{path}?n={n}", "verb": "GET"},
        "response": {"time": f"2026-11-21T18:16:46.{latency_ms:03d}", "status": status},
        "user_id": user,
        "direction": "Incoming",
        "transaction_id": f"tx-{n}",
    }


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "c.sqlite3"
    store = EventStore(str(path))
    store.add_events(
        [
            make_event("/a", 200, "ann", 10, 1),
            make_event("/a", 500, "ann", 30, 2),
            make_event("/b", 404, "bob", 20, 3),
            make_event("/a", 200, None, 20, 4),
        ]
    )
    store.add_entities("users", [{"user_id": "ann"}])
    store.close()
    return path


def test_export_writes_events_exactly_as_received_as_json_lines(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["transaction_id"] for line in lines] == ["tx-1", "tx-2", "tx-3", "tx-4"]
    assert json.loads(lines[0]) == make_event("/a", 200, "ann", 10, 1)


def test_export_filters_and_other_kinds(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--db", str(db), "--path", "/a", "--status", "5xx"]) == 0
    assert [json.loads(x)["transaction_id"] for x in capsys.readouterr().out.splitlines()] == ["tx-2"]
    assert main(["export", "--db", str(db), "--user", "bob"]) == 0
    assert [json.loads(x)["transaction_id"] for x in capsys.readouterr().out.splitlines()] == ["tx-3"]
    assert main(["export", "--db", str(db), "--kind", "users"]) == 0
    assert capsys.readouterr().out == '{"user_id":"ann"}\n'


def test_stats_prints_routes_error_rate_latency_and_top_users(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "4 events, 2 errors (50.0%), latency p50 20.0ms, p95 30.0ms"
    assert "GET /a        3    33.3%      20.0ms      30.0ms" in out
    assert "GET /b        1   100.0%      20.0ms      20.0ms" in out
    assert "ann         2" in out and "bob         1" in out


def test_stats_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", str(db), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["errors"], summary["p50_ms"]) == (4, 2, 20.0)
    assert summary["top_users"] == [{"user_id": "ann", "count": 2}, {"user_id": "bob", "count": 1}]


def test_tail_without_follow_prints_the_last_lines(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--db", str(db), "--no-follow", "-n", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-11-21T18:16:46.000  GET     /b  404  20.0ms  bob",
        "2026-11-21T18:16:46.000  GET     /a  200  20.0ms  -",
    ]
    assert main(["tail", "--db", str(db), "--no-follow", "--status", "500"]) == 0
    assert capsys.readouterr().out.splitlines() == ["2026-11-21T18:16:46.000  GET     /a  500  30.0ms  ann"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["stats", "--db", "{missing}"], "no collector database at"),
        (["export", "--db", ":memory:"], "cannot be read from another process"),
        (["tail", "--db", "{db}", "--status", "teapot"], "--status 'teapot'"),
        (["export", "--db", "{db}", "--kind", "users", "--user", "x"], "filter events only"),
        (["stats", "--db", "{notdb}"], "not a moesif-collector database"),
        (["serve", "--host", "0.0.0.0", "--db", ":memory:"], "allow_remote"),
        (["serve", "--db", ":memory:", "--config", "{missing}"], "cannot read config file"),
    ],
)
def test_usage_problems_exit_2_with_a_clear_message(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    notdb = tmp_path / "other.sqlite3"
    import sqlite3

    sqlite3.connect(notdb).execute("CREATE TABLE t (x)").connection.close()
    argv = [a.format(missing=tmp_path / "absent", db=db, notdb=notdb) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("moesif-collector: error: ")
    assert fragment in err


def test_unknown_command_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fly"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _start_server(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moesif_core.collector", "serve", "--port", "0", *extra],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("moesif local collector listening on http://127.0.0.1:"), first + proc.stderr.read()  # type: ignore[union-attr]
    return proc, first.rsplit(" ", 1)[1].strip()


def _post(base: str, path: str, payload: Any, app_id: str = "dev-app") -> int:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"X-Moesif-Application-Id": app_id, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_serve_stores_into_the_default_database_and_tail_follows_it(tmp_path: Path) -> None:
    config = tmp_path / "sampling.json"
    config.write_text(json.dumps({"config": {"sample_rate": 40}, "rules": []}))
    server, base = _start_server(tmp_path, "--app-id", "dev-app", "--config", str(config))
    tail = None
    try:
        assert _post(base, "/v1/events/batch", [make_event("/first", 200, "ann", 5, 1)]) == 201
        assert _post(base, "/v1/events/batch", [make_event("/x", 200, "ann")], app_id="other") == 401
        req = urllib.request.Request(base + "/v1/config", headers={"X-Moesif-Application-Id": "dev-app"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == {"sample_rate": 40}
        tail = subprocess.Popen(
            [sys.executable, "-m", "moesif_core.collector", "tail", "--interval", "0.05"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert tail.stdout is not None
        assert tail.stdout.readline().split() == ["2026-11-21T18:16:46.000", "GET", "/first", "200", "5.0ms", "ann"]
        assert _post(base, "/v1/events/batch", [make_event("/second", 503, None, 7, 2)]) == 201
        assert tail.stdout.readline().split() == ["2026-11-21T18:16:46.000", "GET", "/second", "503", "7.0ms", "-"]
    finally:
        if tail is not None:
            tail.send_signal(signal.SIGINT)
            assert tail.wait(10) == 0
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "stopped" in out
    assert os.path.exists(tmp_path / "moesif-collector.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "moesif_core.collector", "export"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [json.loads(x)["transaction_id"] for x in done.stdout.splitlines()] == ["tx-1", "tx-2"]


def test_serve_reports_a_busy_port_clearly(tmp_path: Path) -> None:
    server, base = _start_server(tmp_path, "--db", ":memory:")
    try:
        port = base.rsplit(":", 1)[1]
        done = subprocess.run(
            [sys.executable, "-m", "moesif_core.collector", "serve", "--port", port, "--db", ":memory:"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)
    assert server.returncode == 0


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "moesif-collector"
    if not script.exists():
        pytest.skip("moesif-core is not installed with its console scripts in this environment")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0
    assert "serve" in done.stdout and "tail" in done.stdout
