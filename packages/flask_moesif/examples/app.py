"""A small Flask API captured by flask-moesif; run it against the local collector.

    moesif-collector serve                      # in one shell (prints its address)
    export MOESIF_APPLICATION_ID=local-dev MOESIF_BASE_URI=http://127.0.0.1:8787
    flask --app app run                         # or: gunicorn -b 127.0.0.1:8000 'app:create_app()'
    curl -s localhost:5000/items/1; curl -s -X POST localhost:5000/items -H 'Content-Type: application/json' -d '{"name":"pen"}'

Settings come from the environment (MOESIF_*) through the core's fallback; ``app.config``
keys ``MOESIF_<KEY>`` would take precedence over them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, jsonify, request

from flask_moesif import MoesifFlask, current_annotations, moesif_metadata, skip_moesif

moesif = MoesifFlask()


def identify_company(app: Flask, environ: dict[str, Any], response_headers: Any = None) -> Any:
    # Runs inside the request context: flask.request and flask.g are the current call's.
    return request.headers.get("X-Company-Id") or g.get("company_id")


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["MOESIF_IDENTIFY_COMPANY"] = identify_company
    items: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "widget"}}

    @app.get("/items/<int:item_id>")
    def get_item(item_id: int) -> Any:
        item = items.get(item_id)
        return (jsonify(item), 200) if item else (jsonify(error="not found"), 404)

    @app.post("/items")
    @moesif_metadata({"feature": "catalog"})
    def create_item() -> Any:
        body = request.get_json(silent=True) or {}
        item = {"id": len(items) + 1, "name": body.get("name", "unnamed")}
        items[item["id"]] = item
        current_annotations().add_metadata({"items_total": len(items)})
        return jsonify(item), 201

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("something broke")

    @app.get("/stream")
    def stream() -> Response:
        def ticks() -> Iterator[str]:
            for n in range(3):
                yield f"data: tick {n}\n\n"
                time.sleep(0.05)

        return Response(ticks(), mimetype="text/event-stream")

    @app.get("/health")
    @skip_moesif
    def health() -> Any:
        return "ok"

    moesif.init_app(app)
    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=5000)
