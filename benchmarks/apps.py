"""The bare apps measured: one GET of a ~200 B JSON document and one POST echoing a ~2 KB JSON document.

Every framework gets the same two routes written the way its own documentation writes them, so
the bare figure is what an ordinary app of that framework costs. ``middleware`` is a list of
framework middleware components (Falcon takes them at construction).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["ASGI_FRAMEWORKS", "ECHO_BODY", "FRAMEWORKS", "SMALL", "SMALL_PATH", "ECHO_PATH", "build_app"]

SMALL_PATH: Final = "/small"
ECHO_PATH: Final = "/echo"

SMALL: Final[dict[str, Any]] = {
    "id": 1042,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "plan": "enterprise",
    "roles": ["admin", "billing", "developer"],
    "active": True,
    "created_at": "2024-05-01T12:00:00Z",
    "quota": {"requests": 100000, "used": 5231},
}


def _echo_document() -> dict[str, Any]:
    items = [
        {"sku": f"SKU-{i:05d}", "name": f"Widget number {i}", "qty": i % 7 + 1, "price": 19.99 + i, "tags": ["a", "b"]}
        for i in range(20)
    ]
    doc: dict[str, Any] = {"order_id": "ord_7f3a9c", "customer": "cus_42", "items": items, "note": ""}
    size = len(orjson.dumps(doc))
    doc["note"] = "x" * max(0, 2048 - size)
    return doc


ECHO_DOC: Final = _echo_document()
ECHO_BODY: Final = orjson.dumps(ECHO_DOC)

WSGI_FRAMEWORKS: Final = ("flask", "bottle", "pyramid", "falcon")
ASGI_FRAMEWORKS: Final = ("falcon_asgi", "fastapi")
FRAMEWORKS: Final = WSGI_FRAMEWORKS + ASGI_FRAMEWORKS


def build_app(framework: str, middleware: list[Any] | None = None) -> Any:
    """The bare app object of ``framework`` (a Flask, Bottle, Pyramid Configurator, Falcon or FastAPI app)."""
    return _BUILDERS[framework](middleware or [])


def _flask(_: list[Any]) -> Any:
    import flask

    app = flask.Flask("bench")

    @app.get(SMALL_PATH)
    def small() -> Any:
        return flask.jsonify(SMALL)

    @app.post(ECHO_PATH)
    def echo() -> Any:
        return flask.jsonify(flask.request.get_json())

    return app


def _bottle(_: list[Any]) -> Any:
    import bottle

    app = bottle.Bottle()

    @app.get(SMALL_PATH)  # type: ignore[untyped-decorator,unused-ignore]
    def small() -> Any:
        return SMALL

    @app.post(ECHO_PATH)  # type: ignore[untyped-decorator,unused-ignore]
    def echo() -> Any:
        return bottle.request.json

    return app


def _pyramid(_: list[Any]) -> Any:
    """A Configurator with the routes added: the caller includes what it wants, then makes the WSGI app."""
    from pyramid.config import Configurator

    def small(request: Any) -> Any:
        return SMALL

    def echo(request: Any) -> Any:
        return request.json_body

    config = Configurator()
    config.add_route("small", SMALL_PATH, request_method="GET")
    config.add_route("echo", ECHO_PATH, request_method="POST")
    config.add_view(small, route_name="small", renderer="json")
    config.add_view(echo, route_name="echo", renderer="json")
    return config


def _falcon(middleware: list[Any]) -> Any:
    import falcon

    class Small:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.media = SMALL

    class Echo:
        def on_post(self, req: Any, resp: Any) -> None:
            resp.media = req.get_media()

    app = falcon.App(middleware=middleware)
    app.add_route(SMALL_PATH, Small())
    app.add_route(ECHO_PATH, Echo())
    return app


def _falcon_asgi(middleware: list[Any]) -> Any:
    import falcon.asgi

    class Small:
        async def on_get(self, req: Any, resp: Any) -> None:
            resp.media = SMALL

    class Echo:
        async def on_post(self, req: Any, resp: Any) -> None:
            resp.media = await req.get_media()

    app = falcon.asgi.App(middleware=middleware)
    app.add_route(SMALL_PATH, Small())
    app.add_route(ECHO_PATH, Echo())
    return app


def _fastapi(_: list[Any]) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get(SMALL_PATH)
    async def small() -> dict[str, Any]:
        return SMALL

    @app.post(ECHO_PATH)
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    return app


_BUILDERS: Final = {
    "flask": _flask,
    "bottle": _bottle,
    "pyramid": _pyramid,
    "falcon": _falcon,
    "falcon_asgi": _falcon_asgi,
    "fastapi": _fastapi,
}
