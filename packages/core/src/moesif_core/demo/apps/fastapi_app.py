"""The demo shop in FastAPI, captured by ``fastapi_moesif.MoesifMiddleware`` and served by uvicorn.

The middleware wraps the app directly (rather than ``app.add_middleware``) so the demo holds the
instance and can flush it before printing the summary.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fastapi_moesif import MoesifMiddleware

from ..shop import Shop, ValidationFailed, caller_of, fetch_rates
from . import DemoApp


class NewOrder(BaseModel):
    """FastAPI validates this itself: a missing or mistyped field is its own 422."""

    product_id: int
    quantity: int = Field(default=1, ge=1, le=100)


def build(settings: dict[str, Any], upstream_url: str | None) -> DemoApp:
    app = FastAPI(title="moesif demo shop")
    shop = Shop()

    def signed_in(authorization: str | None, action: str) -> str:
        user = caller_of(authorization)
        if user is None:
            raise HTTPException(401, f"sign in to {action}")
        return user

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/products")
    async def products() -> list[dict[str, Any]]:
        return shop.products()

    @app.get("/products/{product_id}")
    async def product(product_id: int) -> dict[str, Any]:
        found = shop.product(product_id)
        if found is None:
            raise HTTPException(404, f"no product {product_id}")
        return found

    @app.get("/orders")
    async def orders(authorization: Annotated[str | None, Header()] = None) -> list[dict[str, Any]]:
        return shop.orders_of(signed_in(authorization, "see your orders"))

    @app.post("/orders", status_code=201)
    async def create_order(order: NewOrder, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        user = signed_in(authorization, "order")
        try:
            product_id, quantity = shop.check_order(order.model_dump())
        except ValidationFailed as exc:  # an unknown product: valid JSON, but not a valid order
            raise HTTPException(422, exc.errors) from None
        return shop.create_order(user, product_id, quantity)

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, Any]:
        found = shop.order(order_id)
        if found is None:
            raise HTTPException(404, f"no order {order_id}")
        return found

    @app.get("/admin/stats")
    async def admin_stats() -> dict[str, Any]:
        return shop.admin_stats()

    @app.delete("/admin/cache", status_code=204)
    async def admin_clear_cache() -> Response:
        return Response(status_code=204)  # never reached in the demo: the governance rule answers first

    @app.get("/reports/export")
    async def report() -> Any:
        return shop.fail_report()

    @app.get("/feed")
    def feed() -> StreamingResponse:
        return StreamingResponse(shop.feed(), media_type="text/event-stream")

    if upstream_url is not None:

        @app.get("/rates")
        async def rates() -> dict[str, Any]:
            return await run_in_threadpool(fetch_rates, upstream_url)

    moesif = MoesifMiddleware(app, settings=settings)
    return DemoApp("fastapi", "asgi", moesif, moesif)
