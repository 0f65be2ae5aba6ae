"""``python -m moesif_core.demo`` (``hatch run demo``): the command line of the demo.

Example::

    hatch run demo                                   # Flask, 300 calls, then wait for Ctrl-C
    hatch run demo --framework fastapi --requests 100 --exit
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from ..collector import StoreError
from .apps import FRAMEWORKS, IntegrationMissing
from .runner import DEFAULT_COLLECTOR_PORT, DemoOptions, run_demo

__all__ = ["main"]

_DESCRIPTION = """\
Run moesif-python end to end on this machine, without a Moesif account: start the local collector
(on 127.0.0.1, serving a sampling config and a governance rule), start a small shop API in the chosen
framework, instrumented with its integration package and served by a real server (waitress, or
uvicorn for FastAPI), send it realistic traffic (JWT and Basic auth users of several companies, JSON
GETs and POSTs, 404s, a validation error, a 500 from a raising view, a streamed response, a call
blocked by the governance rule, and an outgoing call when outgoing capture is available), flush, and
print what the collector received: requests per route, error rate, p50/p95 latency and top users.
Then it keeps the collector and the app running so you can open the collector's page, until Ctrl-C
(or --exit). Nothing listens beyond 127.0.0.1 and nothing is sent anywhere else."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be from 0 to 65535 (0 picks a free port)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m moesif_core.demo", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--framework", choices=tuple(FRAMEWORKS), default="flask", help="which integration to show (default flask)"
    )
    parser.add_argument(
        "--requests",
        type=_positive,
        default=300,
        metavar="N",
        help="how many calls to send (default 300; the first ~17 visit every case once)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_COLLECTOR_PORT,
        help=f"collector port on 127.0.0.1 (default {DEFAULT_COLLECTOR_PORT}, or a free one if it is "
        "taken; 0 always picks a free one)",
    )
    parser.add_argument("--app-port", type=_port, default=0, help="demo app port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--db",
        default=None,
        metavar="FILE",
        help="SQLite file for the collector, kept afterwards (default: a temporary file, removed at the end)",
    )
    parser.add_argument("--seed", type=int, default=8, help="seed of the random part of the traffic (default 8)")
    parser.add_argument(
        "--exit",
        action="store_true",
        help="stop right after printing the summary instead of waiting for Ctrl-C (for scripts and CI)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; exit status 0 when it went as planned, 1 when something did not, 2 for a usage problem."""
    args = build_parser().parse_args(argv)
    options = DemoOptions(
        framework=args.framework,
        requests=args.requests,
        port=args.port,
        app_port=args.app_port,
        db=args.db,
        exit=args.exit,
        seed=args.seed,
    )
    terminated = False

    def on_sigterm(signum: int, frame: Any) -> None:
        # Unwind like Ctrl-C, so every finally block stops what it started; a second SIGTERM does not cut the cleanup short.
        nonlocal terminated
        if not terminated:
            terminated = True
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    # A shell starting us in the background leaves SIGINT ignored; the demo promises that Ctrl-C (SIGINT) stops it.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_demo(options, sys.stdout, sys.stderr)
    except (IntegrationMissing, StoreError) as exc:
        print(f"moesif demo: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"moesif demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmoesif demo: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
