"""Sender throughput and drain time.

- Throughput: ``n`` records with request and response bodies of 2 KB submitted straight to a
  :class:`moesif_core.agent.Agent` in a worker process, timed until ``Agent.flush`` says the
  receiver acknowledged every one. Twice: to :mod:`benchmarks.sink`, which checks and counts
  (the sender's own capacity), and to the local collector, which stores before it answers 201
  (end to end; on a 2-core machine its SQLite work is the limit). The receiver's CPU is reported.
- Drain: a burst of ``burst`` POST 2 KB requests through the middleware (in-process driver),
  then the time from the end of the burst until the collector has every event; ours and the
  incumbent, Flask (moesifwsgi) and FastAPI (moesifasgi, bounded: it sends 100 events/s).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .collector_process import CollectorProcess
from .drivers import CASES
from .stacks import INCUMBENT
from .worker_client import WorkerProcess

__all__ = ["WIDE_WORKERS", "run_drain", "run_throughput"]

WIDE_WORKERS = 4


def run_throughput(n: int, logdir: Path, timeout: float, echo: Any = print) -> list[dict[str, Any]]:
    """Our agent's delivery rate to the counting sink (the sender's own capacity) and to the local collector."""
    rows = []
    # Default settings (EVENT_WORKER_COUNT=2, as moesifwsgi) to both receivers; then the sink with
    # four concurrent posts, to show what the setting buys a process that sends a lot.
    for receiver, workers in (("sink", None), ("sink", WIDE_WORKERS), ("collector", None)):
        name = receiver if workers is None else f"{receiver}-{workers}-workers"
        with (
            CollectorProcess(str(logdir / f"{name}-sender.log"), sink=receiver == "sink") as collector,
            WorkerProcess(logdir / f"worker-sender-{name}.log") as worker,
        ):
            collector_cpu0 = collector.cpu_seconds()
            result = worker.call(
                "sender",
                base_uri=collector.base_uri,
                n=n,
                body_bytes=2048,
                queue_max_bytes=1 << 30,
                timeout=timeout,
                workers=workers,
            )
            stored = collector.count()
            result["collector_cpu"] = collector.cpu_seconds() - collector_cpu0
        result["receiver"] = receiver
        result["workers"] = workers
        result["stored"] = stored
        result["events_per_s"] = stored / result["seconds"] if result["seconds"] > 0 else None
        result["sender_cpu_us_per_event"] = result["cpu"] / max(1, stored) * 1e6
        result["collector_cpu_us_per_event"] = result["collector_cpu"] / max(1, stored) * 1e6
        what = "counting sink" if receiver == "sink" else "local collector (SQLite)"
        if workers is not None:
            what += f", EVENT_WORKER_COUNT={workers}"
        echo(
            f"  agent -> {what}: {stored}/{n} events of 2 KB bodies in {result['seconds']:.2f} s -> {result['events_per_s']:.0f} events/s"
            f"  (sender CPU {result['sender_cpu_us_per_event']:.0f} us/event, receiver CPU {result['collector_cpu_us_per_event']:.0f} us/event)"
        )
        rows.append(result)
    return rows


def run_drain(burst: int, logdir: Path, timeouts: dict[str, float], echo: Any = print) -> list[dict[str, Any]]:
    rows = []
    for framework in ("flask", "fastapi"):
        for stack in ("ours", "incumbent"):
            label = "ours" if stack == "ours" else INCUMBENT[framework]
            with (
                CollectorProcess(str(logdir / f"collector-drain-{framework}-{stack}.log")) as collector,
                WorkerProcess(logdir / f"worker-drain-{framework}-{stack}.log") as worker,
            ):
                worker.call("setup", framework=framework, stack=stack, base_uri=collector.base_uri, warmup=20)
                warm = len(CASES) * 21
                collector.wait_for(warm, 5.0 if label != "moesifasgi" else 0.0)
                before = collector.count()
                run = worker.call("run", case="post", n=burst)
                after_burst = collector.count()
                target = warm + burst
                dropped = 0
                if stack == "ours":
                    # Our queue is bounded: what did not fit was dropped and counted, so "drained" means the
                    # queue is empty and nothing is in flight, and the collector holds everything accepted.
                    started = time.monotonic()
                    limit = timeouts.get(label, timeouts["default"])
                    stats = worker.call("stats")
                    while (stats.get("in_queue", 0) or stats.get("in_flight", 0)) and time.monotonic() - started < limit:
                        time.sleep(0.05)
                        stats = worker.call("stats")
                    dropped = sum(v for k, v in stats.items() if k.startswith("dropped_"))
                    target -= dropped
                    count, _ = collector.wait_for(target, 5.0, poll=0.05)
                    waited = time.monotonic() - started
                else:
                    count, waited = collector.wait_for(target, timeouts.get(label, timeouts["default"]), poll=0.05)
            delivered = count - before
            complete = count >= target
            row = {
                "framework": framework,
                "stack": stack,
                "label": label,
                "burst": burst,
                "burst_seconds": run["wall"],
                "delivered_during_burst": after_burst - before,
                "delivered": min(delivered, burst),
                "drain_seconds": waited if complete else None,
                "waited_seconds": waited,
                "complete": complete,
                "rate_after_burst": (count - after_burst) / waited if waited > 0 else None,
                "dropped": dropped,
            }
            rows.append(row)
            drain = f"{waited:.2f} s" if complete else f"not drained after {waited:.0f} s ({row['delivered']}/{burst} delivered)"
            if dropped:
                drain += f"; {dropped} dropped at the queue's bound (EVENT_QUEUE_MAX_BYTES), counted"
            echo(
                f"  {framework:<8} {label:<10} burst of {burst} POST 2 KB in {run['wall']:.1f} s; queue drained {drain}"
                f"  (after the burst: {row['rate_after_burst'] or 0:.0f} events/s)"
            )
    return rows
