"""The collector's web page and the JSON API it polls.

``GET /`` is one self-contained page (inline CSS and JS, nothing fetched from elsewhere) showing
events live, with filters, a detail view and a summary. It reads:

- ``GET /api/events?after=ID&path=&status=&user=&limit=`` -> ``{"events": [row...], "last_id": N}``;
  without ``after``, the latest ``limit`` events (default 200, at most 1000), oldest first.
- ``GET /api/events/ID`` -> ``{"row": {...}, "event": {...}}``: the event exactly as received.
- ``GET /api/summary`` -> requests per route, error rate, p50/p95 latency, top users.

These need no application id: they only read, and the collector listens on loopback unless told
otherwise. Page text is inserted with ``textContent`` only, since event content is untrusted.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import orjson

if TYPE_CHECKING:
    from .local_collector import LocalCollector

__all__ = ["handle_web_request"]

_JSON: Final = "application/json"
_HTML: Final = "text/html; charset=utf-8"
_DEFAULT_LIMIT: Final = 200
_MAX_LIMIT: Final = 1000

Answer = tuple[int, bytes, str]


def _error(status: int, code: str, message: str) -> Answer:
    return status, orjson.dumps({"error": code, "message": message}), _JSON


def _page() -> bytes:
    return resources.files(__package__).joinpath("web_page.html").read_bytes()


def _int_param(params: dict[str, list[str]], name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    values = params.get(name)
    if not values or values[-1] == "":
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise _BadParam(f"{name} must be an integer, got {values[-1]!r}") from None
    if value < low or (high is not None and value > high):
        raise _BadParam(f"{name} must be between {low} and {high}" if high is not None else f"{name} must be >= {low}")
    return value


def _status_param(params: dict[str, list[str]]) -> str | None:
    values = params.get("status")
    if not values or not values[-1].strip():
        return None
    text = values[-1].strip().lower()
    if len(text) == 3 and (text.isdigit() or (text[0].isdigit() and text.endswith("xx"))):
        return text
    raise _BadParam(f"status must be a status such as 404 or a class such as 5xx, got {values[-1]!r}")


def _str_param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values and values[-1] != "" else None


class _BadParam(ValueError):
    pass


def handle_web_request(collector: LocalCollector, method: str, path: str, query: str) -> Answer | None:
    """Answer a request for the page or its API as (status, body, content type); None when the path is not ours."""
    if path not in ("/", "/index.html") and not path.startswith("/api/"):
        return None
    if method not in ("GET", "HEAD"):
        return _error(405, "method_not_allowed", f"{path} answers GET only")
    if path in ("/", "/index.html"):
        return 200, _page(), _HTML
    params = parse_qs(query, keep_blank_values=True)
    store = collector.store
    try:
        if path == "/api/events":
            filters: dict[str, Any] = {
                "path": _str_param(params, "path"),
                "status": _status_param(params),
                "user_id": _str_param(params, "user"),
            }
            after = _int_param(params, "after", None, 0)
            limit = _int_param(params, "limit", _DEFAULT_LIMIT, 1, _MAX_LIMIT)
            # Read the newest id first: with no match, the next poll may start there (skipping non-matching
            # events) without missing one that arrives meanwhile.
            newest = store.rows(limit=1, newest_first=True)
            if after is None:
                rows = list(reversed(store.rows(limit=limit, newest_first=True, **filters)))
            else:
                rows = store.rows(after=after, limit=limit, **filters)
            last_id = rows[-1].id if rows else max(newest[0].id if newest else 0, after or 0)
            return 200, orjson.dumps({"events": [r.as_dict() for r in rows], "last_id": last_id}), _JSON
        if path.startswith("/api/events/"):
            ident = path.removeprefix("/api/events/")
            if not ident.isdigit():
                return _error(400, "bad_id", f"event id must be a positive integer, got {ident!r}")
            found = store.event(int(ident))
            if found is None:
                return _error(404, "not_found", f"no event with id {ident}")
            row, event = found
            return 200, orjson.dumps({"row": row.as_dict(), "event": event}), _JSON
        if path == "/api/summary":
            top = _int_param(params, "top", 10, 1, 100)
            return 200, orjson.dumps(store.summary(top=top or 10)), _JSON
    except _BadParam as exc:
        return _error(400, "bad_parameter", str(exc))
    return _error(404, "not_found", f"no such API endpoint: {path}")
