"""The demo's traffic: a scripted tour of every case, then a seeded random mix, sent over real HTTP.

The tour comes first so that even a short run (``--requests 40``) shows each case the summary and
the page are meant to show: JSON GETs and POSTs, a 404 from a view and one from the router, a
validation error, a 401, a 500 from a raising view, a streamed response, a call blocked by the
governance rule, a sampled-out health check and (when available) a call that makes an outgoing
request. The rest is a weighted mix of users and actions from a fixed seed, so two runs send the
same calls. Requests use ``http.client`` (not ``requests``) so the traffic itself is never mistaken
for the app's outgoing calls.
"""

from __future__ import annotations

import http.client
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import orjson

from .scenario import USERS, DemoUser

__all__ = ["Call", "TrafficResult", "plan_calls", "send_calls"]

_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class Call:
    """One request to send; ``expect`` holds the statuses that mean the app behaved (framework defaults differ)."""

    method: str
    path: str
    user: DemoUser | None
    expect: frozenset[int]
    body: bytes | None = None
    what: str = ""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(slots=True)
class TrafficResult:
    """What came back: answers by status, the ones outside ``expect`` and the ones that never came."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _user(user_id: str) -> DemoUser:
    return next(u for u in USERS if u.user_id == user_id)


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def _ok(*statuses: int) -> frozenset[int]:
    return frozenset(statuses)


def _tour(with_outgoing: bool) -> list[Call]:
    alice, bob, carol, dave, bot = (_user(u) for u in ("alice", "bob", "carol", "dave", "reporting-bot"))
    calls = [
        Call("GET", "/health", None, _ok(200), what="sampled out by the served config"),
        Call("GET", "/products", None, _ok(200), what="JSON list, anonymous"),
        Call("GET", "/products/1", alice, _ok(200), what="JSON, JWT user"),
        Call("GET", "/products/42", bob, _ok(404), what="404 from the view"),
        Call("GET", "/orders", alice, _ok(200)),
        Call("POST", "/orders", alice, _ok(201), _json({"product_id": 2, "quantity": 3}), "JSON POST"),
        Call("POST", "/orders", carol, _ok(422), _json({"quantity": 0}), "validation error"),
        Call("POST", "/orders", dave, _ok(400, 422), b'{"product_id": 2,', "malformed JSON"),
        Call("GET", "/orders", None, _ok(401), what="not signed in"),
        Call("GET", "/orders/1", alice, _ok(200)),
        Call("GET", "/orders/999", bob, _ok(404)),
        Call("GET", "/does-not-exist", None, _ok(404), what="404 from the router"),
        Call("GET", "/reports/export", bot, _ok(500), what="500 from a raising view, Basic auth user"),
        Call("GET", "/feed", bob, _ok(200), what="streamed response"),
        Call("DELETE", "/admin/cache", bot, _ok(403), what="blocked by the governance rule"),
        Call("GET", "/admin/stats", bot, _ok(200)),
    ]
    if with_outgoing:
        calls.append(Call("GET", "/rates", carol, _ok(200), what="makes an outgoing call with requests"))
    return calls


def _random_call(rng: random.Random, with_outgoing: bool) -> Call:
    user: DemoUser | None = None if rng.random() < 0.12 else rng.choices(USERS, weights=[u.weight for u in USERS])[0]
    actions: list[tuple[int, Callable[[], Call]]] = [
        (30, lambda: Call("GET", "/products", user, _ok(200))),
        (20, lambda: Call("GET", f"/products/{rng.choice((1, 2, 3))}", user, _ok(200))),
        (5, lambda: Call("GET", f"/products/{rng.choice((7, 42))}", user, _ok(404))),
        (4, lambda: Call("GET", "/health", None, _ok(200))),
        (3, lambda: Call("GET", "/feed", user, _ok(200))),
        (2, lambda: Call("GET", "/reports/export", user, _ok(500))),
        (2, lambda: Call("GET", "/does-not-exist", user, _ok(404))),
    ]
    if user is not None:
        quantity = rng.randint(1, 5)
        actions += [
            (15, lambda: Call("GET", "/orders", user, _ok(200))),
            (
                12,
                lambda: Call(
                    "POST", "/orders", user, _ok(201), _json({"product_id": rng.choice((1, 2, 3)), "quantity": quantity})
                ),
            ),
            (3, lambda: Call("POST", "/orders", user, _ok(422), _json({"product_id": 9, "quantity": 500}))),
            (3, lambda: Call("GET", "/orders/1", user, _ok(200))),
        ]
        if user.company_id is None:  # the service account does the admin work
            actions += [
                (10, lambda: Call("GET", "/admin/stats", user, _ok(200))),
                (6, lambda: Call("DELETE", "/admin/cache", user, _ok(403))),
            ]
    if with_outgoing:
        actions.append((4, lambda: Call("GET", "/rates", user, _ok(200))))
    make = rng.choices([a for _, a in actions], weights=[w for w, _ in actions])[0]
    return make()


def plan_calls(total: int, *, seed: int, with_outgoing: bool) -> list[Call]:
    """``total`` calls: the tour of every case first (cut short when ``total`` is smaller), then the random mix."""
    calls = _tour(with_outgoing)[:total]
    rng = random.Random(seed)
    while len(calls) < total:
        calls.append(_random_call(rng, with_outgoing))
    return calls


def _send(connection: http.client.HTTPConnection, call: Call) -> int:
    headers = {"Accept": "application/json", "User-Agent": "moesif-demo-traffic/1"}
    if call.user is not None:
        headers["Authorization"] = call.user.authorization
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    connection.request(call.method, call.path, body=call.body, headers=headers)
    response = connection.getresponse()
    response.read()  # the whole body, streamed ones included: the event is finished when the body is
    return response.status


def send_calls(base_url: str, calls: Sequence[Call], on_sent: Callable[[Call], None] | None = None) -> TrafficResult:
    """Send ``calls`` one after another (one connection each) and tally the answers; never raises for a bad answer."""
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    result = TrafficResult()
    started = time.monotonic()
    for call in calls:
        connection = http.client.HTTPConnection(host, port, timeout=_TIMEOUT)
        try:
            status = _send(connection, call)
        except (OSError, http.client.HTTPException) as exc:
            result.failed.append(f"{call.label}: {type(exc).__name__}: {exc}")
        else:
            result.statuses[status] += 1
            if status not in call.expect:
                result.unexpected.append(f"{call.label} -> {status} (expected {'/'.join(map(str, sorted(call.expect)))})")
        finally:
            connection.close()
        result.sent += 1
        if on_sent is not None:
            on_sent(call)
    result.seconds = time.monotonic() - started
    return result
