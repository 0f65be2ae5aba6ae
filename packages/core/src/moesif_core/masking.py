"""Credentials masked before events leave the process.

Safe by default: unless ``MASK_DEFAULT_CREDENTIALS`` is False, credential headers (Authorization,
Cookie, API keys, CSRF tokens, ...) and credential body fields (password, token, secret, card
numbers, ...) are replaced by ``"*****"``. ``REQUEST_/RESPONSE_HEADER_MASKS`` and
``REQUEST_/RESPONSE_BODY_MASKS`` add names to those lists. Names compare case-insensitively; body
fields are masked at any depth of a JSON body and in ``application/x-www-form-urlencoded`` bodies.
The transaction id header is never masked: it is the event's dedup key.

Example::

    masks = Masks.from_settings(settings)
    headers = {"authorization": "Bearer x", "accept": "*/*"}
    mask_headers(headers, masks.request_headers)  # ["authorization"]; headers["authorization"] == "*****"
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import unquote_plus

from .json_fold import fold
from .settings import Settings

__all__ = [
    "DEFAULT_BODY_MASKS",
    "DEFAULT_HEADER_MASKS",
    "MASK",
    "MAX_BODY_DEPTH",
    "KeyFinder",
    "Masks",
    "mask_form",
    "mask_headers",
    "mask_json",
    "may_hold_masked_field",
]

MASK: Final = "*****"
TRANSACTION_ID_HEADER: Final = "x-moesif-transaction-id"

DEFAULT_HEADER_MASKS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-apikey",
        "x-api-token",
        "x-auth-token",
        "x-access-token",
        "x-refresh-token",
        "x-id-token",
        "x-session-token",
        "x-csrf-token",
        "x-csrftoken",
        "x-xsrf-token",
        "x-amz-security-token",
        "x-goog-api-key",
        "x-functions-key",
        "ocp-apim-subscription-key",
    }
)

DEFAULT_BODY_MASKS: Final = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "new_password",
        "old_password",
        "secret",
        "client_secret",
        "secret_key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "private_key",
        "authorization",
        "credit_card",
        "creditcard",
        "card_number",
        "cardnumber",
        "cvv",
        "cvc",
        "ssn",
    }
)

# orjson cannot serialise deeper than 254 levels; anything below this depth is masked whole
# rather than inspected (a body nested this deep is an attack or a bug, not analytics).
MAX_BODY_DEPTH: Final = 128


def _names(defaults: frozenset[str], extra: Iterable[str], use_defaults: bool) -> frozenset[str]:
    names = {name.strip().lower() for name in extra if isinstance(name, str) and name.strip()}
    if use_defaults:
        names |= defaults
    return frozenset(names)


class Masks:
    """The four name sets of one settings object, lower-case, computed once."""

    __slots__ = ("request_body", "request_headers", "response_body", "response_headers")

    def __init__(
        self,
        *,
        use_defaults: bool = True,
        request_headers: Iterable[str] = (),
        response_headers: Iterable[str] = (),
        request_body: Iterable[str] = (),
        response_body: Iterable[str] = (),
    ) -> None:
        self.request_headers = _names(DEFAULT_HEADER_MASKS, request_headers, use_defaults) - {TRANSACTION_ID_HEADER}
        self.response_headers = _names(DEFAULT_HEADER_MASKS, response_headers, use_defaults) - {TRANSACTION_ID_HEADER}
        self.request_body = _names(DEFAULT_BODY_MASKS, request_body, use_defaults)
        self.response_body = _names(DEFAULT_BODY_MASKS, response_body, use_defaults)

    @classmethod
    def from_settings(cls, settings: Settings) -> Masks:
        return cls(
            use_defaults=settings.mask_default_credentials,
            request_headers=settings.request_header_masks,
            response_headers=settings.response_header_masks,
            request_body=settings.request_body_masks,
            response_body=settings.response_body_masks,
        )


def mask_headers(headers: dict[str, str], names: frozenset[str]) -> list[str]:
    """Mask, in place, the headers (lower-case names) listed in ``names``; returns the names masked."""
    if not names or not headers:
        return []
    hits = names.intersection(headers)
    if not hits:
        return []
    for name in hits:
        headers[name] = MASK
    return sorted(hits)


_CONTAINERS: Final = frozenset({dict, list})
_SAFE_KEYS_LIMIT: Final = 16384
# Per name set: JSON keys already seen not to need masking. Bodies of one API repeat the same keys,
# so most dicts are cleared by one C-level ``issuperset`` instead of a Python loop over their keys.
_safe_keys: dict[frozenset[str], set[str]] = {}


def _walk(value: Any, names: frozenset[str], safe: set[str], depth: int, masked: list[str]) -> Any:
    if depth >= MAX_BODY_DEPTH:
        masked.append("<nested too deep>")
        return MASK
    if type(value) is dict:
        if not safe.issuperset(value):
            for key in value:
                if not isinstance(key, str):
                    continue
                if key.lower() in names:
                    value[key] = MASK
                    masked.append(key)
                elif len(safe) < _SAFE_KEYS_LIMIT:
                    safe.add(key)
        if _CONTAINERS.isdisjoint(map(type, value.values())):
            return value
        pairs: Any = value.items()
    elif _CONTAINERS.isdisjoint(map(type, value)):
        return value
    else:
        pairs = enumerate(value)
    for key, item in pairs:
        if type(item) is dict:
            # The leaf test inlined: a call per small record is most of the cost of list-of-records bodies.
            if depth + 1 < MAX_BODY_DEPTH and safe.issuperset(item) and _CONTAINERS.isdisjoint(map(type, item.values())):
                continue
        elif type(item) is not list:
            continue
        new = _walk(item, names, safe, depth + 1, masked)
        if new is not item:
            value[key] = new
    return value


def mask_json(value: Any, names: frozenset[str], masked: list[str] | None = None) -> Any:
    """Mask, in place, fields of a parsed JSON ``value`` named in ``names`` at any depth; returns the value.

    Field names masked are appended to ``masked`` (names only, for DEBUG logs). Containers nested
    :data:`MAX_BODY_DEPTH` levels deep are replaced by ``"*****"`` whole.
    """
    if type(value) is not dict and type(value) is not list:
        return value
    safe = _safe_keys.get(names)
    if safe is None:
        if len(_safe_keys) >= 64:
            _safe_keys.clear()
        safe = _safe_keys.setdefault(names, set())
    return _walk(value, names, safe, 0, masked if masked is not None else [])


# The one non-ASCII character whose str.lower() is ASCII (KELVIN SIGN -> "k"): a key spelled with
# it is masked by the walk, so a body holding it is always walked (see the test that checks all).
_KELVIN_UTF8: Final = "\u212a".encode()
_JSON_ESCAPED: Final = frozenset(b'"\\') | frozenset(range(32))


class KeyFinder:
    """The prefilter of one name set: a regex for the names as whole JSON keys, on the folded text.

    Names are folded like the text (:mod:`moesif_core.json_fold`), so a key matches its name
    whatever its case. The pattern starts where every folded key does, ``,"``; after it the
    alternation is factored by first byte, so at each key sre follows one branch, not every name.
    """

    __slots__ = ("always", "pattern", "slash", "unicode_names")

    def __init__(self, names: frozenset[str]) -> None:
        encoded = sorted({fold(name.encode("utf-8")) for name in names} - {b""})
        # A name JSON must escape can only appear escaped: such name sets are always walked.
        self.always = any(_JSON_ESCAPED.intersection(name) for name in encoded)
        self.slash = any(b"/" in name for name in encoded)  # "/" may be sent as "\/"
        self.unicode_names = not all(name.isascii() for name in encoded)
        by_first: dict[int, list[bytes]] = {}
        for name in encoded:
            by_first.setdefault(name[0], []).append(name[1:])
        branches = [
            re.escape(bytes([first])) + b"(?:" + b"|".join(re.escape(rest) for rest in rests) + b")"
            for first, rests in by_first.items()
        ]
        self.pattern = re.compile(b',"(?:' + b"|".join(branches) + b')":') if branches else None

    def may_match(self, data: bytes, folded: bytes | None = None) -> bool:
        """False when no key of ``data`` can be one of the names; ``folded`` is ``fold(data)`` if already made."""
        if self.pattern is None:
            return False
        if self.always or (b"\\" in data and (b"\\u" in data or (self.slash and b"\\/" in data))):
            return True  # a key may be spelled with escapes the search cannot see
        if not data.isascii() and (self.unicode_names or _KELVIN_UTF8 in data):
            return True  # only ASCII is folded
        return self.pattern.search(fold(data) if folded is None else folded) is not None

    @classmethod
    def of(cls, names: frozenset[str]) -> KeyFinder:
        """The finder of ``names``, compiled once per name set."""
        finder = _finders.get(names)
        if finder is None:
            if len(_finders) >= 64:
                _finders.clear()
            finder = _finders.setdefault(names, cls(names))
        return finder


_finders: dict[frozenset[str], KeyFinder] = {}


def may_hold_masked_field(data: bytes, names: frozenset[str]) -> bool:
    """False when no key named in ``names`` can be in the JSON text ``data``, so parsing and walking it can be skipped.

    Most bodies hold no credential field. Keys are matched whole and case-insensitively; a hit may
    be inside a string value, and then the walk decides. Bodies with backslash-u escapes (and, for
    non-ASCII names, non-ASCII bodies) are always walked.
    """
    return KeyFinder.of(names).may_match(data)


def mask_form(data: bytes, names: frozenset[str], masked: list[str] | None = None) -> bytes:
    """Mask the values of ``application/x-www-form-urlencoded`` fields named in ``names``; other bytes kept as sent."""
    if not names or not data:
        return data
    parts = data.split(b"&")
    changed = False
    for index, part in enumerate(parts):
        raw_name, _, _ = part.partition(b"=")
        name = unquote_plus(raw_name.decode("latin-1"), errors="replace").strip().lower()
        if name in names:
            parts[index] = raw_name + b"=" + MASK.encode("ascii")
            changed = True
            if masked is not None:
                masked.append(name)
    return b"&".join(parts) if changed else data
