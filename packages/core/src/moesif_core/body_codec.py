"""Captured body bytes -> the event's ``body`` and ``transfer_encoding``.

The spec's rule: a body whose text is a JSON object or array goes as that value with ``"json"``;
anything else (binary, forms, XML, plain text, JSON scalars) goes as standard base64 with
``"base64"``; no body gives ``(None, None)``. gzip and deflate are undone first, with the output
capped so a small compressed body cannot expand into gigabytes, and tolerating streams cut short
by the capture cap. Nothing here raises on bad input.

Example::

    encode_body(b'{"a": 1}', None, "application/json")  # ({"a": 1}, "json")
    encode_body(b"\\x00\\x01", None, None)                # ("AAE=", "base64")
"""

from __future__ import annotations

import base64
import sys
import zlib
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import msgspec
import orjson

from .json_fold import fold, may_overflow
from .json_scan import PlainJsonCheck

__all__ = ["DecodedBody", "decode_body", "decompress", "encode_body"]

_GZIP_OR_ZLIB: Final = 32 + zlib.MAX_WBITS  # zlib detects either header
_RAW_DEFLATE: Final = -zlib.MAX_WBITS
_BOM: Final = b"\xef\xbb\xbf"
_JSON_START: Final = (b"{", b"[")
_WHITESPACE: Final = b" \t\r\n"
_NOT_JSON: Final[Any] = object()
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
# Checks JSON syntax without building a single Python object: several times cheaper than a parse.
_SYNTAX_CHECK: Final = msgspec.json.Decoder(msgspec.Raw)
_new_tuple: Final = tuple.__new__
_DEFAULT_RECURSION_LIMIT: Final = 1000
_SAFE_CONTAINERS: Final = 254  # so many containers cannot nest deeper than orjson writes


class DecodedBody(NamedTuple):
    body: Any  # a dict or list for "json", a base64 str for "base64", None when there is no body
    transfer_encoding: str | None
    cut: bool  # the decompressed body reached the size cap and was cut there


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    """Undo one zlib-family layer, at most ``limit`` bytes out; a stream cut short gives what it held."""
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(data, limit)
    # Concatenated gzip members (rare, but legal) each need a fresh decompressor.
    while decompressor.eof and decompressor.unused_data and len(out) < limit:
        rest = decompressor.unused_data
        decompressor = zlib.decompressobj(wbits)
        out += decompressor.decompress(rest, limit - len(out))
    cut = bool(decompressor.unconsumed_tail) or (len(out) >= limit and not decompressor.eof)
    return out, cut


def decompress(data: bytes, content_encoding: str, limit: int) -> tuple[bytes, bool] | None:
    """Undo ``content_encoding`` (gzip, deflate; layered right to left) -> ``(bytes, cut)``, or None on failure.

    A body that is not compressed at all although the header says so (HTTP clients such as
    ``requests`` decode responses but keep the header) comes back unchanged.
    """
    limit = max(limit, 1)
    cut = False
    for layer in reversed(content_encoding.lower().split(",")):
        coding = layer.strip()
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip", "deflate"):
            head = data[:2]
            is_gzip = head == b"\x1f\x8b"
            is_zlib = len(head) == 2 and (head[0] & 0x0F) == 8 and ((head[0] << 8) | head[1]) % 31 == 0
            try:
                if is_gzip or is_zlib:
                    data, layer_cut = _inflate(data, _GZIP_OR_ZLIB, limit)
                elif coding == "deflate" and not _looks_like_text(data):
                    data, layer_cut = _inflate(data, _RAW_DEFLATE, limit)
                else:
                    continue  # already decoded by whoever captured it
            except zlib.error:
                return None
            cut = cut or layer_cut
        else:
            return None  # br, zstd, compress: not in the standard library
    return data, cut


def _looks_like_text(data: bytes) -> bool:
    return data[:1] in _JSON_START or data[:1] == b"<" or data[:1].isalnum()


def _json_text(data: bytes) -> bytes | None:
    """``data`` without a UTF-8 BOM when it starts like a JSON object or array, else None."""
    if data[:1] in _JSON_START:
        return data
    if data[:3] == _BOM:
        data = data[3:]
    if data[:1] in _JSON_START or data.lstrip(_WHITESPACE)[:1] in _JSON_START:
        return data
    return None


