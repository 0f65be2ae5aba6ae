"""A small Pyramid API captured by pyramid-moesif; run it against the local collector.

    moesif-collector serve                      # in one shell (listens on 127.0.0.1:8787)
    export MOESIF_APPLICATION_ID=local-dev MOESIF_BASE_URI=http://127.0.0.1:8787
    PYTHONPATH=. pserve development.ini         # or: python app.py
    curl -s localhost:6543/items/1; curl -s -X POST localhost:6543/items -H 'Content-Type: application/json' -d '{"name":"pen"}'

``development.ini`` includes ``pyramid_moesif`` and sets a few ``moesif.*`` keys; the
application id and collector address come from the environment (MOESIF_*).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from pyramid_moesif import moesif_metadata, request_of, skip_moesif

ITEMS: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "widget"}}


def identify_company(app: Any, environ: dict[str, Any], response_headers: Any = None) -> Any:
    """Named in development.ini as ``moesif.identify_company = app:identify_company``."""
    request = request_of(environ)  # the Pyramid request, kept for callbacks by the tween
    return request.headers.get("X-Company-Id") if request is not None else None


def get_item(request: Any) -> Any:
    item = ITEMS.get(int(request.matchdict["item_id"]))
    if item is None:
        raise HTTPNotFound(json_body={"error": "not found"})
    return item


def create_item(request: Any) -> Any:
    body = request.json_body if request.body else {}
    item = {"id": len(ITEMS) + 1, "name": body.get("name", "unnamed")}
    ITEMS[item["id"]] = item
    request.moesif.add_metadata({"items_total": len(ITEMS)})
    request.response.status = 201
    return item


def boom(request: Any) -> Any:
    raise RuntimeError("something broke")


def stream(request: Any) -> Response:
    def ticks() -> Iterator[bytes]:
        for n in range(3):
            yield f"data: tick {n}\n\n".encode()
            time.sleep(0.05)

    return Response(app_iter=ticks(), content_type="text/event-stream")


def health(request: Any) -> Response:
    return Response("ok")


def main(global_config: Any, **settings: Any) -> Any:
    """The PasteDeploy app factory (``use = call:app:main``)."""
    config = Configurator(settings=settings)
    config.include("pyramid_moesif")  # harmless when pyramid.includes already has it
    config.add_route("item", "/items/{item_id:\\d+}")
    config.add_view(get_item, route_name="item", request_method="GET", renderer="json")
    config.add_route("items", "/items")
    config.add_view(
        create_item, route_name="items", request_method="POST", renderer="json", decorator=moesif_metadata({"feature": "catalog"})
    )
    config.add_route("boom", "/boom")
    config.add_view(boom, route_name="boom")
    config.add_route("stream", "/stream")
    config.add_view(stream, route_name="stream")
    config.add_route("health", "/health")
    config.add_view(health, route_name="health", decorator=skip_moesif)
    return config.make_wsgi_app()


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", 6543, main({}, **{"moesif.identify_company": identify_company})).serve_forever()
