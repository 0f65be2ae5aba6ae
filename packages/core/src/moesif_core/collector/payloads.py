"""Decoding and checking of the bodies posted to the local collector, with messages that say what is wrong.

Every problem is a :class:`PayloadError` carrying the HTTP status to answer (400, 413, 415) and a
message naming the offending item (``events[3].request.verb must be a string``), because the point
of a local collector is to tell a developer exactly why the real one would refuse a post.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = ["ROUTES", "PayloadError", "Route", "decode_body", "parse_items"]


class PayloadError(Exception):
    """A posted body cannot be accepted; ``status`` is the HTTP answer, ``code`` a short machine tag."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Route:
    """One data endpoint: what it stores (``events`` or an entity kind) and whether it takes an array."""

    kind: str
    batch: bool


ROUTES: Final[dict[str, Route]] = {
    "/v1/events": Route("events", False),
    "/v1/events/batch": Route("events", True),
    "/v1/users": Route("users", False),
    "/v1/users/batch": Route("users", True),
    "/v1/companies": Route("companies", False),
    "/v1/companies/batch": Route("companies", True),
    "/v1/subscriptions": Route("subscriptions", False),
    "/v1/subscriptions/batch": Route("subscriptions", True),
}

_SINGULAR: Final = {"events": "event", "users": "user", "companies": "company", "subscriptions": "subscription"}
_REQUIRED_ID: Final = {"users": ("user_id",), "companies": ("company_id",), "subscriptions": ("subscription_id", "company_id")}


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip or identity); refuse a body that inflates beyond ``limit`` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise PayloadError(
            415, "unsupported_encoding", f"Content-Encoding {content_encoding!r} is not supported; send gzip or no encoding"
        )
    out: list[bytes] = []
    size = 0
    data = raw
    try:
        while data:
            inflater = zlib.decompressobj(wbits=31)
            chunk = inflater.decompress(data, limit + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if inflater.unconsumed_tail or size > limit:
                raise PayloadError(413, "too_large", f"the gzip body inflates to more than {limit} bytes, the collector's limit")
            if not inflater.eof:
                raise PayloadError(
                    400, "bad_gzip", "the gzip body is truncated (Content-Encoding: gzip, but the stream ends early)"
                )
            data = inflater.unused_data  # a further gzip member, as concatenated streams are legal
    except zlib.error as exc:
        raise PayloadError(400, "bad_gzip", f"Content-Encoding is gzip but the body is not valid gzip: {exc}") from exc
    return b"".join(out)


def _check_event(event: Any, where: str) -> None:
    if not isinstance(event, dict):
        raise PayloadError(400, "bad_event", f"{where} must be a JSON object, got {_json_type(event)}")
    request = event.get("request")
    if not isinstance(request, dict):
        raise PayloadError(400, "bad_event", f"{where}.request is required and must be an object, got {_json_type(request)}")
    for key in ("time", "uri", "verb"):
        if not isinstance(request.get(key), str) or not request.get(key):
            raise PayloadError(400, "bad_event", f"{where}.request.{key} is required and must be a non-empty string")
    response = event.get("response")
    if response is not None:
        if not isinstance(response, dict):
            raise PayloadError(400, "bad_event", f"{where}.response must be an object or null, got {_json_type(response)}")
        status = response.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise PayloadError(400, "bad_event", f"{where}.response.status must be an integer, got {_json_type(status)}")
    for key in ("headers",):
        for part_name, part in (("request", request), ("response", response or {})):
            if part.get(key) is not None and not isinstance(part.get(key), dict):
                raise PayloadError(400, "bad_event", f"{where}.{part_name}.{key} must be an object or null")
    for key in ("user_id", "company_id", "session_token", "direction", "transaction_id"):
        value = event.get(key)
        if value is not None and not isinstance(value, str):
            raise PayloadError(400, "bad_event", f"{where}.{key} must be a string or null, got {_json_type(value)}")
    if event.get("metadata") is not None and not isinstance(event.get("metadata"), dict):
        raise PayloadError(400, "bad_event", f"{where}.metadata must be an object or null")


def _check_entity(kind: str, item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise PayloadError(400, f"bad_{_SINGULAR[kind]}", f"{where} must be a JSON object, got {_json_type(item)}")
    for key in _REQUIRED_ID[kind]:
        value = item.get(key)
        if not isinstance(value, str) or value == "":
            raise PayloadError(400, f"bad_{_SINGULAR[kind]}", f"{where}.{key} is required and must be a non-empty string")
    if item.get("metadata") is not None and not isinstance(item.get("metadata"), dict):
        raise PayloadError(400, f"bad_{_SINGULAR[kind]}", f"{where}.metadata must be an object or null")


def parse_items(route: Route, body: bytes, strict_events: bool = True) -> list[dict[str, Any]]:
    """Parse ``body`` for ``route`` into the list of items to store, or raise :class:`PayloadError`.

    ``strict_events=False`` accepts any JSON object as an event (for tests that post toy events).
    """
    if not body.strip():
        raise PayloadError(400, "empty_body", "the request body is empty; send JSON")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(400, "bad_json", f"the body is not valid JSON: {exc}") from exc
    noun = _SINGULAR[route.kind]
    if route.batch:
        if not isinstance(value, list):
            raise PayloadError(
                400, "not_an_array", f"a {noun} batch must be a JSON array of {route.kind}, got {_json_type(value)}"
            )
        items = value
        names = [f"{route.kind}[{i}]" for i in range(len(items))]
    else:
        if not isinstance(value, dict):
            raise PayloadError(
                400,
                f"bad_{noun}",
                f"a {noun} must be a JSON object, got {_json_type(value)}"
                + (f"; post arrays to /v1/{route.kind}/batch" if isinstance(value, list) else ""),
            )
        items = [value]
        names = [noun]
    for item, where in zip(items, names, strict=True):
        if route.kind == "events":
            if strict_events:
                _check_event(item, where)
            elif not isinstance(item, dict):
                raise PayloadError(400, "bad_event", f"{where} must be a JSON object, got {_json_type(item)}")
        else:
            _check_entity(route.kind, item, where)
    return items


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
