"""Per-request cost in-process, wall and CPU, bare vs ours vs the incumbent, for every framework.

Each stack runs in its own worker process (:mod:`benchmarks.worker`) with its own collector
process. For each framework and case, repetitions are interleaved (the order of the three stacks
rotates each repetition) and medians are reported:

- wall: the time to serve ``n`` requests back to back, divided by ``n`` (includes whatever the
  background threads take from the request path through the GIL);
- CPU (request path): process CPU time over those requests;
- CPU incl. sender: process CPU time from the first request until the collector has stored every
  event of the run (the worker idles meanwhile, so this adds the background sender's work).
  moesifasgi delivers at most 100 events/s, so its backlog is not waited for (reported as n/a).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .collector_process import CollectorProcess
from .drivers import CASES
from .stacks import INCUMBENT, INPROCESS_STACKS, PATH
from .stats import median, ratio
from .worker_client import WorkerProcess

__all__ = ["run_inprocess"]

# Seconds to wait for a run's events to reach the collector, per stack kind.
_SETTLE = {"ours": 20.0, "moesifwsgi": 20.0, "moesifasgi": 0.0}


def run_inprocess(frameworks: list[str], n: int, reps: int, warmup: int, logdir: Path, echo: Any = print) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for framework in frameworks:
        rows.extend(_one_framework(framework, n, reps, warmup, logdir, echo))
    return rows


def _one_framework(framework: str, n: int, reps: int, warmup: int, logdir: Path, echo: Any) -> list[dict[str, Any]]:
    collectors: dict[str, CollectorProcess] = {}
    workers: dict[str, WorkerProcess] = {}
    rows: list[dict[str, Any]] = []
    try:
        for stack in INPROCESS_STACKS:
            if stack != "bare":
                collectors[stack] = CollectorProcess(str(logdir / f"collector-inprocess-{framework}-{stack}.log"))
            workers[stack] = WorkerProcess(logdir / f"worker-inprocess-{framework}-{stack}.log")
        setups: dict[str, dict[str, Any]] = {}
        expected: dict[str, int] = {}
        for stack, worker in workers.items():
            collector = collectors.get(stack)
            setups[stack] = worker.call(
                "setup", framework=framework, stack=stack, base_uri=collector.base_uri if collector else None, warmup=warmup
            )
            bad = {case: c["status"] for case, c in setups[stack]["checks"].items() if c["status"] != 200}
            if bad:
                raise RuntimeError(f"{framework}/{stack} does not answer 200: {bad}")
            expected[stack] = len(CASES) * (1 + warmup)
        incumbent = INCUMBENT[framework]
        for case in CASES:
            samples: dict[str, dict[str, list[float | None]]] = {
                s: {"wall": [], "cpu": [], "cpu_all": []} for s in INPROCESS_STACKS
            }
            delivered_all = dict.fromkeys(INPROCESS_STACKS, True)
            for rep in range(reps):
                order = INPROCESS_STACKS[rep % len(INPROCESS_STACKS) :] + INPROCESS_STACKS[: rep % len(INPROCESS_STACKS)]
                for stack in order:
                    worker = workers[stack]
                    result = worker.call("run", case=case, n=n)
                    samples[stack]["wall"].append(result["wall"] / n)
                    samples[stack]["cpu"].append(result["cpu"] / n)
                    if stack in ("bare", PATH):  # nothing sent: all the CPU is the loop's
                        samples[stack]["cpu_all"].append(result["cpu"] / n)
                        continue
                    expected[stack] += n
                    settle = _SETTLE["ours" if stack == "ours" else incumbent]
                    if settle <= 0:
                        delivered_all[stack] = False
                        samples[stack]["cpu_all"].append(None)
                        continue
                    count, _ = collectors[stack].wait_for(expected[stack], settle)
                    cpu_end = worker.call("cpu")["cpu"]
                    if count < expected[stack]:
                        delivered_all[stack] = False
                        samples[stack]["cpu_all"].append(None)
                    else:
                        samples[stack]["cpu_all"].append((cpu_end - (result["cpu_now"] - result["cpu"])) / n)
            base = {key: median(samples["bare"][key]) for key in ("wall", "cpu", "cpu_all")}
            for stack in INPROCESS_STACKS:
                wall = median(samples[stack]["wall"])
                cpu = median(samples[stack]["cpu"])
                cpu_all = median(samples[stack]["cpu_all"]) if delivered_all[stack] else None
                row = {
                    "framework": framework,
                    "case": case,
                    "stack": stack,
                    "label": setups[stack]["label"],
                    "note": setups[stack]["note"],
                    "n": n,
                    "reps": reps,
                    "wall_us": _us(wall),
                    "cpu_us": _us(cpu),
                    "cpu_incl_sender_us": _us(cpu_all),
                    "wall_ratio": ratio(wall, base["wall"]),
                    "cpu_ratio": ratio(cpu, base["cpu"]),
                    "cpu_incl_sender_ratio": ratio(cpu_all, base["cpu_all"]),
                    "wall_samples_us": [_us(v) for v in samples[stack]["wall"]],
                    "wall_ratio_range": _ratio_range(samples[stack]["wall"], samples["bare"]["wall"]),
                }
                if stack != "bare" and not delivered_all[stack]:
                    row["note"] = (row["note"] + "; " if row["note"] else "") + (
                        "sender capped at 100 events/s: backlog not waited for"
                        if incumbent == "moesifasgi" and stack == "incumbent"
                        else "not every event reached the collector in time"
                    )
                rows.append(row)
                echo(_line(row))
    finally:
        for worker in workers.values():
            worker.stop()
        for collector in collectors.values():
            collector.stop()
    return rows


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


def _line(row: dict[str, Any]) -> str:
    def f(v: float | None, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    return (
        f"  {row['framework']:<11} {row['case']:<4} {row['stack']:<9} wall {f(row['wall_us'], '8.1f')} us "
        f"({f(row['wall_ratio'], '.2f')}x)  cpu+sender {f(row['cpu_incl_sender_us'], '8.1f')} us "
        f"({f(row['cpu_incl_sender_ratio'], '.2f')}x)  {row['label']}"
    )


def _ratio_range(values: list[float | None], bare: list[float | None]) -> list[float] | None:
    """Lowest and highest ratio of a run to the bare app's run of the same repetition.

    The three stacks of a repetition run one after the other, so a run's ratio sees the machine
    as it was then; the spread of these ratios is how much the machine moved inside the report.
    """
    ratios = [v / b for v, b in zip(values, bare, strict=True) if v is not None and b]
    return [round(min(ratios), 2), round(max(ratios), 2)] if ratios else None
