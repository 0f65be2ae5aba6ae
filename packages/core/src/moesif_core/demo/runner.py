"""The demo from start to finish: collector, app, traffic, flush, summary, then (by default) wait for Ctrl-C.

Everything runs in this process, in daemon threads: the local collector, the rates service the
app calls, and the app under a real server on 127.0.0.1. Each part is stopped by an ExitStack in
the reverse order it was started (app server, then the integration's sender, then the services),
whatever ends the run: the last line, Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

from ..collector import LocalCollector
from ..collector.cli import format_summary
from .apps import FLASK_APP_NAME, FRAMEWORKS, DemoApp, build_app
from .progress import ProgressBar
from .scenario import APPLICATION_ID, BLOCK_RULE_ID, COMPANIES, SERVED_CONFIG, SERVED_RULES, USERS
from .servers import ExpectedFailureFilter, RunningServer, serve_asgi, serve_wsgi
from .traffic import plan_calls, send_calls
from .upstream import RatesService

__all__ = ["DEFAULT_COLLECTOR_PORT", "DemoOptions", "outgoing_capture_available", "run_demo"]

DEFAULT_COLLECTOR_PORT: Final = 8787
_CONFIG_WAIT: Final = 10.0
_CAPTURE_WAIT: Final = 5.0
_FLUSH_TIMEOUT: Final = 15.0
_CLOSE_TIMEOUT: Final = 5.0
# Loggers that report the demo's deliberate 500 with a traceback: Flask's app logger, waitress, uvicorn.
_SERVER_LOGGERS: Final = (FLASK_APP_NAME, "waitress", "uvicorn.error")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    framework: str = "flask"
    requests: int = 300
    port: int = DEFAULT_COLLECTOR_PORT
    app_port: int = 0
    db: str | None = None
    exit: bool = False
    seed: int = 8


def outgoing_capture_available() -> bool:
    """Whether CAPTURE_OUTGOING_REQUESTS can be switched on: it needs ``moesif_core.outgoing`` and ``requests``."""
    try:
        return importlib.util.find_spec("moesif_core.outgoing") is not None and importlib.util.find_spec("requests") is not None
    except (ImportError, ValueError):
        return False


def _start_collector(options: DemoOptions, db_path: str, note: Callable[[str], None]) -> LocalCollector:
    collector = LocalCollector(application_id=APPLICATION_ID, port=options.port, db_path=db_path)
    collector.set_config(SERVED_CONFIG)
    collector.set_rules(SERVED_RULES)
    try:
        collector.start()
    except OSError as exc:
        if options.port != DEFAULT_COLLECTOR_PORT:  # a port the user asked for: say so rather than pick another
            collector.close()
            raise OSError(f"cannot listen on 127.0.0.1:{options.port}: {exc.strerror or exc}") from exc
        collector.close()
        note(f"port {DEFAULT_COLLECTOR_PORT} is taken; the collector uses a free port instead")
        collector = LocalCollector(application_id=APPLICATION_ID, port=0, db_path=db_path)
        collector.set_config(SERVED_CONFIG)
        collector.set_rules(SERVED_RULES)
        collector.start()
    return collector


def _settings(collector: LocalCollector, framework: str, outgoing: bool) -> dict[str, Any]:
    def metadata(*_: Any) -> dict[str, Any]:  # (app, environ) under WSGI, (request, response) under ASGI
        return {"demo": True, "framework": framework}

    return {
        "APPLICATION_ID": APPLICATION_ID,
        "BASE_URI": collector.base_uri,
        "EVENT_BATCH_TIMEOUT": 0.2,
        "AUTHORIZATION_COMPANY_ID_FIELD": "org",
        "GET_METADATA": metadata,
        "CAPTURE_OUTGOING_REQUESTS": outgoing,
    }


def _serve(app: DemoApp, port: int) -> RunningServer:
    if app.interface == "asgi":
        return serve_asgi(app.app, port)
    return serve_wsgi(app.app, port)


def _wait_for_served_config(app: DemoApp) -> bool:
    """Start the integration's sender and wait (bounded) for the collector's config, so the rule applies from the first call."""
    agent = app.integration.agent
    agent.ensure_started()
    deadline = time.monotonic() + _CONFIG_WAIT
    while not agent.config.received:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _wait_for_capture(app: DemoApp, expected: int) -> None:
    """Wait (bounded) until every call is accounted for: queued, sampled out or skipped.

    The client has the whole response before the server finishes the exchange (a WSGI app's
    ``close()`` runs after the last byte is sent), so the last calls may be queued a moment after
    the traffic ends; a flush started before that would not wait for them.
    """
    deadline = time.monotonic() + _CAPTURE_WAIT
    while time.monotonic() < deadline:
        stats = app.integration.stats()
        if stats.get("queued", 0) + stats.get("sampled_out", 0) + stats.get("skipped", 0) >= expected:
            return
        time.sleep(0.02)


def _print_report(
    out: TextIO,
    collector: LocalCollector,
    app: DemoApp,
    server: RunningServer,
    earlier: int,
    outgoing: bool,
    db_shown: str,
) -> None:
    summary = collector.store.summary(top=5)
    events = collector.events()
    blocked = [e for e in events if e.get("blocked_by")]
    outgoing_events = [e for e in events if str(e.get("direction", "")).lower() == "outgoing"]
    stats = app.integration.stats()
    print("", file=out)
    print(format_summary(summary), file=out)
    print("", file=out)
    if earlier:
        print(f"(the database already held {earlier} events from earlier runs; they are counted above)", file=out)
    if blocked:
        calls = sorted({f"{e['request'].get('verb')} {urlsplit(str(e['request'].get('uri', ''))).path}" for e in blocked})
        print(
            f"governance: {len(blocked)} calls blocked_by {BLOCK_RULE_ID!r} ({', '.join(calls)}: 403 before the app ran)",
            file=out,
        )
    else:
        print(f"governance: no call was blocked by {BLOCK_RULE_ID!r}", file=out)
    print(f"sampling:   {stats.get('sampled_out', 0)} calls sampled out by the served config (GET /health at 0 %)", file=out)
    if outgoing:
        print(f"outgoing:   {len(outgoing_events)} calls made by the app with `requests` captured", file=out)
    else:
        print("outgoing:   skipped (outgoing capture, moesif_core.outgoing, is not available in this install)", file=out)
    print(f"entities:   {len(collector.users())} user and {len(collector.companies())} company updates received", file=out)
    print(
        f"delivery:   {stats.get('sent', 0)} events sent, "
        f"{sum(v for k, v in stats.items() if k.startswith('dropped_'))} dropped; {len(events)} events stored",
        file=out,
    )
    print("", file=out)
    print(f"collector page: {collector.base_uri}/", file=out)
    print(f"database:       {db_shown}", file=out)
    print(f"demo app:       {server.url}  ({app.framework} under {server.name})", file=out)


def _show_warnings(stack: ExitStack, err: TextIO) -> None:
    """Show the ``moesif`` logger's warnings on stderr, and hide the tracebacks of the failure the demo causes on purpose.

    Undone when the demo ends: the demo is a program of its own, but it runs inside whoever called it.
    """
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    moesif = logging.getLogger("moesif")
    moesif.addHandler(handler)
    stack.callback(moesif.removeHandler, handler)
    expected = ExpectedFailureFilter()
    for name in _SERVER_LOGGERS:
        log = logging.getLogger(name)
        log.addFilter(expected)
        stack.callback(log.removeFilter, expected)


def run_demo(options: DemoOptions, out: TextIO, err: TextIO, stop: threading.Event | None = None) -> int:
    """Run the demo; 0 when the traffic went as planned and every event arrived, 1 otherwise.

    ``stop`` ends the wait after the summary (the command line sets it on SIGTERM); Ctrl-C ends it too.
    """
    if options.framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {options.framework!r}; choose one of {', '.join(FRAMEWORKS)}")

    def note(text: str) -> None:
        print(f"moesif demo: {text}", file=err, flush=True)

    with ExitStack() as stack:
        _show_warnings(stack, err)
        if options.db is None:
            tmpdir = tempfile.mkdtemp(prefix="moesif-demo-")
            stack.callback(shutil.rmtree, tmpdir, ignore_errors=True)
            db_path = os.path.join(tmpdir, "events.sqlite3")
        else:
            db_path = os.path.abspath(options.db)
        collector = _start_collector(options, db_path, note)
        stack.callback(collector.close)
        earlier = collector.store.count_events()

        outgoing = outgoing_capture_available()
        upstream_url: str | None = None
        if outgoing:
            rates = RatesService()
            stack.callback(rates.stop)
            upstream_url = rates.url
        else:
            note("outgoing capture (moesif_core.outgoing) is not available in this install: the outgoing-call part is skipped")

        app = build_app(options.framework, _settings(collector, options.framework, outgoing), upstream_url)
        stack.callback(app.integration.close, _CLOSE_TIMEOUT)
        server = _serve(app, options.app_port)
        stack.callback(server.stop)
        print(
            f"moesif demo: {options.framework} app at {server.url} ({server.name}), local collector at {collector.base_uri}",
            file=out,
            flush=True,
        )

        if not _wait_for_served_config(app):
            note(f"the collector's config did not arrive within {_CONFIG_WAIT:g} s: sampling and governance may not apply")
        for company in COMPANIES:
            app.integration.update_company(company)
        for user in USERS:
            app.integration.update_user(
                {"user_id": user.user_id, "company_id": user.company_id, "metadata": {"name": user.name, "email": user.email}}
            )

        calls = plan_calls(options.requests, seed=options.seed, with_outgoing=outgoing)
        bar = ProgressBar(len(calls), err, "sending traffic")
        traffic = send_calls(server.url, calls, on_sent=lambda call: bar.advance(call.label))
        bar.finish(
            f"{traffic.sent} calls in {traffic.seconds:.1f} s; answers "
            + ", ".join(f"{status}: {n}" for status, n in sorted(traffic.statuses.items()))
        )

        # One record per call, one per entity update, one per outgoing call the /rates view makes.
        _wait_for_capture(app, len(calls) + len(COMPANIES) + len(USERS) + sum(c.path == "/rates" for c in calls))
        delivered = app.integration.flush(_FLUSH_TIMEOUT)
        if not delivered:
            note(f"not every event was delivered within {_FLUSH_TIMEOUT:g} s (see the delivery line below)")
        db_shown = db_path if options.db is not None else f"{db_path} (temporary, removed when the demo stops)"
        _print_report(out, collector, app, server, earlier, outgoing, db_shown)

        problems = [*traffic.unexpected, *traffic.failed]
        for problem in problems:
            note(f"unexpected answer: {problem}")
        status = 0 if delivered and not problems else 1

        if options.exit:
            return status
        print("", file=out)
        print(
            f"Open {collector.base_uri}/ to browse the events; call the app at {server.url} (e.g. "
            f"curl {server.url}/products) to see new ones arrive. Press Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        print(f"In another shell: moesif-collector tail --db {db_path}   (or stats, export)", file=out, flush=True)
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("\nmoesif demo: stopping", file=out, flush=True)
        return status
    raise AssertionError("unreachable")  # pragma: no cover  (ExitStack does not swallow exceptions)
