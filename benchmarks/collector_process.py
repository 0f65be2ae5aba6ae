"""The local collector in its own process (so its CPU is never counted as ours), and a dead port.

``moesif-collector serve --port 0 --db :memory: --lenient`` picks a free port on 127.0.0.1 and
prints it; :meth:`CollectorProcess.count` asks its ``/api/events`` for the newest event id, which
is the number of events stored since it started (ids start at 1 in a fresh in-memory store).
``--lenient`` because the incumbents' events are not always what the strict checks expect, and
the same collector must accept everyone's.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["CollectorProcess", "dead_port_uri"]

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")


class CollectorProcess:
    """A started collector subprocess; use as a context manager or call :meth:`stop`."""

    def __init__(self, log_path: str | None = None, *, sink: bool = False) -> None:
        # sink=True: benchmarks.sink, which only checks and counts (it measures the sender, not SQLite).
        if sink:
            cmd = [sys.executable, "-m", "benchmarks.sink", "--port", "0"]
        else:
            cmd = [sys.executable, "-m", "moesif_core.collector", "serve", "--port", "0", "--db", ":memory:", "--lenient"]
        root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        # Its output goes to a file (never a pipe nobody reads: a full or closed pipe would stop it).
        self._log: IO[str] = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop)
            "w+", prefix="moesif-bench-collector-", suffix=".log", delete=log_path is None
        )
        if log_path is not None:
            self._log.close()
            self._log = open(log_path, "w+", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self._conn: http.client.HTTPConnection | None = None
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, text=True, env=env, cwd=root)
        deadline = time.monotonic() + 30
        self.base_uri = ""
        self.port = 0
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self._log.name, encoding="utf-8") as f:
                found = _LISTENING.search(f.read())
            if found:
                self.base_uri, self.port = found.group(1), int(found.group(2))
                break
            time.sleep(0.02)
        if not self.base_uri:
            self.stop()
            raise RuntimeError(f"the local collector did not start (python -m moesif_core.collector serve); see {self._log.name}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def count(self) -> int:
        """Events stored so far."""
        for _ in range(2):
            try:
                if self._conn is None:
                    self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self._conn.request("GET", "/api/events?limit=1")
                response = self._conn.getresponse()
                data: Any = orjson.loads(response.read())
                return int(data.get("last_id", 0))
            except (OSError, http.client.HTTPException, ValueError):
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
        raise RuntimeError("the local collector does not answer")

    def wait_for(self, target: int, timeout: float, poll: float = 0.02) -> tuple[int, float]:
        """Wait until ``target`` events are stored or ``timeout`` passes; (events stored, seconds waited)."""
        start = time.monotonic()
        deadline = start + timeout
        count = self.count()
        while count < target and time.monotonic() < deadline:
            time.sleep(poll)
            count = self.count()
        return count, time.monotonic() - start

    def cpu_seconds(self) -> float:
        """CPU time the collector process used so far (user + system)."""
        try:
            import psutil

            times = psutil.Process(self.proc.pid).cpu_times()
            return float(times.user + times.system)
        except Exception:
            return float("nan")

    def stop(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> CollectorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def dead_port_uri() -> str:
    """An address on 127.0.0.1 where nothing listens (a port just bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
