"""The ``moesif`` logger, with a once-per-kind guard so a broken part costs one line, not a flood.

Nothing here configures logging (no ``basicConfig``, no handlers): the host app owns that.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Final

__all__ = ["logger", "warn_failure", "warn_once", "warn_rate_limited"]

logger: Final = logging.getLogger("moesif")

_lock = threading.Lock()
_seen: set[str] = set()
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def _after_fork_in_child() -> None:
    # A child forked while another thread held the lock would otherwise wait on it forever.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def warn_once(kind: str, message: str, *args: object, exc_info: bool = False) -> None:
    """Log ``message`` the first time ``kind`` happens in this process; later ones only at DEBUG."""
    with _lock:
        first = kind not in _seen
        _seen.add(kind)
    if first:
        logger.warning(message, *args, exc_info=exc_info)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug(message, *args, exc_info=exc_info)


def warn_failure(kind: str, what: str, exc: BaseException) -> None:
    """One line for our own failure to ``what`` (a capture layer's step); the call goes on."""
    warn_once(kind, "moesif: could not %s (%s: %s)", what, type(exc).__name__, exc)


def warn_rate_limited(kind: str, message: str, *args: object, interval: float = 60.0) -> None:
    """Log ``message`` at most once per ``interval`` seconds for ``kind``, saying how many were held back."""
    now = time.monotonic()
    with _lock:
        last = _last.get(kind)
        if last is not None and now - last < interval:
            _suppressed[kind] = _suppressed.get(kind, 0) + 1
            return
        _last[kind] = now
        held = _suppressed.pop(kind, 0)
    if held:
        logger.warning(message + " (%d similar messages suppressed)", *args, held)
    else:
        logger.warning(message, *args)


def reset_for_tests() -> None:
    """Forget which kinds were logged, so each test sees its first warning."""
    with _lock:
        _seen.clear()
        _last.clear()
        _suppressed.clear()
