"""Steps of recording a call, native when moesif-core's C extension is built.

Under callgrind, around a trivial WSGI app, copying the environ's strings (20 entries; its header
entries only, now) and formatting a transaction id were 40 % of what the capture layer costs a
call in Python: a comprehension pays a type check and a call per entry, and the UUID text five
slices and two formats. ``moesif_core._request_path`` does each in one C call, makes a call's whole record from a
WSGI environ or an ASGI scope (see :func:`native_record_maker`), and takes a queued record out of
the cyclic GC's view (:data:`untrack`). It is built with the other optional extensions (see
:mod:`moesif_core.json_scan`) and ignored under ``MOESIF_PURE_PYTHON=1``; without it the Python
versions run and give the same results.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable, MutableMapping
from typing import Any, Final, Protocol

from .native import native_part

__all__ = ["NATIVE", "NativeRecordMaker", "header_entries", "native_record_maker", "new_transaction_id", "untrack"]

_VARIANT: Final = "89ab89ab89ab89ab"

# Ids need to be unique, not secret: a private generator seeded from the OS is several times
# cheaper than a system call per request. Private, so an app calling random.seed() cannot make
# ids repeat; reseeded in a forked child, so parent and child never share a sequence.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


_CONTENT_KEYS: Final = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


def _py_header_entries(environ: dict[str, Any]) -> dict[str, str]:
    return {
        key: value
        for key, value in environ.items()
        if type(value) is str and type(key) is str and (key[:5] == "HTTP_" or key in _CONTENT_KEYS)
    }


def _py_new_transaction_id() -> str:
    h = f"{_ids.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:32]}"


try:
    _c_module = native_part("_request_path", 2)
    _c_RecordFactory = _c_module.RecordFactory
    _c_header_entries = _c_module.header_entries
    _c_untrack = _c_module.untrack
    _c_uuid4_text = _c_module.uuid4_text
except ImportError:  # no compiler at install time, another interpreter, or turned off
    _c_header_entries = _c_uuid4_text = _c_untrack = _c_RecordFactory = None  # type: ignore[assignment, misc]

NATIVE: Final = _c_header_entries is not None

#: The environ's request headers (its HTTP_* entries and the two CGI content ones, PEP 3333) as
#: a new dict: not the environ itself, which keeps the server's socket, input stream and the
#: framework's objects alive, and none of the server's other strings, which no event reads.
header_entries: Callable[[dict[str, Any]], dict[str, str]] = (
    _c_header_entries if _c_header_entries is not None else _py_header_entries
)

#: A random (version 4) UUID in its usual text form, several times cheaper than ``str(uuid.uuid4())``.
new_transaction_id: Callable[[], str] = (
    functools.partial(_c_uuid4_text, _ids.getrandbits) if _c_uuid4_text is not None else _py_new_transaction_id
)


def _py_untrack(obj: object) -> None:
    """Python cannot take an object out of the cyclic GC's view: records stay tracked."""


#: Takes a queued record out of the cyclic GC's view (see ``_request_path.c``); a no-op in Python.
untrack: Callable[[object], None] = _c_untrack if _c_untrack is not None else _py_untrack


class NativeRecordMaker(Protocol):
    """Makes records in C; each method answers None when the Python version must decide."""

    def from_environ(self, environ: dict[str, Any], now: float, with_transaction_id: bool, /) -> Any: ...

    def from_scope(self, scope: MutableMapping[str, Any], now: float, with_transaction_id: bool, /) -> Any: ...

    def hand_over(self, record: Any, /) -> int: ...


def native_record_maker(prototype: object, overhead: int) -> NativeRecordMaker | None:
    """Records like ``prototype`` (its slots' values as defaults) filled in C from a WSGI environ or an ASGI scope, or None.

    See :func:`moesif_core.record.record_from_environ` and :func:`~moesif_core.record.record_from_scope`,
    which it stands in for: the record's creation and the environ's fields were a third of
    ``begin_exchange``; an ASGI scope's header list was a Python loop. Its ``hand_over`` stands
    in for :func:`moesif_core.record.hand_over` (``overhead``: what a record weighs besides its
    bodies and headers).
    """
    if _c_RecordFactory is None:
        return None
    # Every record shares the prototype's values: a mutable default would be shared too.
    for name in getattr(type(prototype), "__slots__", ()):
        value = getattr(prototype, name, None)
        if type(value) not in _SHAREABLE or (type(value) is tuple and value):
            return None
    factory: NativeRecordMaker = _c_RecordFactory(prototype, _ids.getrandbits, overhead)
    return factory


_SHAREABLE: Final = frozenset({str, int, float, bool, bytes, type(None), tuple})
