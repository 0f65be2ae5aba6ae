"""A small Bottle API captured by bottle-moesif; run it against the local collector.

    moesif-collector serve                      # in one shell (listens on 127.0.0.1:8787)
    export MOESIF_APPLICATION_ID=local-dev MOESIF_BASE_URI=http://127.0.0.1:8787
    python app.py                               # or: waitress-serve --listen=127.0.0.1:8080 --call app:create_app
    curl -s localhost:8080/items/1; curl -s -X POST localhost:8080/items -H 'Content-Type: application/json' -d '{"name":"pen"}'

Settings come from the environment (MOESIF_*); ``app.config["moesif.<key>"]`` (for instance a
``[moesif]`` section of ``app.config.load_config("app.ini")``) would take precedence over them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import bottle

from bottle_moesif import MoesifPlugin, current_annotations


def identify_company(app: bottle.Bottle, environ: dict[str, Any], response_headers: Any = None) -> Any:
    # bottle.request is the current call's while callbacks run.
    return bottle.request.get_header("X-Company-Id")


def create_app() -> bottle.Bottle:
    app = bottle.Bottle()
    items: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "widget"}}

    @app.get("/items/<item_id:int>")
    def get_item(item_id: int) -> Any:
        item = items.get(item_id)
        if item is None:
            bottle.abort(404, "no such item")
        return item

    @app.post("/items", moesif={"metadata": {"feature": "catalog"}})
    def create_item() -> Any:
        body = bottle.request.json or {}
        item = {"id": len(items) + 1, "name": body.get("name", "unnamed")}
        items[item["id"]] = item
        current_annotations().add_metadata({"items_total": len(items)})
        bottle.response.status = 201
        return item

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("something broke")

    @app.get("/stream")
    def stream() -> Iterator[str]:
        bottle.response.content_type = "text/event-stream"
        for n in range(3):
            yield f"data: tick {n}\n\n"
            time.sleep(0.05)

    @app.get("/health", moesif={"skip": True})
    def health() -> Any:
        return "ok"

    app.install(MoesifPlugin({"IDENTIFY_COMPANY": identify_company}))
    return app


if __name__ == "__main__":
    bottle.run(create_app(), host="127.0.0.1", port=8080)
