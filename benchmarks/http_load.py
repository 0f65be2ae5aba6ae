"""Over HTTP: gunicorn (sync, 1 worker) around Flask and uvicorn (1 worker) around FastAPI.

The three stacks of a server run at once on their own ports (idle while another is loaded),
each wrapped stack with its own collector process. Repetitions are interleaved (the order
rotates); after each load run the orchestrator waits, bounded, until the stack's collector has
every event of it, so one stack's backlog is not sent while the next one is measured
(moesifasgi's is not waited for: it sends at most 100 events/s). Medians are reported.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .apps import ECHO_BODY, ECHO_PATH, SMALL_PATH
from .collector_process import CollectorProcess
from .load_generator import generator_name, run_load
from .stacks import INCUMBENT, STACKS
from .stats import median, ratio

__all__ = ["SERVERS", "run_http"]

ROOT = Path(__file__).resolve().parent.parent
# server -> framework served
SERVERS = {"gunicorn": "flask", "uvicorn": "fastapi"}
_CASES = {"get": ("GET", SMALL_PATH, b""), "post": ("POST", ECHO_PATH, ECHO_BODY)}
_SETTLE = {"ours": 20.0, "moesifwsgi": 20.0, "moesifasgi": 0.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    def __init__(self, server: str, framework: str, stack: str, base_uri: str | None, log: Path) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "BENCH_FRAMEWORK": framework,
            "BENCH_STACK": stack,
            "BENCH_BASE_URI": base_uri or "",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        if server == "gunicorn":
            cmd = [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "1",
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "benchmarks.served:wsgi_app()",
            ]
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.served:asgi_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ]
        self._log = open(log, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{server} ({framework}/{stack}) exited; see {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{server} ({framework}/{stack}) did not listen within 30 s; see {log}")

    def cpu_seconds(self) -> float:
        """CPU time of the server and its children (gunicorn's worker) so far, user + system."""
        import psutil

        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def run_http(seconds: float, reps: int, connections: int, logdir: Path, echo: Any = print) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    delivery: list[dict[str, Any]] = []
    for server, framework in SERVERS.items():
        r, d = _one_server(server, framework, seconds, reps, connections, logdir, echo)
        rows.extend(r)
        delivery.extend(d)
    return {"generator": generator_name(), "connections": connections, "seconds": seconds, "rows": rows, "delivery": delivery}


def _one_server(
    server: str, framework: str, seconds: float, reps: int, connections: int, logdir: Path, echo: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    collectors: dict[str, CollectorProcess] = {}
    servers: dict[str, _Server] = {}
    served = dict.fromkeys(STACKS, 0)
    incumbent = INCUMBENT[framework]
    rows: list[dict[str, Any]] = []
    delivery: list[dict[str, Any]] = []
    try:
        for stack in STACKS:
            base_uri = None
            if stack != "bare":
                collectors[stack] = CollectorProcess(str(logdir / f"collector-http-{server}-{stack}.log"))
                base_uri = collectors[stack].base_uri
            servers[stack] = _Server(server, framework, stack, base_uri, logdir / f"server-{server}-{stack}.log")
        for stack in STACKS:  # warm up: imports, first-call start of the sender, JIT-free but cache-warm
            for method, path, body in _CASES.values():
                served[stack] += run_load(servers[stack].url(path), method, body, 1, connections)["requests"]
        for case, (method, path, body) in _CASES.items():
            results: dict[str, list[dict[str, Any]]] = {stack: [] for stack in STACKS}
            for rep in range(reps):
                order = STACKS[rep % len(STACKS) :] + STACKS[: rep % len(STACKS)]
                for stack in order:
                    cpu_before = servers[stack].cpu_seconds()
                    result = run_load(servers[stack].url(path), method, body, seconds, connections)
                    served[stack] += result["requests"]
                    if stack != "bare":
                        settle = _SETTLE["ours" if stack == "ours" else incumbent]
                        if settle > 0:
                            collectors[stack].wait_for(served[stack], settle, poll=0.05)
                    # The server's CPU for the run and for sending its events: steadier than
                    # requests/s on a shared machine, where a neighbour's burst moves wall time.
                    cpu = servers[stack].cpu_seconds() - cpu_before
                    result["cpu_us"] = cpu / result["requests"] * 1e6 if result["requests"] else None
                    results[stack].append(result)
            base = {key: _median_of(results["bare"], key) for key in ("rps", "p50_ms", "p99_ms", "cpu_us")}
            for stack in STACKS:
                rps = median([r["rps"] for r in results[stack]])
                p50 = median([r["p50_ms"] for r in results[stack]])
                p99 = median([r["p99_ms"] for r in results[stack]])
                cpu_us = _median_of(results[stack], "cpu_us")
                # moesifasgi's backlog is not waited for (see _SETTLE): its sending is not all in its CPU.
                waited = stack != "incumbent" or _SETTLE[incumbent] > 0
                row = {
                    "server": server,
                    "framework": framework,
                    "case": case,
                    "stack": stack,
                    "label": "bare" if stack == "bare" else ("ours" if stack == "ours" else incumbent),
                    "rps": rps,
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "rps_ratio": ratio(rps, base["rps"]),
                    "p99_ratio": ratio(p99, base["p99_ms"]),
                    "cpu_us": cpu_us if waited else None,
                    "cpu_ratio": ratio(cpu_us, base["cpu_us"]) if waited else None,
                    "errors": sum(r["errors"] for r in results[stack]),
                    "rps_samples": [r["rps"] for r in results[stack]],
                }
                rows.append(row)
                echo(
                    f"  {server:<9} {case:<4} {row['label']:<10} {_f(rps, '8.0f')} req/s ({_f(row['rps_ratio'], '.2f')} of bare)"
                    f"  p50 {_f(p50, '.2f')} ms  p99 {_f(p99, '.2f')} ms ({_f(row['p99_ratio'], '.2f')}x)"
                    f"  CPU {_f(row['cpu_us'], '.0f')} us/req ({_f(row['cpu_ratio'], '.2f')}x)  errors {row['errors']}"
                )
        for stack, collector in collectors.items():
            count, _ = collector.wait_for(served[stack], 5.0 if stack == "ours" or incumbent != "moesifasgi" else 0.0)
            delivery.append({"server": server, "stack": stack, "served": served[stack], "delivered": count})
    finally:
        for srv in servers.values():
            srv.stop()
        for collector in collectors.values():
            collector.stop()
    return rows, delivery


def _median_of(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return median(values) if values else None


def _f(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)
