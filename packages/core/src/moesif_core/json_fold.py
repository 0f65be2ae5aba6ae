"""One cheap, lossy view of a JSON text that the sender's byte-level checks share.

Before a JSON body is written into an event byte for byte, two questions need an answer: can it
hold a key that must be masked, and can one of its numbers overflow a double (valid JSON, yet
orjson and other readers refuse ``1e400``)? Parsing would answer both at several times the cost.
Instead one ``bytes.translate`` makes a *folded* copy, ASCII lower-cased, digits written as ``0``,
``{`` written as ``,``, whitespace and ``+`` dropped, and both checks search that copy. Folding
merges and never splits, so a check on the folded text can raise false alarms (then the caller
parses, which is exact) but never miss what it looks for.

In the folded text every key reads ``,"name":`` (a key follows ``{`` or ``,``), so a key pattern
starts with the two-byte literal ``,"``, which ``re`` scans for in C, trying names at keys only.

Example::

    folded = fold(b'{"Token": 1e+400}')  # b',"token":0e000'
    may_overflow(folded)                 # True
"""

from __future__ import annotations

from typing import Final

__all__ = ["fold", "may_overflow"]

_TABLE: Final = bytes(c + 32 if 65 <= c <= 90 else 48 if 48 <= c <= 57 else 44 if c == 123 else c for c in range(256))
_DROPPED: Final = b" \t\r\n+"
# A double overflows past 1.8e308. Safe: an exponent of at most two digits (up to 10^99) on an
# integer part of fewer than 200 digits; anything longer may overflow and takes the exact path.
_LONG_EXPONENT: Final = b"0e000"
_LONG_DIGITS: Final = b"0" * 200


def fold(data: bytes) -> bytes:
    """The folded view of ``data`` (see the module docstring)."""
    return data.translate(_TABLE, _DROPPED)


def may_overflow(folded: bytes) -> bool:
    """False when no number in the text behind ``folded`` can exceed a double's range."""
    return _LONG_EXPONENT in folded or _LONG_DIGITS in folded
