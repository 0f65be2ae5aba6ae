"""Memory while the collector is down: peak RSS over many POST 2 KB requests, nothing listening.

The collector address is a port on 127.0.0.1 that was just released, so every delivery attempt
is refused at once. Ours keeps at most ``EVENT_QUEUE_MAX_BYTES`` (64 MB by default) of records
and counts the rest as dropped; the figures show what that costs in RSS. The incumbent runs the
same requests, bounded in time. The lines each process wrote to its log are counted too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .collector_process import dead_port_uri
from .worker_client import WorkerProcess

__all__ = ["run_memory"]


def run_memory(n: int, seconds: dict[str, float], logdir: Path, echo: Any = print) -> list[dict[str, Any]]:
    rows = []
    for stack in ("ours", "incumbent"):
        label = "ours (flask_moesif)" if stack == "ours" else "moesifwsgi"
        with WorkerProcess(logdir / f"worker-memory-{stack}.log") as worker:
            worker.call("setup", framework="flask", stack=stack, base_uri=dead_port_uri(), warmup=20)
            lines_before = worker.log_lines()
            result = worker.call("memory", case="post", n=n, seconds=seconds[stack])
            result["log_lines"] = worker.log_lines() - lines_before
        result.update({"stack": stack, "label": label, "framework": "flask", "target_requests": n})
        mb = 1 / (1 << 20)
        echo(
            f"  {label:<20} {result['requests']} requests in {result['seconds']:.0f} s, collector down: RSS "
            f"{result['rss_before'] * mb:.0f} MB -> peak {result['rss_peak'] * mb:.0f} MB (end {result['rss_after'] * mb:.0f} MB), "
            f"{result['log_lines']} log lines"
        )
        rows.append(result)
    return rows
