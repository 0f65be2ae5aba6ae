"""App factories for the HTTP servers: ``gunicorn 'benchmarks.served:wsgi_app()'`` and
``uvicorn --factory benchmarks.served:asgi_app``.

The framework, the stack and the collector address come from the environment
(``BENCH_FRAMEWORK``, ``BENCH_STACK``, ``BENCH_BASE_URI``), set by :mod:`benchmarks.http_load`.
"""

from __future__ import annotations

import os
from typing import Any

from .stacks import build

__all__ = ["asgi_app", "wsgi_app"]


def _target() -> Any:
    return build(os.environ["BENCH_FRAMEWORK"], os.environ["BENCH_STACK"], os.environ.get("BENCH_BASE_URI") or None)


def wsgi_app() -> Any:
    return _target().app


def asgi_app() -> Any:
    return _target().app
