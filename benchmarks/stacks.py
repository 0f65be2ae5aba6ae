"""The three stacks of each framework: the bare app, ours (the framework's integration) and the incumbent.

:func:`build` returns a :class:`Target`: the WSGI or ASGI callable to drive and how it was made.
Ours uses the framework's own integration package; when one cannot be imported the core
middleware (``moesif_core.wsgi`` / ``moesif_core.asgi``) is put around the framework's app
instead and ``Target.note`` says so. The incumbents are wrapped the way their READMEs show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .apps import ASGI_FRAMEWORKS, build_app

__all__ = ["APPLICATION_ID", "INCUMBENT", "INPROCESS_STACKS", "PATH", "STACKS", "Target", "build"]

STACKS: Final = ("bare", "ours", "incumbent")
#: Ours with every record dropped at the agent's ``submit``: what the request path alone costs,
#: without the sender's threads (a diagnosis the in-process section measures beside the others).
PATH: Final = "path"
INPROCESS_STACKS: Final = ("bare", "ours", PATH, "incumbent")
APPLICATION_ID: Final = "bench-application-id"
# The incumbent of each framework (moesifasgi is Starlette middleware; it wraps any ASGI app).
INCUMBENT: Final = {
    "flask": "moesifwsgi",
    "bottle": "moesifwsgi",
    "pyramid": "moesifwsgi",
    "falcon": "moesifwsgi",
    "falcon_asgi": "moesifasgi",
    "fastapi": "moesifasgi",
}


@dataclass
class Target:
    """One app to drive: ``kind`` is "wsgi" or "asgi"; ``label`` names the stack as the report shows it."""

    framework: str
    stack: str
    kind: str
    app: Any
    label: str
    note: str = ""


def _ours_settings(base_uri: str) -> dict[str, Any]:
    return {"APPLICATION_ID": APPLICATION_ID, "BASE_URI": base_uri}


def _incumbent_settings(base_uri: str) -> dict[str, Any]:
    # moesifwsgi reads BASE_URI (or LOCAL_MOESIF_BASEURL); moesifasgi reads BASE_URI. Both store it
    # in moesifapi's class-level Configuration, so one process measures one incumbent.
    return {"APPLICATION_ID": APPLICATION_ID, "BASE_URI": base_uri, "LOG_BODY": True}


def build(framework: str, stack: str, base_uri: str | None) -> Target:
    """The app of ``framework`` under ``stack`` ("bare", "ours", "path", "incumbent"), sending to ``base_uri``.

    "path" is ours; :func:`drop_records` makes it drop each record once the app was called once.
    """
    kind = "asgi" if framework in ASGI_FRAMEWORKS else "wsgi"
    if stack == "bare":
        app = build_app(framework)
        if framework == "pyramid":
            app = app.make_wsgi_app()
        return Target(framework, stack, kind, app, "bare")
    if base_uri is None:
        raise ValueError(f"stack {stack!r} needs a collector address")
    if stack == "ours":
        return _ours(framework, kind, base_uri)
    if stack == PATH:
        target = _ours(framework, kind, base_uri)
        target.stack = PATH
        target.label = "ours, request path alone (records dropped at submit)"
        return target
    if stack == "incumbent":
        return _incumbent(framework, kind, base_uri)
    raise ValueError(f"unknown stack {stack!r}; expected one of {', '.join(INPROCESS_STACKS)}")


def drop_records() -> None:
    """Every agent of ours in this process drops each record at ``submit`` from now on (the "path" stack).

    Called after a first call: Starlette builds its middleware, and so our agent, at the first call.
    What was queued is delivered first; the sender's threads then idle.
    """
    from moesif_core import agent as agent_module

    for agent in list(agent_module._agents):
        agent.flush(30)
        agent.submit = lambda record: True  # type: ignore[method-assign]


def _ours(framework: str, kind: str, base_uri: str) -> Target:
    settings = _ours_settings(base_uri)
    try:
        app, label = _ours_integration(framework, settings)
    except ImportError as exc:
        app = build_app(framework)
        if framework == "pyramid":
            app = app.make_wsgi_app()
        if kind == "wsgi":
            from moesif_core.wsgi import MoesifMiddleware as CoreWsgi

            return Target(
                framework, "ours", kind, CoreWsgi(app, settings), "moesif_core.wsgi", f"integration not importable: {exc}"
            )
        from moesif_core.asgi import MoesifMiddleware as CoreAsgi

        return Target(framework, "ours", kind, CoreAsgi(app, settings), "moesif_core.asgi", f"integration not importable: {exc}")
    return Target(framework, "ours", kind, app, label)


def _ours_integration(framework: str, settings: dict[str, Any]) -> tuple[Any, str]:
    if framework == "flask":
        from flask_moesif import MoesifFlask

        app = build_app("flask")
        MoesifFlask(app, settings)
        return app, "flask_moesif.MoesifFlask"
    if framework == "bottle":
        from bottle_moesif import MoesifPlugin

        app = build_app("bottle")
        app.install(MoesifPlugin(settings))
        return app, "bottle_moesif.MoesifPlugin"
    if framework == "pyramid":
        import pyramid_moesif  # noqa: F401  (ImportError here selects the core fallback)

        config = build_app("pyramid")
        config.include("pyramid_moesif")
        config.configure_moesif(settings)
        return config.make_wsgi_app(), "pyramid_moesif (config.include)"
    if framework in ("falcon", "falcon_asgi"):
        from falcon_moesif import MoesifMiddleware as FalconMoesif

        return build_app(framework, [FalconMoesif(settings)]), "falcon_moesif.MoesifMiddleware"
    if framework == "fastapi":
        from fastapi_moesif import MoesifMiddleware as FastapiMoesif

        app = build_app("fastapi")
        app.add_middleware(FastapiMoesif, settings=settings)
        return app, "fastapi_moesif.MoesifMiddleware"
    raise ValueError(f"unknown framework {framework!r}")


def _incumbent(framework: str, kind: str, base_uri: str) -> Target:
    settings = _incumbent_settings(base_uri)
    name = INCUMBENT[framework]
    if kind == "wsgi":
        from moesifwsgi import MoesifMiddleware as IncumbentWsgi

        if framework == "flask":
            app = build_app("flask")
            app.wsgi_app = IncumbentWsgi(app.wsgi_app, settings)
            return Target(framework, "incumbent", kind, app, name)
        app = build_app(framework)
        if framework == "pyramid":
            app = app.make_wsgi_app()
        return Target(framework, "incumbent", kind, IncumbentWsgi(app, settings), name)
    from moesifasgi import MoesifMiddleware as IncumbentAsgi

    app = build_app(framework)
    if framework == "fastapi":
        app.add_middleware(IncumbentAsgi, settings=settings)
        return Target(framework, "incumbent", kind, app, name)
    return Target(framework, "incumbent", kind, IncumbentAsgi(app, settings=settings), name)
