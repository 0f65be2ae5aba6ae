"""moesif-core builds and runs with or without a C compiler, as docs/deployment.md promises.

The four C extensions are optional (``setup.py``): where no compiler is found the build must go
on and give a wheel whose pure-Python fallbacks capture and build events the same way. Both
wheels are built here from a copy of the package, with the build backend itself (what ``pip
install`` runs), and imported in a fresh interpreter ahead of the project's editable install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CORE = Path(__file__).resolve().parent.parent
EXTENSIONS = {"_json_scan", "_request_path", "_headers", "_event_json", "_wsgi_exchange", "_asgi_exchange"}

# Runs in the fresh interpreter: which native parts load, and one call captured and built.
PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import moesif_core
assert moesif_core.__file__.startswith(sys.argv[1]), moesif_core.__file__
from moesif_core import event_json, headers, json_scan, request_path, wsgi
from moesif_core.event_builder import EventBuilder
from moesif_core.record import RawExchange
from moesif_core.settings import Settings
record = RawExchange()
record.request_time = record.response_time = 1795321112.25
record.request_headers = {"HTTP_HOST": "api.example.com", "HTTP_AUTHORIZATION": "Basic YWRhOng="}
record.request_header_style = "environ"
record.response_headers = [("Content-Type", "application/json")]
record.response_body = b'{"id": 7}'
record.status = 200
assert len(request_path.new_transaction_id()) == 36
record.transaction_id = "a6682df0-eaaf-4440-aee4-53cc0a19f9c6"
event = EventBuilder(Settings.resolve({"APPLICATION_ID": "app"}, environ={})).build_json(record)
print(json_scan.NATIVE, request_path.NATIVE, headers.NATIVE, event_json.NATIVE, wsgi.NATIVE)
print(event.decode())
"""


def build_wheel(tmp_path: Path, **env: str) -> Path:
    source = tmp_path / "core"
    shutil.copytree(CORE, source, ignore=shutil.ignore_patterns("*.so", "build", "*.egg-info", "__pycache__", "tests"))
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_wheel({str(out)!r})"],
        cwd=source,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("*.whl")
    return wheel


def probe(wheel: Path, tmp_path: Path) -> list[str]:
    target = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    env = {key: value for key, value in os.environ.items() if key != "MOESIF_PURE_PYTHON"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(target)], env=env, check=True, capture_output=True, text=True, timeout=120
    )
    return done.stdout.splitlines()


def built_extensions(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {Path(name).name.split(".")[0] for name in archive.namelist() if name.endswith(".so")}


def test_without_a_compiler_the_wheel_is_pure_python_and_captures_the_same(tmp_path: Path) -> None:
    pure = build_wheel(tmp_path / "pure", CC="false", LDSHARED="false")
    assert built_extensions(pure) == set()
    flags, pure_event = probe(pure, tmp_path / "pure")
    assert flags == "False False False False False"
    assert '"user_id":"ada"' in pure_event  # the Basic credentials' user, found by the Python path

    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        return  # no compiler here: nothing to compare the pure event with
    native = build_wheel(tmp_path / "native")
    assert built_extensions(native) == EXTENSIONS
    flags, native_event = probe(native, tmp_path / "native")
    assert flags == "True True True True True"
    assert native_event == pure_event
