"""The demo shop in Bottle, captured by ``bottle_moesif.MoesifPlugin``."""

from __future__ import annotations

from typing import Any

import bottle
import orjson

from bottle_moesif import MoesifPlugin

from ..shop import Shop, ValidationFailed, caller_of, fetch_rates
from . import DemoApp


def _json(payload: Any, status: int = 200) -> bottle.HTTPResponse:
    # Bottle serialises dicts itself but not lists; one helper keeps every answer alike.
    return bottle.HTTPResponse(orjson.dumps(payload), status=status, headers={"Content-Type": "application/json"})


def build(settings: dict[str, Any], upstream_url: str | None) -> DemoApp:
    app = bottle.Bottle()
    shop = Shop()

    def health() -> Any:
        return _json({"status": "ok"})

    def products() -> Any:
        return _json(shop.products())

    def product(product_id: int) -> Any:
        found = shop.product(product_id)
        return _json(found) if found else _json({"error": f"no product {product_id}"}, 404)

    def orders() -> Any:
        user = caller_of(bottle.request.get_header("Authorization"))
        if user is None:
            return _json({"error": "sign in to see your orders"}, 401)
        return _json(shop.orders_of(user))

    def create_order() -> Any:
        user = caller_of(bottle.request.get_header("Authorization"))
        if user is None:
            return _json({"error": "sign in to order"}, 401)
        try:
            payload = bottle.request.json  # malformed JSON: Bottle 0.13's own 400
        except ValueError:  # Bottle 0.12 lets the decoder's error through
            return _json({"error": "malformed JSON"}, 400)
        try:
            product_id, quantity = shop.check_order(payload)
        except ValidationFailed as exc:
            return _json({"error": "validation failed", "details": exc.errors}, 422)
        return _json(shop.create_order(user, product_id, quantity), 201)

    def order(order_id: int) -> Any:
        found = shop.order(order_id)
        return _json(found) if found else _json({"error": f"no order {order_id}"}, 404)

    def admin_stats() -> Any:
        return _json(shop.admin_stats())

    def admin_clear_cache() -> Any:
        return bottle.HTTPResponse(status=204)  # never reached in the demo: the governance rule answers first

    def report() -> Any:
        return shop.fail_report()

    def feed() -> Any:
        bottle.response.content_type = "text/event-stream"
        return shop.feed()

    def rates() -> Any:
        assert upstream_url is not None
        return _json(fetch_rates(upstream_url))

    routes: list[tuple[str, str, Any]] = [
        ("/health", "GET", health),
        ("/products", "GET", products),
        ("/products/<product_id:int>", "GET", product),
        ("/orders", "GET", orders),
        ("/orders", "POST", create_order),
        ("/orders/<order_id:int>", "GET", order),
        ("/admin/stats", "GET", admin_stats),
        ("/admin/cache", "DELETE", admin_clear_cache),
        ("/reports/export", "GET", report),
        ("/feed", "GET", feed),
    ]
    if upstream_url is not None:
        routes.append(("/rates", "GET", rates))
    for path, method, view in routes:
        app.route(path, method, view)
    plugin = MoesifPlugin(settings)
    app.install(plugin)
    return DemoApp("bottle", "wsgi", app, plugin)
