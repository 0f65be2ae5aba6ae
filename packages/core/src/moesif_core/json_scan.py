"""The one-pass check that lets a JSON body go into its event byte for byte, when it is built.

The sender asks of every JSON body: is it valid JSON and UTF-8, can no number in it overflow a
double, and does no key need masking? Answered with the standard library and msgspec that takes
four passes over the bytes (:mod:`moesif_core.json_fold`, the key regex of
:class:`~moesif_core.masking.KeyFinder`, a msgspec syntax check, a UTF-8 check), most of the
sender's time per event. The optional C extension ``moesif_core._json_scan`` answers in one pass
with no allocation. It is built when moesif-core is installed from source with a C compiler, and
used when it imports; without it the pure-Python checks run and give the same events.

It is conservative by design: "yes" only for what it checked exactly; anything unusual (an
escaped or non-ASCII-folding key, a long exponent, deep nesting, a byte order mark) is "no", and
the caller takes the exact path, which parses. Set ``MOESIF_PURE_PYTHON=1`` to never load it.

Example::

    check = plain_json_check(frozenset({"password"}))
    if check is not None and check(body):
        ...  # embed ``body`` as an orjson.Fragment
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .native import native_part

__all__ = ["NATIVE", "PlainJsonCheck", "plain_json_check"]

# data -> True when it may go into the event as it is.
PlainJsonCheck = Callable[[bytes], bool]

try:
    Scanner = native_part("_json_scan", 1).Scanner
except ImportError:  # no compiler at install time, another interpreter, or turned off
    Scanner = None  # type: ignore[assignment, misc]

NATIVE: Final = Scanner is not None


def _scannable(name: str) -> bool:
    """Names the native pass compares byte for byte: printable ASCII a JSON key holds unescaped."""
    return name.isascii() and name.isprintable() and '"' not in name and "\\" not in name and name == name.lower()


def plain_json_check(names: frozenset[str]) -> PlainJsonCheck | None:
    """The native check for bodies masked by ``names`` (lower-case), or None (use the Python checks)."""
    if Scanner is None or not all(_scannable(name) for name in names):
        return None
    check = _checks.get(names)
    if check is None:
        if len(_checks) >= 64:  # name sets come from settings objects: a handful per process
            _checks.clear()
        check = _checks.setdefault(names, Scanner(name.encode("ascii") for name in names if name).plain)
    return check


_checks: dict[frozenset[str], PlainJsonCheck] = {}