def _parse_json(text: bytes) -> Any:
    """The JSON object or array ``text`` (from :func:`_json_text`) holds, else ``_NOT_JSON``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _embeddable(data: bytes, folded: bytes) -> bool:
    """True when ``data`` (``folded`` is its :func:`~moesif_core.json_fold.fold`) can go into the batch byte for byte.

    That is: valid JSON syntax, valid UTF-8 (the syntax check does not look inside strings), no
    number that could overflow a double, and nesting that JSON readers take. The syntax check
    refuses nesting deeper than the interpreter's recursion limit, below 1000 levels by default
    (orjson reads 1024, Jackson 1000); an app that raised the limit gets a bound by counting.
    Anything else says False and the caller parses instead, so this can only make a body
    cheaper, never different.
    """
    if may_overflow(folded):
        return False
    if sys.getrecursionlimit() > _DEFAULT_RECURSION_LIMIT and data.count(b"[") + data.count(b"{") > _SAFE_CONTAINERS:
        return False
    try:
        _SYNTAX_CHECK.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return False
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def decode_body(
    data: bytes | None,
    content_encoding: str | None,
    content_type: str | None,
    limit: int,
    *,
    json_masker: Callable[[Any], Any] | None = None,
    form_masker: Callable[[bytes], bytes] | None = None,
    mask_prefilter: Callable[[bytes, bytes], bool] | None = None,
    embed: bool = False,
    plain_check: PlainJsonCheck | None = None,
) -> DecodedBody:
    """The whole pipeline with masking hooks: decompress (at most ``limit`` bytes), JSON or base64.

    ``json_masker`` gets the parsed JSON value and returns what to send; ``form_masker`` gets an
    ``application/x-www-form-urlencoded`` body before it is base64-encoded. ``mask_prefilter`` sees a
    JSON body's bytes and their :func:`~moesif_core.json_fold.fold` first; when it says False, the
    JSON masker does not run. With ``embed``, a JSON body that needs no masking comes back as an
    :class:`orjson.Fragment` of its own bytes: orjson writes it into the event without the body
    ever being parsed or re-encoded. ``plain_check`` (see :mod:`moesif_core.json_scan`) answers all
    of that in one pass when it can: True embeds at once, False leaves it to the checks above.
    Never raises for bad input.
    """
    if embed and plain_check is not None and type(data) is bytes and not content_encoding:
        if plain_check(data):  # the usual body, in one pass
            return _new_tuple(DecodedBody, (orjson.Fragment(data), "json", False))  # NamedTuple's __new__ is Python
        plain_check = None  # it said no: the checks below decide
    if not data:
        return DecodedBody(None, None, False)
    if type(data) is not bytes:
        # Never bytes(x) on anything else: bytes(2_000_000_000) is a 2 GB allocation, not an error.
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return DecodedBody(None, None, False)
        data = bytes(data)
    cut = False
    if content_encoding:
        decoded = decompress(data, content_encoding, limit)
        if decoded is None:
            return DecodedBody(base64.b64encode(data).decode("ascii"), "base64", False)
        data, cut = decoded
        if not data:
            return DecodedBody(None, None, cut)
    if not cut:
        text = _json_text(data)
        if text is not None:
            if embed or mask_prefilter is not None:
                if embed and plain_check is not None and plain_check(text):
                    return DecodedBody(orjson.Fragment(text), "json", False)
                folded = fold(text)
                if json_masker is not None and mask_prefilter is not None and not mask_prefilter(text, folded):
                    json_masker = None
                if embed and json_masker is None and _embeddable(text, folded):
                    return DecodedBody(orjson.Fragment(text), "json", False)
            value = _parse_json(text)
            if value is not _NOT_JSON:
                if json_masker is not None:
                    value = json_masker(value)
                return DecodedBody(value, "json", False)
    if form_masker is not None and content_type and _FORM_TYPE in content_type.lower():
        data = form_masker(data)
    return DecodedBody(base64.b64encode(data).decode("ascii"), "base64", cut)


def encode_body(
    data: bytes | None,
    content_encoding: str | None = None,
    content_type: str | None = None,
    limit: int = 4 * 65536,
) -> tuple[Any, str | None]:
    """``(body, transfer_encoding)`` for the event, without masking; see :func:`decode_body`."""
    decoded = decode_body(data, content_encoding, content_type, limit)
    return decoded.body, decoded.transfer_encoding
