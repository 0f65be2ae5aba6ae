"""The demo shop in Falcon (WSGI ``falcon.App``), captured by ``falcon_moesif.MoesifMiddleware``."""

from __future__ import annotations

from typing import Any

import falcon

from falcon_moesif import MoesifMiddleware

from ..shop import Shop, ValidationFailed, caller_of, fetch_rates
from . import DemoApp


def _signed_in(req: Any, action: str) -> str:
    user = caller_of(req.get_header("Authorization"))
    if user is None:
        raise falcon.HTTPUnauthorized(title="Unauthorized", description=f"sign in to {action}")
    return user


class _Health:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = {"status": "ok"}


class _Products:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = self.shop.products()


class _Product:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def on_get(self, req: Any, resp: Any, product_id: int) -> None:
        found = self.shop.product(product_id)
        if found is None:
            raise falcon.HTTPNotFound(description=f"no product {product_id}")
        resp.media = found


class _Orders:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = self.shop.orders_of(_signed_in(req, "see your orders"))

    def on_post(self, req: Any, resp: Any) -> None:
        user = _signed_in(req, "order")
        payload = req.get_media()  # malformed JSON: Falcon's own 400
        try:
            product_id, quantity = self.shop.check_order(payload)
        except ValidationFailed as exc:
            raise falcon.HTTPUnprocessableEntity(title="Validation failed", description=str(exc)) from None
        resp.status = falcon.HTTP_201
        resp.media = self.shop.create_order(user, product_id, quantity)


class _Order:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def on_get(self, req: Any, resp: Any, order_id: int) -> None:
        found = self.shop.order(order_id)
        if found is None:
            raise falcon.HTTPNotFound(description=f"no order {order_id}")
        resp.media = found


class _AdminStats:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = Shop.admin_stats()


class _AdminCache:
    def on_delete(self, req: Any, resp: Any) -> None:
        resp.status = falcon.HTTP_204  # never reached in the demo: the governance rule answers first


class _Report:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = Shop.fail_report()


class _Feed:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.content_type = "text/event-stream"
        resp.stream = Shop.feed()


class _Rates:
    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url

    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = fetch_rates(self.upstream_url)


def build(settings: dict[str, Any], upstream_url: str | None) -> DemoApp:
    shop = Shop()
    moesif = MoesifMiddleware(settings)
    app = falcon.App(middleware=[moesif])
    app.add_route("/health", _Health())
    app.add_route("/products", _Products(shop))
    app.add_route("/products/{product_id:int}", _Product(shop))
    app.add_route("/orders", _Orders(shop))
    app.add_route("/orders/{order_id:int}", _Order(shop))
    app.add_route("/admin/stats", _AdminStats())
    app.add_route("/admin/cache", _AdminCache())
    app.add_route("/reports/export", _Report())
    app.add_route("/feed", _Feed())
    if upstream_url is not None:
        app.add_route("/rates", _Rates(upstream_url))
    return DemoApp("falcon", "wsgi", app, moesif)
