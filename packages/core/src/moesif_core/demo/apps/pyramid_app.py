"""The demo shop in Pyramid, captured by ``config.include("pyramid_moesif")``."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPBadRequest, HTTPNoContent, HTTPNotFound, HTTPUnauthorized, HTTPUnprocessableEntity
from pyramid.response import Response

from pyramid_moesif import get_moesif

from ..shop import Shop, ValidationFailed, caller_of, fetch_rates
from . import DemoApp


def build(settings: dict[str, Any], upstream_url: str | None) -> DemoApp:
    shop = Shop()

    def health(request: Any) -> Any:
        return {"status": "ok"}

    def products(request: Any) -> Any:
        return shop.products()

    def product(request: Any) -> Any:
        product_id = int(request.matchdict["product_id"])
        found = shop.product(product_id)
        if found is None:
            raise HTTPNotFound(json_body={"error": f"no product {product_id}"})
        return found

    def orders(request: Any) -> Any:
        user = caller_of(request.headers.get("Authorization"))
        if user is None:
            raise HTTPUnauthorized(json_body={"error": "sign in to see your orders"})
        return shop.orders_of(user)

    def create_order(request: Any) -> Any:
        user = caller_of(request.headers.get("Authorization"))
        if user is None:
            raise HTTPUnauthorized(json_body={"error": "sign in to order"})
        try:
            payload = request.json_body
        except ValueError:
            raise HTTPBadRequest(json_body={"error": "malformed JSON"}) from None
        try:
            product_id, quantity = shop.check_order(payload)
        except ValidationFailed as exc:
            raise HTTPUnprocessableEntity(json_body={"error": "validation failed", "details": exc.errors}) from None
        request.response.status = 201
        return shop.create_order(user, product_id, quantity)

    def order(request: Any) -> Any:
        order_id = int(request.matchdict["order_id"])
        found = shop.order(order_id)
        if found is None:
            raise HTTPNotFound(json_body={"error": f"no order {order_id}"})
        return found

    def admin_stats(request: Any) -> Any:
        return shop.admin_stats()

    def admin_clear_cache(request: Any) -> Any:
        return HTTPNoContent()  # never reached in the demo: the governance rule answers first

    def report(request: Any) -> Any:
        return shop.fail_report()

    def feed(request: Any) -> Response:
        return Response(app_iter=shop.feed(), content_type="text/event-stream")

    def rates(request: Any) -> Any:
        assert upstream_url is not None
        return fetch_rates(upstream_url)

    config = Configurator()
    config.include("pyramid_moesif")
    config.configure_moesif(settings)
    routes: list[tuple[str, str, str, Any]] = [
        ("health", "/health", "GET", health),
        ("products", "/products", "GET", products),
        ("product", r"/products/{product_id:\d+}", "GET", product),
        ("orders", "/orders", "GET", orders),
        ("create_order", "/orders", "POST", create_order),
        ("order", r"/orders/{order_id:\d+}", "GET", order),
        ("admin_stats", "/admin/stats", "GET", admin_stats),
        ("admin_cache", "/admin/cache", "DELETE", admin_clear_cache),
        ("report", "/reports/export", "GET", report),
        ("feed", "/feed", "GET", feed),
    ]
    if upstream_url is not None:
        routes.append(("rates", "/rates", "GET", rates))
    for name, pattern, method, view in routes:
        config.add_route(name, pattern, request_method=method)
        config.add_view(view, route_name=name, renderer="json")
    app = config.make_wsgi_app()
    return DemoApp("pyramid", "wsgi", app, get_moesif(app))
