"""The demo shop in Flask, captured by ``flask_moesif.MoesifFlask``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from flask_moesif import MoesifFlask

from ..shop import Shop, ValidationFailed, caller_of, fetch_rates
from . import FLASK_APP_NAME, DemoApp


def build(settings: dict[str, Any], upstream_url: str | None) -> DemoApp:
    app = Flask(FLASK_APP_NAME)
    shop = Shop()

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/products")
    def products() -> Any:
        return jsonify(shop.products())

    @app.get("/products/<int:product_id>")
    def product(product_id: int) -> Any:
        found = shop.product(product_id)
        return found if found else ({"error": f"no product {product_id}"}, 404)

    @app.get("/orders")
    def orders() -> Any:
        user = caller_of(request.headers.get("Authorization"))
        if user is None:
            return {"error": "sign in to see your orders"}, 401
        return jsonify(shop.orders_of(user))

    @app.post("/orders")
    def create_order() -> Any:
        user = caller_of(request.headers.get("Authorization"))
        if user is None:
            return {"error": "sign in to order"}, 401
        payload = request.get_json()  # malformed JSON: Flask's own 400
        try:
            product_id, quantity = shop.check_order(payload)
        except ValidationFailed as exc:
            return {"error": "validation failed", "details": exc.errors}, 422
        return shop.create_order(user, product_id, quantity), 201

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> Any:
        found = shop.order(order_id)
        return found if found else ({"error": f"no order {order_id}"}, 404)

    @app.get("/admin/stats")
    def admin_stats() -> Any:
        return shop.admin_stats()

    @app.delete("/admin/cache")
    def admin_clear_cache() -> Any:
        return "", 204  # never reached in the demo: the governance rule answers first

    @app.get("/reports/export")
    def report() -> Any:
        return shop.fail_report()

    @app.get("/feed")
    def feed() -> Response:
        return Response(shop.feed(), mimetype="text/event-stream")

    if upstream_url is not None:

        @app.get("/rates")
        def rates() -> Any:
            return fetch_rates(upstream_url)

    moesif = MoesifFlask(app, settings=settings)
    return DemoApp("flask", "wsgi", app, moesif)
