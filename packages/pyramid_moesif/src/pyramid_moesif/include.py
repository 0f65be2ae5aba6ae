"""``config.include("pyramid_moesif")``: the tween, the capture around the router, settings from the .ini.

Why two parts: a tween gets the Response object, not the WSGI iteration, so it cannot see a
streamed body as it is sent, nor an exception that escapes every tween and the exception view,
nor the request body as the app reads it. So the core WSGI capture wraps the whole router: when
the Configurator announces the app (``ApplicationCreated``), the router's execution policy is
wrapped so that every call goes through :class:`moesif_core.wsgi.MoesifMiddleware`; an execution
policy set by another add-on (``pyramid_retry``) is kept and runs inside. The tween (over
``EXCVIEW``) adds what only Pyramid knows: the route pattern and the live request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from pyramid.events import ApplicationCreated
from pyramid.interfaces import ITweens
from pyramid.path import DottedNameResolver
from pyramid.tweens import EXCVIEW

from moesif_core.log import logger, warn_once
from moesif_core.settings import SPECS, Settings, SettingsError
from moesif_core.wsgi import MoesifMiddleware

from ._version import __version__
from .tween import STATE_KEY, TWEEN_NAME

if TYPE_CHECKING:
    from moesif_core.agent import Agent

__all__ = ["configure_moesif", "get_moesif", "includeme", "ini_settings"]

SETTINGS_PREFIX: Final = "moesif."
_INCLUDED_KEY: Final = "pyramid_moesif.included"
_OPTIONS_KEY: Final = "pyramid_moesif.options"
_CALLABLE_KEYS: Final = frozenset(spec.key for spec in SPECS if spec.kind == "callable")
_MIDDLEWARE_ATTR: Final = "moesif_middleware"


def includeme(config: Any) -> None:
    """Set up Moesif capture for this Configurator; including it again does nothing more."""
    registry = config.registry
    if registry.get(_INCLUDED_KEY):
        return
    registry[_INCLUDED_KEY] = True
    # Ignored by Pyramid when pyramid.tweens lists tweens explicitly: then the app-created check warns.
    config.add_tween(TWEEN_NAME, over=EXCVIEW)
    config.add_subscriber(_capture_router, ApplicationCreated)
    config.add_directive("configure_moesif", configure_moesif)


def configure_moesif(config: Any, settings: Mapping[str, Any] | None = None, *, agent: Agent | None = None) -> None:
    """Configurator directive: a settings dict (moesifwsgi keys) that wins over the .ini's ``moesif.*``.

    The way in for code that already has a ``moesif_settings`` dict for moesifwsgi::

        config.include("pyramid_moesif")
        config.configure_moesif(moesif_settings)
    """
    config.registry[_OPTIONS_KEY] = (settings, agent)


def ini_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``moesif.*`` keys of the Pyramid settings without the prefix; callbacks given as dotted names are resolved.

    ``moesif.identify_user = mypkg.analytics:identify_user`` (or ``mypkg.analytics.identify_user``)
    is resolved with Pyramid's ``DottedNameResolver``; numbers and booleans stay strings here and
    are converted, with a clear error, by the core settings.
    """
    found: dict[str, Any] = {}
    if not settings:
        return found
    resolver = DottedNameResolver()
    for name, value in settings.items():
        if not isinstance(name, str) or not name.startswith(SETTINGS_PREFIX):
            continue
        key = name[len(SETTINGS_PREFIX) :]
        if key.upper() in _CALLABLE_KEYS and isinstance(value, str):
            try:
                found[key] = resolver.maybe_resolve(value.strip())
            except (ImportError, ValueError, AttributeError) as exc:
                raise SettingsError(f"{key.upper()} (from Pyramid setting {name!r}) could not be resolved: {exc}") from None
        else:
            found[key] = value
    return found


def _capture_router(event: Any) -> None:
    """``ApplicationCreated``: put the core capture around every call of the new router."""
    router = event.app
    registry = router.registry
    original = getattr(router, "execution_policy", None)
    if not callable(original):
        logger.warning(
            "moesif: this Pyramid router has no execution policy to wrap; calls are not captured. "
            "Wrap the app yourself: app = moesif_core.wsgi.MoesifMiddleware(config.make_wsgi_app(), settings)"
        )
        return
    if getattr(original, _MIDDLEWARE_ATTR, None) is not None:
        return
    first: MoesifMiddleware | None = registry.get(STATE_KEY)
    settings: Mapping[str, Any] | Settings | None
    if first is not None:
        # A second make_wsgi_app() from the same Configurator shares the first one's sender.
        settings, agent = first.settings, first.agent
    else:
        settings, agent = registry.get(_OPTIONS_KEY, (None, None))

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response: Callable[..., Iterable[bytes]] = original(environ, router)
        return response(environ, start_response)

    middleware = MoesifMiddleware(
        serve,
        settings,
        framework_config=ini_settings(registry.settings),
        framework_source="Pyramid settings (moesif.*)",
        callback_app=router,
        agent=agent,
        user_agent=f"pyramid-moesif/{__version__}",
    )

    def moesif_execution_policy(environ: dict[str, Any], router: Any) -> MoesifMiddleware:
        # The router calls what the policy returns as (environ, start_response): the middleware then
        # runs the original policy inside, so the whole call, its stream and its errors are seen.
        return middleware

    setattr(moesif_execution_policy, _MIDDLEWARE_ATTR, middleware)
    router.execution_policy = moesif_execution_policy
    registry.setdefault(STATE_KEY, middleware)
    _warn_if_tween_left_out(registry)


def _warn_if_tween_left_out(registry: Any) -> None:
    tweens = registry.queryUtility(ITweens)
    explicit = getattr(tweens, "explicit", None)
    if explicit and all(name != TWEEN_NAME for name, _ in explicit):
        warn_once(
            f"pyramid-tween-missing:{id(registry)}",
            "moesif: 'pyramid.tweens' lists tweens explicitly but leaves out %r. Calls are still captured, "
            "but without route patterns, request.moesif, request_of() or pyramid_moesif.authenticated_userid. Add it to "
            "'pyramid.tweens' just above pyramid.tweens.excview_tween_factory.",
            TWEEN_NAME,
        )


def get_moesif(target: Any) -> MoesifMiddleware:
    """The capture middleware of a Pyramid app, registry, request or Configurator.

    It has ``flush(timeout)``, ``close(timeout)``, ``stats()`` and ``update_user()`` and friends.

    Example::

        app = config.make_wsgi_app()
        get_moesif(app).flush(5.0)
    """
    policy = getattr(target, "execution_policy", None)
    own = getattr(policy, _MIDDLEWARE_ATTR, None)
    if isinstance(own, MoesifMiddleware):
        return own
    registry = getattr(target, "registry", target)
    found = registry.get(STATE_KEY) if isinstance(registry, dict) else None
    if not isinstance(found, MoesifMiddleware):
        raise RuntimeError(
            "no Moesif capture here: call config.include('pyramid_moesif') before config.make_wsgi_app(), "
            "then pass the app, its registry or a request"
        )
    return found
