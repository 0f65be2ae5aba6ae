"""Readable assertions about one stored event, for tests against the local collector."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["assert_event", "describe_event"]

_MISSING: Final = object()


def describe_event(event: Any) -> str:
    """One line saying what an event is: ``GET http://host/path -> 200 user=u1 company=-``."""
    if not isinstance(event, dict):
        return repr(event)
    request = _part(event, "request")
    response = _part(event, "response")
    return (
        f"{request.get('verb', '?')} {request.get('uri', '?')} -> {response.get('status', '?')} "
        f"user={event.get('user_id') or '-'} company={event.get('company_id') or '-'} direction={event.get('direction') or '-'}"
    )


def _part(event: dict[str, Any], name: str) -> dict[str, Any]:
    value = event.get(name)
    return value if isinstance(value, dict) else {}


def _actual(event: dict[str, Any], name: str) -> Any:
    request = _part(event, "request")
    response = _part(event, "response")
    if name == "path":
        uri = request.get("uri")
        return urlsplit(uri).path if isinstance(uri, str) else None
    if name == "method":
        return request.get("verb")
    if name == "status":
        return response.get("status")
    return event.get(name, _MISSING)


def assert_event(
    event: Any,
    *,
    path: str | None = None,
    status: int | None = None,
    user_id: str | None = None,
    company_id: str | None = None,
    method: str | None = None,
    direction: str | None = None,
    **fields: Any,
) -> None:
    """Fail with one line per mismatch when ``event`` differs from any given expectation.

    ``path`` is the URI's path (no query); other keyword arguments compare top-level event keys
    (``blocked_by="rule-1"``, ``weight=1``). Expectations left as None are not checked.

    Example::

        [event] = collector.wait_for_events(1)
        assert_event(event, path="/orders", status=201, user_id="u1")
    """
    if not isinstance(event, dict):
        raise AssertionError(f"expected an event (a dict), got {type(event).__name__}: {event!r}")
    expected: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "user_id": user_id,
        "company_id": company_id,
        "direction": direction,
    }
    expected = {k: v for k, v in expected.items() if v is not None}
    expected.update(fields)
    problems = []
    for name, want in expected.items():
        got = _actual(event, name)
        verbs = name == "method" and isinstance(got, str) and isinstance(want, str)
        same = got.upper() == want.upper() if verbs else got == want
        if not same:
            shown = "(absent)" if got is _MISSING else repr(got)
            problems.append(f"  {name}: expected {want!r}, got {shown}")
    if problems:
        raise AssertionError("the event does not match:\n" + "\n".join(problems) + f"\n  event: {describe_event(event)}")
