"""Calling the user's callbacks so that nothing they do can reach the app's request.

A raising callback costs one warning per callback name (then DEBUG lines) and its part of the
event; the request goes on untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .log import warn_once

__all__ = ["acall_safely", "call_safely"]


def call_safely(name: str, fn: Callable[..., Any] | None, *args: Any) -> Any:
    """``fn(*args)``, or None when it is unset or raises."""
    if fn is None:
        return None
    try:
        result = fn(*args)
    except Exception as exc:  # the user's code: anything may happen
        warn_once(
            f"callback:{name}", "moesif: %s raised %s: %s; this part of the event is left out", name, type(exc).__name__, exc
        )
        return None
    if inspect.isawaitable(result):
        # An async callback given to a WSGI app: never block a worker thread on an event loop.
        if inspect.iscoroutine(result):
            result.close()
        warn_once(f"callback-async:{name}", "moesif: %s is async but this is a WSGI app; give a plain function", name)
        return None
    return result


async def acall_safely(name: str, fn: Callable[..., Any] | None, *args: Any) -> Any:
    """``fn(*args)``, awaited when it is ``async def`` or returns an awaitable; None when unset or it raises."""
    if fn is None:
        return None
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        warn_once(
            f"callback:{name}", "moesif: %s raised %s: %s; this part of the event is left out", name, type(exc).__name__, exc
        )
        return None
    return result
