"""The load: ``wrk`` (Debian package ``wrk``) when installed, else a bounded Python loop in a subprocess.

Both keep ``connections`` keep-alive connections busy for ``seconds`` against 127.0.0.1 and
report requests/s, p50 and p99 latency and the number of requests that did not answer 2xx.
The Python fallback (``python -m benchmarks.load_generator URL ...``) is a thread per
connection: it saturates a sync gunicorn worker, but its own overhead is larger than wrk's, so
compare only figures taken with the same generator (the report says which).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["generator_name", "run_load"]

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python-threads"


def run_load(url: str, method: str, body: bytes, seconds: float, connections: int) -> dict[str, Any]:
    """Load ``url``; {"rps", "p50_ms", "p99_ms", "requests", "errors"}."""
    if shutil.which("wrk"):
        return _wrk(url, method, body, seconds, connections)
    return _python(url, method, body, seconds, connections)


def _wrk(url: str, method: str, body: bytes, seconds: float, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f"wrk.method = {_lua_string(method)}\n")
        if body:
            script.write(f"wrk.body = {_lua_string(body.decode())}\n")
            script.write('wrk.headers["Content-Type"] = "application/json"\n')
    try:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script.name, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    finally:
        os.unlink(script.name)
    return _parse_wrk(out)


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _parse_wrk(out: str) -> dict[str, Any]:
    def latency(pct: str) -> float | None:
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
        return float(found.group(1)) * _UNITS[found.group(2)] if found else None

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": int(total.group(1)) if total else 0,
        "errors": errors,
    }


def _python(url: str, method: str, body: bytes, seconds: float, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(body)
    try:
        cmd = [sys.executable, "-m", "benchmarks.load_generator", url, method, f.name, str(seconds), str(connections)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        out = subprocess.run(cmd, capture_output=True, timeout=seconds + 60, check=True, env=env).stdout
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = orjson.loads(out)
    return result


def _python_main(url: str, method: str, body_path: str, seconds: float, connections: int) -> dict[str, Any]:
    body = Path(body_path).read_bytes()
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"} if body else {}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.monotonic() + seconds

    def loop(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                conn.request(method, parts.path or "/", body=body or None, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
                continue
            latencies[index].append((time.perf_counter() - start) * 1000)
        conn.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - begin
    flat = sorted(x for per in latencies for x in per)

    def pct(p: float) -> float | None:
        return flat[min(len(flat) - 1, int(len(flat) * p / 100))] if flat else None

    return {"rps": len(flat) / elapsed, "p50_ms": pct(50), "p99_ms": pct(99), "requests": len(flat), "errors": sum(errors)}


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(_python_main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))).decode()
    )
