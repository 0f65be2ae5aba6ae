"""The report: a terminal summary, Markdown, JSON and a PNG chart of the ratios.

Targets are printed beside the figures as "met" / "not met": they are facts about this run on
this machine, never a pass/fail exit status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["TARGETS", "targets_summary", "write_chart", "write_json", "write_markdown"]

TARGETS = {
    "inprocess_wall_get": 1.15,
    "inprocess_wall_post": 1.30,
    "inprocess_cpu_get": 1.35,
    "inprocess_cpu_post": 1.60,
    "http_rps_ratio_min": 0.90,
    "http_p99_ratio_max": 1.20,
    "sender_events_per_s_min": 20000,
}


def _f(v: Any, spec: str, none: str = "n/a") -> str:
    return none if v is None else format(v, spec)


def targets_summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per target: what, the limit, the worst figure of ours, met or not."""
    out: list[dict[str, Any]] = []
    ours = [r for r in results.get("inprocess", []) if r["stack"] == "ours"]
    for case in ("get", "post"):
        rows = [r for r in ours if r["case"] == case]
        for key, metric, name in (
            ("wall", "wall_ratio", "in-process wall"),
            ("cpu", "cpu_incl_sender_ratio", "in-process CPU incl. sender"),
        ):
            limit = TARGETS[f"inprocess_{key}_{case}"]
            values = {r["framework"]: r[metric] for r in rows if r[metric] is not None}
            if values:
                worst = max(values, key=lambda k: values[k])
                out.append(
                    {
                        "target": f"{name}, {case.upper()}",
                        "limit": f"<= {limit}x bare",
                        "figure": values[worst],
                        "where": f"worst: {worst}",
                        "met": values[worst] <= limit,
                        "all": {k: round(v, 2) for k, v in values.items()},
                    }
                )
    http = [r for r in results.get("http", {}).get("rows", []) if r["stack"] == "ours"]
    if http:
        rps = {f"{r['server']} {r['case']}": r["rps_ratio"] for r in http if r["rps_ratio"] is not None}
        p99 = {f"{r['server']} {r['case']}": r["p99_ratio"] for r in http if r["p99_ratio"] is not None}
        if rps:
            worst = min(rps, key=lambda k: rps[k])
            out.append(
                {
                    "target": "HTTP requests/s",
                    "limit": f">= {TARGETS['http_rps_ratio_min']} of bare",
                    "figure": rps[worst],
                    "where": f"worst: {worst}",
                    "met": rps[worst] >= TARGETS["http_rps_ratio_min"],
                    "all": {k: round(v, 2) for k, v in rps.items()},
                }
            )
        if p99:
            worst = max(p99, key=lambda k: p99[k])
            out.append(
                {
                    "target": "HTTP p99 latency",
                    "limit": f"<= {TARGETS['http_p99_ratio_max']}x bare",
                    "figure": p99[worst],
                    "where": f"worst: {worst}",
                    "met": p99[worst] <= TARGETS["http_p99_ratio_max"],
                    "all": {k: round(v, 2) for k, v in p99.items()},
                }
            )
    for t in results.get("sender", {}).get("throughput") or []:
        if t.get("receiver") != "sink" or not t.get("events_per_s"):
            continue
        workers = t.get("workers")
        out.append(
            {
                "target": "sender events/s (2 KB bodies)"
                + (f", EVENT_WORKER_COUNT={workers}" if workers else ", default settings"),
                "limit": f">= {TARGETS['sender_events_per_s_min']}",
                "figure": t["events_per_s"],
                "where": "one process, to the counting sink",
                "met": t["events_per_s"] >= TARGETS["sender_events_per_s_min"],
            }
        )
    return out


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    path.write_text("\n".join(markdown_lines(results)) + "\n", encoding="utf-8")


