"""The demo app in each supported framework, built on that framework's integration package.

Frameworks and integrations are imported only when their app is built, so ``moesif_core`` never
depends on them; :func:`build_app` raises :class:`IntegrationMissing` with the install command
when the chosen one is not there.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

__all__ = ["FLASK_APP_NAME", "FRAMEWORKS", "DemoApp", "Integration", "IntegrationMissing", "build_app"]


# The Flask app's name, which is also its logger's: the runner filters the deliberate failure out of that logger.
FLASK_APP_NAME: Final = "moesif-demo-flask"


class Integration(Protocol):
    """What the demo uses of an integration object (``MoesifFlask``, ``MoesifPlugin``, ...): all of them have it."""

    @property
    def agent(self) -> Any: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self, timeout: float | None = None) -> bool: ...

    def stats(self) -> dict[str, int]: ...

    def update_user(self, user: Any) -> bool: ...

    def update_company(self, company: Any) -> bool: ...


@dataclass(frozen=True, slots=True)
class DemoApp:
    """A built demo app: ``app`` is what the server runs (a WSGI or an ASGI callable)."""

    framework: str
    interface: Literal["wsgi", "asgi"]
    app: Any
    integration: Integration


@dataclass(frozen=True, slots=True)
class _Framework:
    module: str  # the demo module building the app, relative to this package
    imports: tuple[str, ...]  # what must be importable, in the order a missing one is reported
    install: str  # the pip command that fixes a missing import


FRAMEWORKS: Final[dict[str, _Framework]] = {
    "flask": _Framework("flask_app", ("flask", "flask_moesif"), "pip install flask-moesif"),
    "bottle": _Framework("bottle_app", ("bottle", "bottle_moesif"), "pip install bottle-moesif"),
    "pyramid": _Framework("pyramid_app", ("pyramid", "pyramid_moesif"), "pip install pyramid-moesif"),
    "falcon": _Framework("falcon_app", ("falcon", "falcon_moesif"), "pip install falcon-moesif"),
    "fastapi": _Framework("fastapi_app", ("fastapi", "fastapi_moesif", "uvicorn"), "pip install fastapi-moesif uvicorn"),
}


class IntegrationMissing(RuntimeError):
    """The chosen framework or its integration package is not installed; the message says what to install."""


def build_app(framework: str, settings: dict[str, Any], upstream_url: str | None) -> DemoApp:
    """The demo app of ``framework`` with its integration configured by ``settings``.

    ``upstream_url`` is the rates service the ``/rates`` view calls; None leaves that view out.
    """
    spec = FRAMEWORKS[framework]
    for name in spec.imports:
        try:
            with warnings.catch_warnings():
                # Pyramid 2.0 imports pkg_resources, whose deprecation warning would be the demo's first line of output.
                warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
                importlib.import_module(name)
        except ImportError as exc:
            raise IntegrationMissing(
                f"the {framework} demo needs {name!r}, which cannot be imported ({exc}); "
                f"install it with `{spec.install}`, or run `hatch run demo` from the repository, whose environment has them all"
            ) from exc
    module = importlib.import_module(f"{__name__}.{spec.module}")
    built: DemoApp = module.build(settings, upstream_url)
    return built
