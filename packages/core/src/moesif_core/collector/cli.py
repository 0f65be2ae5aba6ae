"""``moesif-collector``: run the local collector and look at what it received.

``serve`` runs the server; ``tail``, ``stats`` and ``export`` read the SQLite file the server writes
(``--db``, default ``./moesif-collector.sqlite3``) rather than talking to the server: the file is
there whether or not a server is running, SQLite's WAL mode lets them read while it writes, and
nothing but ``serve`` ever listens on a port.

Example::

    moesif-collector serve --app-id my-app --config sampling.json &
    moesif-collector tail --status 5xx
    moesif-collector stats
    moesif-collector export --path /orders > orders.jsonl
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, TextIO

import orjson

from .config_files import ConfigFileError
from .local_collector import DEFAULT_MAX_BODY_BYTES, LocalCollector
from .store import ENTITY_KINDS, EventRow, EventStore, StoreError

__all__ = ["DEFAULT_DB", "DEFAULT_PORT", "format_row", "format_summary", "main"]

DEFAULT_DB: Final = "moesif-collector.sqlite3"
DEFAULT_PORT: Final = 8787
_MEMORY: Final = ":memory:"


class CliError(Exception):
    """A problem the user can fix; printed as ``moesif-collector: error: ...`` with exit status 2."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moesif-collector",
        description="A local stand-in for the Moesif Collector API. `serve` runs it; `tail`, `stats` and `export` "
        "read the SQLite file it writes (--db), so they work with or without a running server.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{serve,tail,stats,export}")

    serve = sub.add_parser(
        "serve",
        help="run the collector until Ctrl-C",
        description="Run the local collector until interrupted. Point the middleware's BASE_URI at the address it prints.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --allow-remote)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    serve.add_argument(
        "--db",
        default=DEFAULT_DB,
        help=f"SQLite file to store into (default ./{DEFAULT_DB}; {_MEMORY} keeps everything in memory)",
    )
    serve.add_argument("--app-id", default=None, help="accept only this X-Moesif-Application-Id (default: any non-empty id)")
    serve.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help='JSON file {"config": {...}, "rules": [...]} served at /v1/config and /v1/rules, reread when it changes',
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest accepted body (default 50 MB, the Moesif API's limit)",
    )
    serve.add_argument("--lenient", action="store_true", help="accept any JSON object as an event (no field checks)")
    serve.add_argument("--allow-remote", action="store_true", help="allow binding an address other than loopback")

    def add_db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite file written by `serve` (default ./{DEFAULT_DB})")

    def add_filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--path", default=None, help="only events whose URI path is exactly this")
        p.add_argument("--status", default=None, help="only this status (e.g. 404) or class (e.g. 5xx)")
        p.add_argument("--user", default=None, help="only events of this user id")

    tail = sub.add_parser(
        "tail",
        help="print events as they arrive, one line each",
        description="Print the latest events, then follow new ones: time method path status latency user.",
    )
    add_db(tail)
    add_filters(tail)
    tail.add_argument("-n", "--lines", type=int, default=10, help="how many existing events to print first (default 10)")
    tail.add_argument("--no-follow", action="store_true", help="print and exit instead of following")
    tail.add_argument("--interval", type=float, default=0.5, help="seconds between looks at the database (default 0.5)")

    stats = sub.add_parser("stats", help="summary: requests per route, error rate, p50/p95 latency, top users")
    add_db(stats)
    stats.add_argument("--top", type=int, default=10, help="how many users to list (default 10)")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")

    export = sub.add_parser(
        "export",
        help="write stored items to stdout as JSON lines",
        description="Write events (exactly as received) or users/companies/subscriptions as JSON lines.",
    )
    add_db(export)
    add_filters(export)
    export.add_argument("--kind", choices=("events", *ENTITY_KINDS), default="events", help="what to export (default events)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 runtime failure, 2 usage problem)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "tail":
            return _tail(args, sys.stdout)
        if args.command == "stats":
            return _stats(args, sys.stdout)
        return _export(args, sys.stdout)
    except (CliError, StoreError, ConfigFileError, ValueError) as exc:
        print(f"moesif-collector: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `moesif-collector export | head`
        return 0
    except OSError as exc:
        print(f"moesif-collector: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


# -- serve --------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    db = None if args.db == _MEMORY else args.db
    collector = LocalCollector(
        application_id=args.app_id,
        host=args.host,
        port=args.port,
        db_path=db,
        config_file=args.config,
        max_body_bytes=args.max_body_bytes,
        strict_events=not args.lenient,
        allow_remote=args.allow_remote,
    )
    try:
        collector.start()
    except OSError as exc:
        collector.close()
        raise OSError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    print(f"moesif local collector listening on {collector.base_uri}", flush=True)
    print(f"  web page:       {collector.base_uri}/", flush=True)
    print(f"  database:       {os.path.abspath(db) if db else 'in memory'}", flush=True)
    print(f"  application id: {args.app_id or 'any non-empty id'}", flush=True)
    print(
        f"  middleware settings: {{'APPLICATION_ID': {args.app_id or 'your-app-id'!r}, 'BASE_URI': {collector.base_uri!r}}}",
        flush=True,
    )
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        collector.close()
        print("moesif local collector stopped", flush=True)
    return 0


# -- reading the database ----------------------------------------------------------------------------


def _open(path: str) -> EventStore:
    if path == _MEMORY:
        raise CliError(f"{_MEMORY} cannot be read from another process; run `serve --db FILE` and pass --db FILE")
    if not os.path.exists(path):
        raise CliError(f"no collector database at {path}; run `moesif-collector serve --db {path}` first, or pass --db")
    return EventStore(path, readonly=True)


def _status_filter(text: str | None) -> str | None:
    if text is None:
        return None
    t = text.strip().lower()
    if (len(t) == 3 and t.isdigit()) or (len(t) == 3 and t[0].isdigit() and t.endswith("xx")):
        return t
    raise CliError(f"--status {text!r} is neither a status such as 404 nor a class such as 5xx")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


def format_row(row: EventRow) -> str:
    """One event as a ``tail`` line: time method path status latency user."""
    when = row.time or datetime.fromtimestamp(row.received).isoformat(timespec="milliseconds")
    status = "-" if row.status is None else str(row.status)
    return f"{when}  {row.method or '-':<7} {row.route or '-'}  {status}  {_ms(row.latency_ms)}  {row.user_id or '-'}"


def _tail(args: argparse.Namespace, out: TextIO) -> int:
    store = _open(args.db)
    filters: dict[str, Any] = {"path": args.path, "status": _status_filter(args.status), "user_id": args.user}
    if args.lines < 0:
        raise CliError("--lines must be >= 0")
    try:
        latest = store.rows(limit=args.lines, newest_first=True, **filters) if args.lines else []
        last_id = max((r.id for r in latest), default=None)
        if last_id is None:  # start after whatever exists, matching or not
            newest = store.rows(limit=1, newest_first=True)
            last_id = newest[0].id if newest else 0
        for row in reversed(latest):
            print(format_row(row), file=out, flush=True)
        while not args.no_follow:
            time.sleep(args.interval)
            for row in store.rows(after=last_id, **filters):
                print(format_row(row), file=out, flush=True)
                last_id = row.id
            newest = store.rows(limit=1, newest_first=True)  # skip past non-matching ones too
            if newest and newest[0].id > last_id:
                last_id = newest[0].id
            elif newest and newest[0].id < last_id:  # the database was cleared: start over
                last_id = 0
    finally:
        store.close()
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """The ``stats`` table: per-route counts, error rates and latency percentiles, then the top users."""
    lines = [
        f"{summary['total']} events, {summary['errors']} errors ({summary['error_rate']:.1%}), "
        f"latency p50 {_ms(summary['p50_ms'])}, p95 {_ms(summary['p95_ms'])}"
    ]
    if summary["routes"]:
        width = max(len(f"{r['method']} {r['route']}") for r in summary["routes"])
        width = max(width, len("route"))
        lines += ["", f"{'route':<{width}}  {'count':>7}  {'errors':>7}  {'p50':>10}  {'p95':>10}"]
        for r in summary["routes"]:
            lines.append(
                f"{r['method'] + ' ' + r['route']:<{width}}  {r['count']:>7}  {r['error_rate']:>7.1%}  "
                f"{_ms(r['p50_ms']):>10}  {_ms(r['p95_ms']):>10}"
            )
    if summary["top_users"]:
        width = max(len("user"), *(len(u["user_id"]) for u in summary["top_users"]))
        lines += ["", f"{'user':<{width}}  {'count':>7}"]
        lines += [f"{u['user_id']:<{width}}  {u['count']:>7}" for u in summary["top_users"]]
    return "\n".join(lines)


def _stats(args: argparse.Namespace, out: TextIO) -> int:
    store = _open(args.db)
    try:
        summary = store.summary(top=args.top)
    finally:
        store.close()
    if args.json:
        out.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(format_summary(summary) + "\n")
    return 0


def _export(args: argparse.Namespace, out: TextIO) -> int:
    store = _open(args.db)
    try:
        if args.kind == "events":
            items = store.events(path=args.path, status=_status_filter(args.status), user_id=args.user)
        else:
            if args.path or args.status or args.user:
                raise CliError("--path, --status and --user filter events only")
            items = store.entities(args.kind)
    finally:
        store.close()
    for item in items:
        out.write(orjson.dumps(item).decode() + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
