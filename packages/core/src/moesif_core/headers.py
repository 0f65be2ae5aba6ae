"""Header lists of the three shapes a :class:`~moesif_core.record.RawExchange` holds -> one plain dict.

The capture layer keeps the headers as the server built them (the environ's header entries, an
ASGI list of byte pairs, a ``start_response`` list) because normalising them costs time in the
request path. Here they become ``{lower-case name: value}``, repeated headers joined with
``", "`` (the incumbent ASGI middleware kept only the last one). Malformed entries are skipped, never raised.

Example::

    normalize_headers([(b"Accept", b"a"), (b"accept", b"b")], "asgi")  # {"accept": "a, b"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .native import native_part

__all__ = ["NATIVE", "native_normalize", "normalize_headers"]

_native: Callable[[Any, str], dict[str, str] | None] | None
try:
    _native = native_part("_headers", 1).normalize
except ImportError:  # no compiler at install time, another interpreter, or turned off
    _native = None

# True when the common shapes are normalised in C (moesif_core._headers, optional like the body
# check): the same dict, about a sixth of an event's build cost less.
NATIVE: Final = _native is not None

_NAME_CACHE_LIMIT: Final = 4096
# "HTTP_X_FOO" -> "x-foo": the same few dozen names repeat on every request.
_wsgi_names: dict[str, str] = {}
_asgi_names: dict[bytes, str] = {}
_pair_names: dict[str, str] = {}
_ENVIRON_CONTENT_KEYS: Final = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


class _EnvironNames(dict[str, str]):
    """Environ key -> header name, ``""`` for keys that are not headers; filled on first sight.

    One subscript a key is the whole per-key cost of picking an environ's headers out (no slice,
    no call), which matters: an environ holds two or three times more keys than headers.
    """

    def __missing__(self, key: str) -> str:
        name = _cgi_to_header(key) if _is_environ_header(key) else ""
        if len(self) >= _NAME_CACHE_LIMIT:  # header names come from clients: never unbounded
            self.clear()
        self[key] = name
        return name


_environ_names = _EnvironNames()


def _cgi_to_header(key: str) -> str:
    """``"HTTP_X_FOO"`` -> ``"x-foo"``, ``"CONTENT_TYPE"`` -> ``"content-type"``."""
    return (key[5:] if key[:5] == "HTTP_" else key).replace("_", "-").lower()


def _is_environ_header(key: str) -> bool:
    return key[:5] == "HTTP_" or key in _ENVIRON_CONTENT_KEYS


def _wsgi_name(key: str) -> str:
    name = _wsgi_names.get(key)
    if name is None:
        name = _cgi_to_header(key)
        if len(_wsgi_names) >= _NAME_CACHE_LIMIT:
            _wsgi_names.clear()
        _wsgi_names[key] = name
    return name


def _asgi_name(key: bytes) -> str:
    name = _asgi_names.get(key)
    if name is None:
        name = key.decode("latin-1").lower()
        if len(_asgi_names) >= _NAME_CACHE_LIMIT:
            _asgi_names.clear()
        _asgi_names[key] = name
    return name


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return str(value)


def _add(out: dict[str, str], name: str, value: str) -> None:
    previous = out.get(name)
    out[name] = value if previous is None else f"{previous}, {value}"


def _pair_name(key: str) -> str:
    name = _pair_names.get(key)
    if name is None:
        name = key.lower()
        if len(_pair_names) >= _NAME_CACHE_LIMIT:
            _pair_names.clear()
        _pair_names[key] = name
    return name


def _fast(headers: Any, style: str) -> dict[str, str]:
    """The common case: well-formed pairs of the declared style; any surprise raises to :func:`_careful`."""
    # One comprehension is the cheapest way to build the dict; repeated names (rare) make it
    # shorter than the list, and only then is the list walked again to join them.
    if style == "asgi":
        asgi_names = _asgi_names
        out = {asgi_names.get(key) or _asgi_name(key): value.decode("latin-1") for key, value in headers}
    elif style in {"wsgi", "environ"}:
        if style == "environ":
            names = _environ_names  # raises on a non-str key (then _careful decides)
            out = {name: value for key, value in headers.items() if (name := names[key])}
        else:
            wsgi_names = _wsgi_names  # _wsgi_name raises on a non-str name
            out = {wsgi_names.get(key) or _wsgi_name(key): value for key, value in headers}
        for value in out.values():
            if type(value) is not str:
                raise TypeError
        return out  # an environ holds one value a name: the server already joined repeats
    else:
        pair_names = _pair_names
        out = {pair_names.get(key) or _pair_name(key): value for key, value in headers}
        for name, value in out.items():
            if type(value) is not str or type(name) is not str:
                raise TypeError
    if len(out) != len(headers):
        return _joined(headers, style)
    return out


def _joined(headers: Any, style: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers:
        if style == "asgi":
            _add(out, _asgi_name(key), value.decode("latin-1"))
        else:
            _add(out, key.lower(), value)
    return out


def _careful(headers: Any, style: str) -> dict[str, str]:
    """Whatever ``headers`` is: a mapping, a list with odd entries, bytes where str was promised."""
    out: dict[str, str] = {}
    try:
        items = headers.items() if hasattr(headers, "items") else headers
        for item in items:
            try:
                key, value = item
                if style == "environ" and not (isinstance(key, str) and _is_environ_header(key)):
                    continue  # the rest of an environ is not headers
                if isinstance(key, (bytes, bytearray, memoryview)):
                    name = bytes(key).decode("latin-1").lower()
                elif isinstance(key, str):
                    name = _wsgi_name(key) if style in ("wsgi", "environ") else key.lower()
                else:
                    continue
                if not name or value is None:
                    continue
                _add(out, name, _text(value))
            except Exception:  # one malformed entry costs that entry only
                continue
    except Exception:
        pass
    return out


def native_normalize() -> Callable[[Any, str], dict[str, str] | None] | None:
    """The native normalisation itself (None when it is not built), for the native event writer to call."""
    return _native


def normalize_headers(headers: Any, style: str) -> dict[str, str]:
    """``record.request_headers`` (or response) of ``style`` ("wsgi", "asgi", "pairs", "environ") -> ``{name: value}``.

    Never raises; a new dict each call, so the caller may mask it in place.
    """
    if not headers:
        return {}
    shaped = type(headers) is dict if style == "environ" else type(headers) in (list, tuple)
    if not shaped:
        return _careful(headers, style)  # a mapping, a generator: rare, and unpacking them blindly misreads them
    if _native is not None:
        out: dict[str, str] | None = _native(headers, style)  # None: unusual, the Python path decides
        if out is not None:
            return out
    try:
        return _fast(headers, style)
    except Exception:
        return _careful(headers, style)
