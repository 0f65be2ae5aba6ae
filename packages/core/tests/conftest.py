"""Shared fixtures of moesif_core's tests.

Capture tests look at what the capture layer recorded through :class:`moesif_core.testing.RecordingAgent`;
end-to-end tests use the real agent and the local collector instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from moesif_core import asgi, wsgi
from moesif_core.log import reset_for_tests
from moesif_core.testing import RecordingAgent


@pytest.fixture(autouse=True)
def _fresh_log_guards() -> None:
    reset_for_tests()


def _take_request_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> str:
    """The path ``request.param`` names for middlewares of ``module`` made from now on."""
    if request.param == "native":
        if not module.NATIVE:
            pytest.skip(f"the C request path of {module.__name__} is not built")
    else:
        monkeypatch.setattr(module, "_native", None)
    return str(request.param)


@pytest.fixture(params=["native", "python"])
def wsgi_request_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test that uses it runs twice: middlewares made in it take the C request path, then the Python one.

    The Python path is the reference; the C one (``_wsgi_exchange.c``) must record the same.
    """
    return _take_request_path(request, monkeypatch, wsgi)


@pytest.fixture(params=["native", "python"])
def asgi_request_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """:func:`wsgi_request_path` for ASGI middlewares: the C path (``_asgi_exchange.c``), then the Python one."""
    return _take_request_path(request, monkeypatch, asgi)


@pytest.fixture
def recording_agent() -> RecordingAgent:
    return RecordingAgent()


@pytest.fixture
def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 that no trust store knows: (cert.pem, key.pem)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
