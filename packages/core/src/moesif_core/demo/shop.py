"""The demo app's business logic, shared by the five framework versions so they behave alike.

A tiny shop API: products, the caller's orders, an admin area, a report that always fails and a
live feed that streams. Each framework module only maps its routes onto these functions and turns
:class:`ValidationFailed` into its own validation answer, so the traffic and the summary are the
same whichever framework runs.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

from ..identify import jwt_claims

__all__ = ["STREAM_CHUNKS", "DemoFailure", "Shop", "ValidationFailed", "caller_of", "fetch_rates"]

STREAM_CHUNKS: Final = 5
_STREAM_PAUSE: Final = 0.01  # long enough that the chunks really are sent apart, short enough not to slow the demo

_PRODUCTS: Final[tuple[dict[str, Any], ...]] = (
    {"id": 1, "name": "Rocket skates", "price": 129.0, "currency": "USD", "stock": 12},
    {"id": 2, "name": "Giant magnet", "price": 49.5, "currency": "USD", "stock": 40},
    {"id": 3, "name": "Portable hole", "price": 15.0, "currency": "USD", "stock": 0},
)


class DemoFailure(RuntimeError):
    """Raised on purpose by the failing report, so the demo shows a 500 captured from an unhandled exception."""


class ValidationFailed(ValueError):
    """An order payload the shop refuses; ``errors`` lists what is wrong, field by field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def caller_of(authorization: str | None) -> str | None:
    """The user id the app itself sees: the JWT's ``sub`` or the Basic username (no verification: it is a demo)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        claims = jwt_claims(value)
        sub = claims.get("sub") if claims else None
        return sub if isinstance(sub, str) else None
    if scheme.lower() == "basic":
        try:
            username = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return username or None
    return None


class Shop:
    """In-memory products and orders; one instance per app, safe under a threaded server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orders: dict[int, dict[str, Any]] = {
            1: {"id": 1, "user": "alice", "product_id": 1, "quantity": 1, "status": "shipped"}
        }
        self._next_id = 2

    def products(self) -> list[dict[str, Any]]:
        return [dict(p) for p in _PRODUCTS]

    def product(self, product_id: int) -> dict[str, Any] | None:
        return next((dict(p) for p in _PRODUCTS if p["id"] == product_id), None)

    def orders_of(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self._orders.values() if o["user"] == user]

    def order(self, order_id: int) -> dict[str, Any] | None:
        with self._lock:
            found = self._orders.get(order_id)
            return dict(found) if found else None

    @staticmethod
    def check_order(payload: Any) -> tuple[int, int]:
        """``(product_id, quantity)`` of a valid payload; :class:`ValidationFailed` naming every bad field otherwise."""
        if not isinstance(payload, dict):
            raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
        errors = []
        product_id = payload.get("product_id")
        quantity = payload.get("quantity", 1)
        if not isinstance(product_id, int) or isinstance(product_id, bool):
            errors.append({"field": "product_id", "message": "required, an integer"})
        elif not any(p["id"] == product_id for p in _PRODUCTS):
            errors.append({"field": "product_id", "message": f"no product {product_id}"})
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 100:
            errors.append({"field": "quantity", "message": "an integer from 1 to 100"})
        if errors:
            raise ValidationFailed(errors)
        return product_id, quantity  # type: ignore[return-value]

    def create_order(self, user: str, product_id: int, quantity: int) -> dict[str, Any]:
        with self._lock:
            order = {"id": self._next_id, "user": user, "product_id": product_id, "quantity": quantity, "status": "pending"}
            self._orders[self._next_id] = order
            self._next_id += 1
            return dict(order)

    @staticmethod
    def admin_stats() -> dict[str, Any]:
        return {"uptime_s": round(time.monotonic(), 1), "workers": 4}

    @staticmethod
    def fail_report() -> Any:
        raise DemoFailure("the reporting database is unreachable (raised on purpose by the demo)")

    @staticmethod
    def feed() -> Iterator[bytes]:
        """Server-sent events, a few chunks apart: the middleware must pass them on as they come."""
        for n in range(STREAM_CHUNKS):
            yield f'event: stock\ndata: {{"tick": {n}, "product_id": {1 + n % 3}}}\n\n'.encode()
            time.sleep(_STREAM_PAUSE)


def fetch_rates(upstream_url: str) -> dict[str, Any]:
    """Ask the rates service with ``requests``: the outgoing call that CAPTURE_OUTGOING_REQUESTS records."""
    import requests  # only the /rates view needs it, and only when the demo found requests installed

    response = requests.get(f"{upstream_url}/v1/rates", params={"base": "USD"}, timeout=5)
    response.raise_for_status()
    payload: dict[str, Any] = response.json()
    return payload
