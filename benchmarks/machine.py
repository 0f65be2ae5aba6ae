"""What the figures were measured on: CPU model, cores, load, Python and package versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

__all__ = ["PACKAGES", "describe_machine"]

PACKAGES = (
    "moesif-core",
    "flask-moesif",
    "bottle-moesif",
    "pyramid-moesif",
    "falcon-moesif",
    "fastapi-moesif",
    "moesifwsgi",
    "moesifasgi",
    "moesifapi",
    "flask",
    "werkzeug",
    "bottle",
    "pyramid",
    "falcon",
    "fastapi",
    "starlette",
    "pydantic",
    "gunicorn",
    "uvicorn",
    "orjson",
    "msgspec",
    "isal",
    "psutil",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _wrk_version() -> str | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "wrk"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def describe_machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "git_commit": _git_commit(),
        "wrk": _wrk_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "native": _native_parts(),
    }


def _native_parts() -> str:
    """Which of moesif-core's optional native parts the workers load (they decide the sender's speed)."""
    from moesif_core import asgi, event_json, headers, json_scan, request_path, transport, wsgi

    scan = "C body check" if json_scan.NATIVE else "pure-Python body check"
    steps = "C request-path steps" if request_path.NATIVE else "pure-Python request-path steps"
    steps += ", C WSGI capture" if wsgi.NATIVE else ", pure-Python WSGI capture"
    steps += ", C ASGI capture" if asgi.NATIVE else ", pure-Python ASGI capture"
    steps += ", C header lists" if headers.NATIVE else ", pure-Python header lists"
    steps += ", C event JSON" if event_json.NATIVE else ", pure-Python event JSON"
    gzip = "ISA-L gzip" if transport.GZIP_IMPLEMENTATION == "isal" else "zlib gzip"
    return f"{scan}, {steps}, {gzip}"
