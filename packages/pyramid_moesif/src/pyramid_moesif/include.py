"""``config.include("pyramid_moesif")``: the tween, the capture around the router, settings from the .ini.

Why two parts: a tween gets the Response object, not the WSGI iteration, so it cannot see a
streamed body as it is sent, nor an exception that escapes every tween and the exception view,
nor the request body as the app reads it. So the core WSGI capture wraps the whole router: when
the Configurator announces the app (``ApplicationCreated``), the router's execution policy is
wrapped so that every call goes through :class:`moesif_core.wsgi.MoesifMiddleware`; an execution
policy set by another add-on (``pyramid_retry``) is kept and runs inside. The wrapping policy is
also registered, so later apps of the same Configurator are captured too. The tween (over
``EXCVIEW``) adds what only Pyramid knows: the route pattern and the live request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from pyramid.events import ApplicationCreated
from pyramid.interfaces import IExecutionPolicy, ITweens
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
    policy = getattr(router, "execution_policy", None)
    if isinstance(policy, _CapturePolicy):
        policy.middleware_for(router)  # a later app of this registry: its capture now, not at its first call
        return
    if not callable(policy):
        logger.warning(
            "moesif: this Pyramid router has no execution policy to wrap; calls are not captured. "
            "Wrap the app yourself: app = moesif_core.wsgi.MoesifMiddleware(config.make_wsgi_app(), settings)"
        )
        return
    capture = _CapturePolicy(policy, registry)
    capture.middleware_for(router)  # settings are checked here: a bad one fails make_wsgi_app()
    router.execution_policy = capture
    # Later routers of this registry read the policy from the registry, so they are captured even
    # when ApplicationCreated is not sent again (below).
    registry.registerUtility(capture, IExecutionPolicy)
    _warn_if_tween_left_out(registry)
    _quiet_if_only_listener(registry)


def _quiet_if_only_listener(registry: Any) -> None:
    """Our subscriber must not make Pyramid send its per-request events to nobody.

    Any subscriber turns on ``registry.has_listeners``, and then the router builds and sends
    NewRequest, ContextFound, BeforeRender and NewResponse on every call (~28 us on the benchmark
    machine). When ours is the only one, it has done its job: turn the flag back off. Pyramid turns
    it on again as soon as anything else subscribes.
    """
    try:
        # Pyramid registers a wrapper of a one-argument subscriber (functools.wraps: __wrapped__).
        handlers = [getattr(h.handler, "__wrapped__", h.handler) for h in registry.registeredHandlers()]
        if all(handler is _capture_router for handler in handlers) and not any(
            True for _ in registry.registeredSubscriptionAdapters()
        ):
            registry.has_listeners = False
    except Exception:  # a registry of another shape: leave Pyramid's flag alone
        pass


class _CapturePolicy:
    """The execution policy of a registry: each router's calls go through its own capture middleware.

    The router calls ``policy(environ, router)`` and then what it returns as a WSGI app: here the
    core capture, which runs the execution policy that was there before (Pyramid's own, or an
    add-on's such as ``pyramid_retry``) inside, so the whole call, its stream and its errors are
    seen. All routers of a registry share one sender.
    """

    def __init__(self, original: Callable[[dict[str, Any], Any], Any], registry: Any) -> None:
        self.original = original
        self.registry = registry
        self._by_router: dict[Any, MoesifMiddleware] = {}  # routers hash by identity
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], router: Any) -> MoesifMiddleware:
        found = self._by_router.get(router)
        return found if found is not None else self.middleware_for(router)

    def middleware_for(self, router: Any) -> MoesifMiddleware:
        with self._lock:
            middleware = self._by_router.get(router)
            if middleware is None:
                middleware = self._by_router[router] = self._build(router)
                self.registry.setdefault(STATE_KEY, middleware)
            return middleware

    def _build(self, router: Any) -> MoesifMiddleware:
        registry = self.registry
        first: MoesifMiddleware | None = registry.get(STATE_KEY)
        settings: Mapping[str, Any] | Settings | None
        if first is not None:
            # A second make_wsgi_app() from the same Configurator shares the first one's sender.
            settings, agent = first.settings, first.agent
        else:
            settings, agent = registry.get(_OPTIONS_KEY, (None, None))
        original = self.original

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            response: Callable[..., Iterable[bytes]] = original(environ, router)
            return response(environ, start_response)

        return MoesifMiddleware(
            serve,
            settings,
            framework_config=ini_settings(registry.settings),
            framework_source="Pyramid settings (moesif.*)",
            callback_app=router,
            agent=agent,
            user_agent=f"pyramid-moesif/{__version__}",
        )


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
    if isinstance(policy, _CapturePolicy):
        return policy.middleware_for(target)
    registry = getattr(target, "registry", target)
    found = registry.get(STATE_KEY) if isinstance(registry, dict) else None
    if not isinstance(found, MoesifMiddleware):
        raise RuntimeError(
            "no Moesif capture here: call config.include('pyramid_moesif') before config.make_wsgi_app(), "
            "then pass the app, its registry or a request"
        )
    return found
