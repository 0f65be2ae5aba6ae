"""A native part built from other sources than the Python beside it is refused with a warning, never called.

In a checkout, ``git pull`` brings new C sources and new Python at once, but the built
extensions stay as they were until ``hatch run native`` (or a reinstall) rebuilds them; the
Python must then run its own versions rather than call an old build with new arguments.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import logging, sys, types
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
for name, api in (("_json_scan", None), ("_request_path", 1), ("_headers", 0), ("_event_json", None), ("_wsgi_exchange", 0), ("_asgi_exchange", 0)):
    stale = types.ModuleType("moesif_core." + name)  # what an older build looks like: no API, or an older one
    if api is not None:
        stale.API = api
    sys.modules["moesif_core." + name] = stale
from moesif_core import asgi, event_json, headers, json_scan, request_path, wsgi
from moesif_core.record import hand_over, record_from_environ
from moesif_core.testing import RecordingAgent
record = record_from_environ({"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "HTTP_HOST": "h", "SERVER_NAME": "s"}, 1.0, True)
print("natives", json_scan.NATIVE, request_path.NATIVE, headers.NATIVE, event_json.NATIVE, wsgi.NATIVE, asgi.NATIVE)
agent = RecordingAgent()
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]
served = wsgi.MoesifMiddleware(app, agent.settings, agent=agent)({"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "HTTP_HOST": "h"}, lambda *a: None)
print("served", served, [(r.status, r.response_body) for r in agent.records])
import asyncio
async def asgi_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"made"})
async def ignore(message):
    pass
asgi_agent = RecordingAgent()
scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [(b"host", b"h")]}
asyncio.run(asgi.MoesifMiddleware(asgi_app, asgi_agent.settings, agent=asgi_agent)(scope, None, ignore))
print("asgi served", [(r.status, r.response_body) for r in asgi_agent.records])
print("record", record.host, sorted(record.request_headers), hand_over(record) == record.estimated_size())
"""


def test_a_stale_build_is_refused_and_the_python_versions_run() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    lines = done.stdout.splitlines()
    assert "natives False False False False False False" in lines
    assert "record h ['HTTP_HOST'] True" in lines
    assert "served [b'ok'] [(200, b'ok')]" in lines
    assert "asgi served [(201, b'made')]" in lines
    warnings = [line for line in lines if "built from other sources" in line]
    assert len(warnings) == 6
    assert any("moesif_core._request_path" in line and "interface 1, this code needs 2" in line for line in warnings)
    assert all("hatch run native" in line for line in warnings)
