"""A Falcon app reporting to Moesif (or the local collector), WSGI and ASGI.

WSGI: ``gunicorn --chdir examples app:wsgi_app``; ASGI: ``uvicorn app:asgi_app --app-dir examples``.
Reads MOESIF_APPLICATION_ID and MOESIF_BASE_URI (e.g. http://127.0.0.1:8088 for the local collector).
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from falcon_moesif import MoesifMiddleware


class Item:
    def on_get(self, req: Any, resp: Any, item_id: int) -> None:
        resp.media = {"id": item_id, "name": "widget"}


class Items:
    def on_post(self, req: Any, resp: Any) -> None:
        resp.status = falcon.HTTP_201
        resp.media = {"created": req.get_media()}


class AsyncItem:
    async def on_get(self, req: Any, resp: Any, item_id: int) -> None:
        resp.media = {"id": item_id, "name": "widget"}


class AsyncItems:
    async def on_post(self, req: Any, resp: Any) -> None:
        resp.status = falcon.HTTP_201
        resp.media = {"created": await req.get_media()}


# One component per app; settings come from the MOESIF_* environment variables.
wsgi_app = falcon.App(middleware=[MoesifMiddleware()])
wsgi_app.add_route("/items/{item_id:int}", Item())
wsgi_app.add_route("/items", Items())

asgi_app = falcon.asgi.App(middleware=[MoesifMiddleware()])
asgi_app.add_route("/items/{item_id:int}", AsyncItem())
asgi_app.add_route("/items", AsyncItems())
