"""``python -m benchmarks.instructions [falcon] [get] [--stack ours] [--scope all|request]``: instructions per request.

Times on a shared machine move by a third between runs; instruction counts under valgrind's
callgrind do not (the same binary, inputs and ``PYTHONHASHSEED`` give the same count), so every
A/B in ANALYSIS.md is counted with this. A stack is driven ``small`` and ``large`` times in two
runs and the difference is divided by ``large - small``, which cancels start-up and imports.

``--scope all`` counts every thread of the process, the sender's included, delivering to the
counting sink (``benchmarks/sink.py``, another process, not counted) and flushed before the end;
``--scope request`` drops each record at ``submit`` (the sender, started by the first call, idles):
the request path alone.
Needs ``valgrind`` on the PATH (Debian's package); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from .apps import FRAMEWORKS
from .collector_process import CollectorProcess
from .drivers import CASES, asgi_driver, wsgi_driver
from .stacks import STACKS, build

__all__ = ["count", "drive", "main"]

_COLLECTED = re.compile(r"Collected : (\d+)")
_WARMUP = 200


def drive(framework: str, case: str, stack: str, n: int, scope: str, base_uri: str) -> None:
    """The measured program: build the stack, warm it up, flush, then drive it ``n`` more times."""
    target = build(framework, stack, base_uri)
    from moesif_core import agent as agent_module

    loop = asyncio.new_event_loop()
    driver = wsgi_driver(target.app, case) if target.kind == "wsgi" else asgi_driver(target.app, case, loop)
    # One call first: Starlette builds its middleware (and so our agent) at the first call.
    driver.run(1)
    agents = list(agent_module._agents)
    if scope == "request":
        for agent in agents:
            agent.flush(30)
            agent.submit = lambda record: True  # type: ignore[method-assign]
    driver.run(_WARMUP)
    for agent in agents:
        agent.flush(30)
    driver.run(n)
    for agent in agents:
        if not agent.flush(60):
            raise SystemExit("the sender did not deliver every event: the count would leave some out")


def count(framework: str, case: str, stack: str, scope: str, small: int = 200, large: int = 1200) -> int:
    """Instructions per request of ``stack`` (see the module docstring)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with CollectorProcess(sink=True) as sink:
        totals = []
        for n in (small, large):
            done = subprocess.run(
                [
                    valgrind,
                    "--tool=callgrind",
                    "--callgrind-out-file=/dev/null",
                    sys.executable,
                    "-m",
                    "benchmarks.instructions",
                    "--child",
                    framework,
                    case,
                    "--stack",
                    stack,
                    "--scope",
                    scope,
                    "--n",
                    str(n),
                    "--base-uri",
                    sink.base_uri,
                ],
                env={**os.environ, "PYTHONHASHSEED": "0"},
                capture_output=True,
                text=True,
                check=False,
            )
            found = _COLLECTED.search(done.stderr)
            if done.returncode != 0 or found is None:
                raise SystemExit(f"the measured run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
            totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) // (large - small)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[1])
    parser.add_argument("framework", nargs="?", default="falcon", choices=FRAMEWORKS)
    parser.add_argument("case", nargs="?", default="get", choices=CASES)
    parser.add_argument("--stack", default="ours", choices=STACKS)
    parser.add_argument("--scope", default="all", choices=("all", "request"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--base-uri", default="", help=argparse.SUPPRESS)
    args: Any = parser.parse_args(argv)
    if args.child:
        drive(args.framework, args.case, args.stack, args.n, args.scope, args.base_uri)
        sys.stdout.flush()
        os._exit(0)  # no interpreter teardown in the count
    per_request = count(args.framework, args.case, args.stack, args.scope)
    print(f"{args.framework} {args.case} {args.stack} (scope {args.scope}): {per_request} instructions a request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
