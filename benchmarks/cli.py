"""``python -m benchmarks [--quick] [--only inprocess,http,sender,memory] [--out DIR]``.

Runs the chosen sections in one go, prints each figure as it is measured, then the targets,
and writes ``report.md``, ``report.json`` and ``ratios.png`` to ``--out`` (by default
``benchmarks/results`` for a full run and a temporary folder for ``--quick``, so a smoke run
never replaces the committed report). Exit status 0 whatever the figures: this is a benchmark,
not a test; it is 1 only when a section could not run at all.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .apps import FRAMEWORKS
from .machine import describe_machine
from .report import targets_summary, write_chart, write_json, write_markdown

__all__ = ["PROFILES", "main"]

SECTIONS = ("inprocess", "http", "sender", "memory")

# The counts of each profile: a full run stays well under 20 minutes on 2 cores, --quick under 2.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "inprocess": {"n": 2000, "reps": 5, "warmup": 200},
        "http": {"seconds": 3, "reps": 5, "connections": 10},
        "sender": {"n": 20000, "burst": 20000, "timeout": 120.0, "drain_timeouts": {"default": 60.0, "moesifasgi": 20.0}},
        "memory": {"n": 100000, "seconds": {"ours": 150.0, "incumbent": 60.0}},
    },
    "quick": {
        "inprocess": {"n": 100, "reps": 1, "warmup": 10},
        "http": {"seconds": 1, "reps": 1, "connections": 10},
        "sender": {"n": 1000, "burst": 500, "timeout": 30.0, "drain_timeouts": {"default": 10.0, "moesifasgi": 2.0}},
        "memory": {"n": 1000, "seconds": {"ours": 10.0, "incumbent": 5.0}},
    },
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the harness end to end in under 2 minutes")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections (default all): {','.join(SECTIONS)}"
    )
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="in-process frameworks (default all)")
    parser.add_argument("--out", default=None, help="folder for report.md, report.json, ratios.png and logs/")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad:
        parser.error(f"unknown framework(s) {', '.join(bad)}; choose from {', '.join(FRAMEWORKS)}")
    args.only, args.frameworks = only, frameworks
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    if args.out:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="moesif-bench-quick-"))
    else:
        out = Path(__file__).resolve().parent / "results"
    logdir = out / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def echo(text: str) -> None:
        print(text, flush=True)

    machine = describe_machine()
    echo(
        f"moesif-python benchmark ({'quick' if args.quick else 'full'}): {machine['cpu_model']} x{machine['cores']}, "
        f"{machine['python']}, load {machine['load_average_at_start']}; logs in {logdir}"
    )
    results: dict[str, Any] = {
        "machine": machine,
        "config": {"quick": args.quick, **{s: profile[s] for s in args.only}},
        "errors": {},
    }
    for section in args.only:
        echo(f"\n== {section} ==")
        t0 = time.monotonic()
        try:
            results[section] = _run_section(section, profile[section], args.frameworks, logdir, echo)
        except Exception as exc:
            results["errors"][section] = f"{type(exc).__name__}: {exc}"
            echo(f"  {section} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
        echo(f"  ({time.monotonic() - t0:.0f} s)")
    results["targets"] = targets_summary(results)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    echo("\n== targets (ours; figures, not pass/fail) ==")
    for t in results["targets"]:
        fig = f"{t['figure']:.0f}" if "events" in t["target"] else f"{t['figure']:.2f}"
        echo(f"  {t['target']:<36} {t['limit']:<18} {fig:>8}  {t['where']:<22} {'met' if t['met'] else 'NOT met'}")
    if write_chart(out / "ratios.png", results):
        results["chart"] = "ratios.png"
    else:
        echo("  (no chart: matplotlib is not installed in this environment)")
    write_json(out / "report.json", results)
    write_markdown(out / "report.md", results)
    echo(
        f"\nreport: {out / 'report.md'}, {out / 'report.json'}"
        + (f", {out / 'ratios.png'}" if results.get("chart") else "")
        + f" ({results['elapsed_seconds']:.0f} s)"
    )
    return 1 if results["errors"] and len(results["errors"]) == len(args.only) else 0


def _run_section(section: str, cfg: dict[str, Any], frameworks: list[str], logdir: Path, echo: Any) -> Any:
    if section == "inprocess":
        from .inprocess import run_inprocess

        return run_inprocess(frameworks, cfg["n"], cfg["reps"], cfg["warmup"], logdir, echo)
    if section == "http":
        from .http_load import run_http

        return run_http(cfg["seconds"], cfg["reps"], cfg["connections"], logdir, echo)
    if section == "sender":
        from .sender_bench import run_drain, run_throughput

        return {
            "throughput": run_throughput(cfg["n"], logdir, cfg["timeout"], echo),
            "drain": run_drain(cfg["burst"], logdir, cfg["drain_timeouts"], echo),
        }
    if section == "memory":
        from .memory_bench import run_memory

        return run_memory(cfg["n"], cfg["seconds"], logdir, echo)
    raise ValueError(section)
