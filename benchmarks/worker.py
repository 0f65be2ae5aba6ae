"""One measured stack in its own process, driven by the orchestrator over stdin/stdout (JSON lines).

A process per stack keeps process CPU time honest: ``time.process_time()`` here counts this
stack's request path and its background threads (our sender, the incumbents' workers and
schedulers) and nothing else, while the collector they deliver to runs in yet another process.
stdout is reserved for the protocol; anything a library prints goes to stderr (a log file).

Operations (one JSON object a line in, one out):
``setup`` {framework, stack, base_uri} · ``run`` {case, n} -> {wall, cpu} · ``cpu`` ·
``memory`` {case, n, seconds} · ``sender`` {n, body_bytes, queue_max_bytes, timeout} · ``exit``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
import time
from typing import Any

import orjson

from .drivers import CASES, Driver, asgi_driver, wsgi_driver
from .stacks import PATH, Target, build, drop_records

__all__ = ["main"]


class _Worker:
    def __init__(self) -> None:
        self.target: Target | None = None
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.drivers: dict[str, Driver] = {}

    def setup(self, framework: str, stack: str, base_uri: str | None, warmup: int = 50) -> dict[str, Any]:
        target = self.target = build(framework, stack, base_uri)
        checks: dict[str, Any] = {}
        for case in CASES:
            driver = wsgi_driver(target.app, case) if target.kind == "wsgi" else asgi_driver(target.app, case, self.loop)
            self.drivers[case] = driver
            status, body = driver.check()
            checks[case] = {"status": status, "bytes": len(body)}
            driver.run(warmup)
        if stack == PATH:
            drop_records()
        return {"label": target.label, "note": target.note, "kind": target.kind, "checks": checks}

    def run(self, case: str, n: int) -> dict[str, Any]:
        driver = self.drivers[case]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        driver.run(n)
        t1 = time.perf_counter()
        cpu1 = time.process_time()
        return {"wall": t1 - t0, "cpu": cpu1 - cpu0, "cpu_now": cpu1}

    def stats(self) -> dict[str, int]:
        """Our agents' counters summed (empty for the incumbents): queued, sent, dropped by reason, in queue."""
        from moesif_core import agent as agent_module

        totals: dict[str, int] = {}
        for live in list(agent_module._agents):
            for key, value in live.stats().items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def memory(self, case: str, n: int, seconds: float) -> dict[str, Any]:
        import psutil

        proc = psutil.Process()
        driver = self.drivers[case]
        rss_before = proc.memory_info().rss
        peak = rss_before
        done = 0
        start = time.monotonic()
        deadline = start + seconds
        step = 500
        samples: list[tuple[int, int]] = []
        while done < n and time.monotonic() < deadline:
            batch = min(step, n - done)
            driver.run(batch)
            done += batch
            rss = proc.memory_info().rss
            peak = max(peak, rss)
            if done % 10_000 < step:
                samples.append((done, rss))
        elapsed = time.monotonic() - start
        time.sleep(1.0)  # let the background retry once more before the last look
        rss_after = proc.memory_info().rss
        return {
            "requests": done,
            "seconds": elapsed,
            "rss_before": rss_before,
            "rss_peak": max(peak, rss_after),
            "rss_after": rss_after,
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "samples": samples,
            "stats": self._stats(),
        }

    def _stats(self) -> dict[str, int] | None:
        """Our agent's counters (None for other stacks)."""
        try:
            from moesif_core.agent import _live_agents

            agents = _live_agents()
        except Exception:
            return None
        if not agents:
            return None
        total: dict[str, int] = {}
        for agent in agents:
            for key, value in agent.stats().items():
                total[key] = total.get(key, 0) + value
        return total

    def sender(
        self, base_uri: str, n: int, body_bytes: int, queue_max_bytes: int, timeout: float, workers: int | None = None
    ) -> dict[str, Any]:
        """Submit ``n`` records with request and response bodies of ``body_bytes`` straight to an Agent."""
        from moesif_core.agent import Agent
        from moesif_core.record import RawExchange
        from moesif_core.settings import Settings

        from .apps import ECHO_BODY
        from .stacks import APPLICATION_ID

        template = (ECHO_BODY * (body_bytes // len(ECHO_BODY) + 1))[:body_bytes]
        marker = b"ord_7f3a9c"  # each record gets its own order id, so no two bodies are the same object or bytes
        config: dict[str, Any] = {
            "APPLICATION_ID": APPLICATION_ID,
            "BASE_URI": base_uri,
            "EVENT_QUEUE_MAX_BYTES": queue_max_bytes,
        }
        if workers is not None:
            config["EVENT_WORKER_COUNT"] = workers
        settings = Settings.resolve(config)
        agent = Agent(settings, user_agent="moesif-bench/1.0")
        now = time.time()
        records = []
        for i in range(n):
            record = RawExchange()
            record.request_time = now
            record.response_time = now + 0.001
            record.method = "POST"
            record.host = "127.0.0.1:8000"
            record.path = "/echo"
            record.request_headers = [
                ("HTTP_HOST", "127.0.0.1:8000"),
                ("CONTENT_TYPE", "application/json"),
                ("CONTENT_LENGTH", str(body_bytes)),
                ("HTTP_USER_AGENT", "bench-client/1.0"),
            ]
            record.request_header_style = "wsgi"
            body = template.replace(marker, f"ord_{i:06d}".encode(), 1)
            record.request_body = body
            record.request_body_size = body_bytes
            record.status = 200
            record.response_headers = [("Content-Type", "application/json"), ("Content-Length", str(body_bytes))]
            record.response_body = template.replace(marker, f"ord_{i:06d}".encode(), 1)  # its own copy, as from a server
            record.response_body_size = body_bytes
            record.client_addr = "127.0.0.1"
            record.transaction_id = f"00000000-0000-4000-8000-{i:012d}"
            records.append(record)
        agent.ensure_started()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        accepted = sum(1 for record in records if agent.submit(record))
        t_submitted = time.perf_counter()
        delivered_all = agent.flush(timeout)
        t_done = time.perf_counter()
        cpu1 = time.process_time()
        stats = agent.stats()
        agent.close(1.0)
        return {
            "n": n,
            "accepted": accepted,
            "submit_seconds": t_submitted - t0,
            "seconds": t_done - t0,
            "flushed": delivered_all,
            "cpu": cpu1 - cpu0,
            "stats": stats,
        }


def main() -> int:
    # The protocol keeps the real stdout; prints from libraries go to stderr.
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    worker = _Worker()
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        command = orjson.loads(line)
        op = command.pop("op")
        try:
            if op == "exit":
                proto.write(orjson.dumps({"ok": True}) + b"\n")
                break
            if op == "cpu":
                answer: dict[str, Any] = {"cpu": time.process_time()}
            elif op == "threads":
                answer = {"threads": threading.active_count()}
            else:
                answer = getattr(worker, op)(**command)
            answer["ok"] = True
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        proto.write(orjson.dumps(answer) + b"\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip atexit: the incumbents' shutdown can hang and ours would spend its SHUTDOWN_TIMEOUT on a dead collector.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
