"""The Falcon apps the tests drive: the same resources as WSGI and as ASGI."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from falcon_moesif import MoesifMiddleware

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}


class Item:
    def on_get(self, req: Any, resp: Any, item_id: int) -> None:
        resp.media = {"id": item_id, "name": "widget"}


class Items:
    def on_post(self, req: Any, resp: Any) -> None:
        resp.status = falcon.HTTP_201
        resp.media = {"created": req.get_media()}


class Raw:
    def on_post(self, req: Any, resp: Any) -> None:
        resp.data = b"got " + req.bounded_stream.read()
        resp.content_type = "application/octet-stream"


class Text:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.text = "plain words"
        resp.content_type = falcon.MEDIA_TEXT

    on_head = on_get


class Boom:
    def on_get(self, req: Any, resp: Any) -> None:
        raise RuntimeError("responder failed")


class Quiet:
    def on_get(self, req: Any, resp: Any) -> None:
        req.env["moesif"].skip = True
        resp.text = "shh"


class AsyncItem:
    async def on_get(self, req: Any, resp: Any, item_id: int) -> None:
        resp.media = {"id": item_id, "name": "widget"}


class AsyncItems:
    async def on_post(self, req: Any, resp: Any) -> None:
        resp.status = falcon.HTTP_201
        resp.media = {"created": await req.get_media()}


class AsyncRaw:
    async def on_post(self, req: Any, resp: Any) -> None:
        resp.data = b"got " + await req.bounded_stream.read()
        resp.content_type = "application/octet-stream"


class AsyncText:
    async def on_get(self, req: Any, resp: Any) -> None:
        resp.text = "plain words"
        resp.content_type = falcon.MEDIA_TEXT

    on_head = on_get


class AsyncBoom:
    async def on_get(self, req: Any, resp: Any) -> None:
        raise RuntimeError("responder failed")


class AsyncQuiet:
    async def on_get(self, req: Any, resp: Any) -> None:
        req.scope["moesif"].skip = True
        resp.text = "shh"


def wsgi_app(middleware: MoesifMiddleware) -> falcon.App:
    app = falcon.App(middleware=[middleware])
    app.add_route("/items/{item_id:int}", Item())
    app.add_route("/items", Items())
    app.add_route("/raw", Raw())
    app.add_route("/text", Text())
    app.add_route("/boom", Boom())
    app.add_route("/quiet", Quiet())
    return app


def asgi_app(middleware: MoesifMiddleware) -> falcon.asgi.App:
    app = falcon.asgi.App(middleware=[middleware])
    app.add_route("/items/{item_id:int}", AsyncItem())
    app.add_route("/items", AsyncItems())
    app.add_route("/raw", AsyncRaw())
    app.add_route("/text", AsyncText())
    app.add_route("/boom", AsyncBoom())
    app.add_route("/quiet", AsyncQuiet())
    return app


def build(kind: str, recorder: Any, **settings: Any) -> tuple[Any, MoesifMiddleware]:
    middleware = MoesifMiddleware({**SETTINGS, **settings}, agent=recorder)
    return (wsgi_app if kind == "wsgi" else asgi_app)(middleware), middleware