def markdown_lines(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    cfg = results["config"]
    lines = [
        "# moesif-python benchmark: bare app vs ours vs the incumbents",
        "",
        f"Run {m['date']}{' (--quick: smoke counts, not figures to quote)' if cfg.get('quick') else ''}; "
        f"commit {m.get('git_commit') or '?'}; {m['cpu_model']}, {m['cores']} cores, {m['os']}, {m['python']}; "
        f"load average at start {m.get('load_average_at_start')}. Medians of interleaved repetitions; compare ratios, "
        "absolute times drift with the machine's load. How to read this: benchmarks/README.md.",
        "",
        "Packages: "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
        + (f"; {m['wrk']}" if m.get("wrk") else "")
        + (f". moesif-core: {m['native']}" if m.get("native") else "")
        + ".",
        "",
    ]
    targets = results.get("targets") or []
    if targets:
        lines += ["## Targets (ours)", "", "| target | limit | figure | where | met |", "| --- | --- | --- | --- | --- |"]
        for t in targets:
            fig = f"{t['figure']:.0f}" if "events" in t["target"] else f"{t['figure']:.2f}"
            lines.append(f"| {t['target']} | {t['limit']} | {fig} | {t['where']} | {'yes' if t['met'] else 'no'} |")
        if not all(t["met"] for t in targets):
            lines += [
                "",
                "Where the time goes and what stands in the way of the targets not met, from profiles: "
                "[benchmarks/ANALYSIS.md](../ANALYSIS.md).",
            ]
        lines.append("")
    inproc = results.get("inprocess") or []
    if inproc:
        lines += [
            f"## In-process cost per request ({cfg['inprocess']['n']} requests a run, {cfg['inprocess']['reps']} interleaved runs; "
            "hand-made WSGI environ / raw ASGI scope; bodies logged; sender delivering to a collector in another process)",
            "",
            "The row *ours, request path alone* is ours with each record dropped at `submit` (the sender idle): what "
            "the capture costs the request itself. The difference to the row *ours* above it is the sender's share: "
            "its threads build, compress and post each event while the request thread waits for the GIL.",
            "",
            "| framework | case | stack | wall µs | wall ratio | wall ratio, runs | CPU µs during the loop | CPU µs incl. sender | CPU ratio incl. sender | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in inproc:
            spread = r.get("wall_ratio_range")
            runs = f"{spread[0]:.2f}-{spread[1]:.2f}x" if spread and r["stack"] != "bare" else ""
            lines.append(
                f"| {r['framework']} | {r['case'].upper()} | {r['label']} | {_f(r['wall_us'], '.1f')} | {_f(r['wall_ratio'], '.2f')}x | {runs} | "
                f"{_f(r['cpu_us'], '.1f')} | {_f(r['cpu_incl_sender_us'], '.1f')} | {_f(r['cpu_incl_sender_ratio'], '.2f', 'n/a')}"
                f"{'x' if r['cpu_incl_sender_ratio'] is not None else ''} | {r['note']} |"
            )
        lines.append("")
    http = results.get("http")
    if http:
        lines += [
            f"## Over HTTP ({http['generator']}, {http['connections']} connections, {http['seconds']} s a run, 1 worker; "
            "gunicorn sync + Flask, uvicorn + FastAPI)",
            "",
            "| server | case | stack | requests/s | of bare | p50 ms | p99 ms | p99 vs bare | server CPU µs/request | CPU vs bare | errors |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in http["rows"]:
            cpu_ratio = r.get("cpu_ratio")
            lines.append(
                f"| {r['server']} | {r['case'].upper()} | {r['label']} | {_f(r['rps'], '.0f')} | {_f(r['rps_ratio'], '.2f')} | "
                f"{_f(r['p50_ms'], '.2f')} | {_f(r['p99_ms'], '.2f')} | {_f(r['p99_ratio'], '.2f')}x | "
                f"{_f(r.get('cpu_us'), '.0f', 'n/a')} | {_f(cpu_ratio, '.2f', 'n/a')}{'x' if cpu_ratio is not None else ''} | {r['errors']} |"
            )
        if http.get("delivery"):
            lines += [
                "",
                "Events delivered by the end of the section: "
                + "; ".join(f"{d['server']} {d['stack']}: {d['delivered']} of {d['served']} served" for d in http["delivery"])
                + ".",
            ]
        lines.append("")
    sender = results.get("sender")
    if sender:
        lines += ["## Sender", ""]
        for t in sender.get("throughput") or []:
            receiver = (
                "the counting sink (`benchmarks/sink.py`: un-gzips, checks and counts)"
                if t["receiver"] == "sink"
                else "the local collector (parses and stores each event in SQLite before it answers)"
            )
            if t.get("workers"):
                receiver += f", with EVENT_WORKER_COUNT={t['workers']} (default 2)"
            lines.append(
                f"- Agent alone -> {receiver}: {t['stored']} of {t['n']} records with 2 KB request and response bodies "
                f"acknowledged in {t['seconds']:.2f} s: **{_f(t['events_per_s'], '.0f')} events/s** (one process; sender CPU "
                f"{t['sender_cpu_us_per_event']:.0f} µs/event; the receiver used {t['collector_cpu_us_per_event']:.0f} µs/event)."
            )
        for d in sender.get("drain", []):
            drained = (
                f"drained in **{d['drain_seconds']:.2f} s**"
                if d["complete"]
                else (f"**not drained** after {d['waited_seconds']:.0f} s ({d['delivered']} of {d['burst']} delivered)")
            )
            lines.append(
                f"- {d['framework']} + {d['label']}: burst of {d['burst']} POST 2 KB requests in {d['burst_seconds']:.1f} s "
                f"({d['delivered_during_burst']} delivered during it); queue {drained}; "
                f"{_f(d['rate_after_burst'], '.0f')} events/s after the burst."
            )
        lines.append("")
    memory = results.get("memory")
    if memory:
        lines += [
            "## Memory with the collector down (Flask, POST 2 KB, nothing listening on the collector port)",
            "",
            "| stack | requests | seconds | RSS before MB | peak RSS MB | RSS at end MB | log lines | counters |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        mb = 1 / (1 << 20)
        for r in memory:
            stats = r.get("stats") or {}
            counters = (
                ", ".join(
                    f"{k}={v}"
                    for k, v in sorted(stats.items())
                    if v and (k.startswith("dropped") or k in ("queued", "sent", "in_queue", "retried"))
                )
                or ""
            )
            lines.append(
                f"| {r['label']} | {r['requests']} | {r['seconds']:.0f} | {r['rss_before'] * mb:.0f} | {r['rss_peak'] * mb:.0f} | "
                f"{r['rss_after'] * mb:.0f} | {r['log_lines']} | {counters} |"
            )
        lines.append("")
    if results.get("chart"):
        lines += [f"![ratios]({results['chart']})", ""]
    if results.get("errors"):
        lines += ["## Sections that failed", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()] + [""]
    return lines


def write_chart(path: Path, results: dict[str, Any]) -> bool:
    """Bars of the ratios to bare (ours vs the incumbent) with the targets; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    inproc = results.get("inprocess") or []
    http = (results.get("http") or {}).get("rows") or []
    panels = [p for p in ("inprocess", "http") if (inproc if p == "inprocess" else http)]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    for ax, panel in zip((a[0] for a in axes), panels, strict=True):
        if panel == "inprocess":
            keys = sorted({(r["framework"], r["case"]) for r in inproc}, key=lambda k: (k[1], k[0]))
            get = {(r["framework"], r["case"], r["stack"]): r["wall_ratio"] for r in inproc}
            labels = [f"{fw}\n{case.upper()}" for fw, case in keys]
            ours = [get.get((fw, case, "ours")) or 0 for fw, case in keys]
            inc = [get.get((fw, case, "incumbent")) or 0 for fw, case in keys]
            title = "In-process wall time per request, ratio to the bare app (lower is better)"
            ax.axhline(TARGETS["inprocess_wall_get"], color="green", linestyle="--", linewidth=1, label="target GET 1.15x")
            ax.axhline(TARGETS["inprocess_wall_post"], color="olive", linestyle=":", linewidth=1, label="target POST 1.30x")
        else:
            keys = sorted({(r["server"], r["case"]) for r in http})
            get = {(r["server"], r["case"], r["stack"]): r["rps_ratio"] for r in http}
            labels = [f"{srv}\n{case.upper()}" for srv, case in keys]
            ours = [get.get((srv, case, "ours")) or 0 for srv, case in keys]
            inc = [get.get((srv, case, "incumbent")) or 0 for srv, case in keys]
            title = "Requests/s over HTTP, fraction of the bare app (higher is better)"
            ax.axhline(TARGETS["http_rps_ratio_min"], color="green", linestyle="--", linewidth=1, label="target 0.90")
        x = range(len(labels))
        ax.bar([i - 0.2 for i in x], ours, width=0.4, label="ours", color="#2b7bba")
        ax.bar([i + 0.2 for i in x], inc, width=0.4, label="incumbent (moesifwsgi / moesifasgi)", color="#d9822b")
        ax.axhline(1.0, color="black", linewidth=0.8)
        for i, (a, b) in enumerate(zip(ours, inc, strict=True)):
            ax.text(i - 0.2, a, f"{a:.2f}", ha="center", va="bottom", fontsize=7)
            ax.text(i + 0.2, b, f"{b:.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    m = results["machine"]
    fig.suptitle(f"moesif-python benchmark, {m['date']}, {m['cpu_model']} x{m['cores']}, {m['python']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
