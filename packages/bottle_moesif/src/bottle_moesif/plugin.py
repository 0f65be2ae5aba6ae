"""``MoesifPlugin``: a Bottle plugin (API 2), glue over :class:`moesif_core.wsgi.MoesifMiddleware`.

Bottle applies plugins to route callbacks only, so a 404, a 405 or an error raised before a
route runs never reaches ``apply``. ``setup`` therefore wraps the app's WSGI entry point
(``Bottle.__call__`` calls ``self.wsgi``) with the core capture layer, which sees every call and
streams; ``apply`` only adds what the route knows: its rule and its ``moesif`` config.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import bottle

from moesif_core.annotations import annotations_of
from moesif_core.entities import EntityApi
from moesif_core.log import warn_once
from moesif_core.settings import SPECS, Settings, SettingsError
from moesif_core.wsgi import MoesifMiddleware

from ._version import __version__
from .route_options import route_options

if TYPE_CHECKING:
    from moesif_core.agent import Agent

__all__ = ["MoesifPlugin"]

CONFIG_PREFIX: Final = "moesif."
_CALLABLE_KEYS: Final = frozenset(spec.key for spec in SPECS if spec.kind == "callable")
# bottle.load evaluates what follows the colon: accept dotted names only.
_IMPORT_PATH: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def config_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``moesif.*`` keys of ``app.config`` without the prefix; callbacks may be ``"module:name"`` strings.

    ``app.config.load_config("app.ini")`` with a ``[moesif]`` section gives these keys.
    """
    found: dict[str, Any] = {}
    for name in list(config):
        if not isinstance(name, str) or not name.startswith(CONFIG_PREFIX):
            continue
        key = name[len(CONFIG_PREFIX) :]
        value = config[name]
        if key.upper() in _CALLABLE_KEYS and isinstance(value, str):
            if not _IMPORT_PATH.match(value.strip()):
                raise SettingsError(
                    f"{key.upper()} (from Bottle app.config[{name!r}]) must be 'package.module:function', got {value!r}"
                )
            try:
                value = bottle.load(value.strip())
            except (ImportError, AttributeError) as exc:
                raise SettingsError(f"{key.upper()} (from Bottle app.config[{name!r}]) could not be imported: {exc}") from None
        found[key] = value
    return found


class MoesifPlugin(EntityApi):
    """Captures every call of a Bottle app and sends it to Moesif in the background.

    Settings come from ``settings`` (the moesifwsgi keys), then ``app.config["moesif.<key>"]``,
    then ``MOESIF_<KEY>`` environment variables. Per route, ``moesif={"skip": True}`` or
    ``moesif={"metadata": {...}}`` in the route's config. ``app.close()`` flushes and stops it.

    Example::

        app = bottle.Bottle()
        app.install(MoesifPlugin({"APPLICATION_ID": "..."}))

        @app.get("/health", moesif={"skip": True})
        def health():
            return "ok"
    """

    name = "moesif"
    api = 2

    def __init__(self, settings: Mapping[str, Any] | Settings | None = None, *, agent: Agent | None = None) -> None:
        self._settings = settings
        self._agent = agent  # tests and benchmarks hand in their own; normally the core builds one
        self._app: bottle.Bottle | None = None
        self._middleware: MoesifMiddleware | None = None

    # -- the Bottle plugin API ------------------------------------------------------------------

    def setup(self, app: bottle.Bottle) -> None:
        """Wrap ``app.wsgi`` with the capture middleware (once per app, however often installed)."""
        current = app.__dict__.get("wsgi")
        if isinstance(current, MoesifMiddleware):
            if current is not self._middleware:
                warn_once(
                    f"bottle-double-install:{id(app)}",
                    "moesif: this Bottle app already has a MoesifPlugin; reusing it instead of capturing twice",
                )
            self._app, self._middleware = app, current
            return
        middleware = MoesifMiddleware(
            app.wsgi,
            self._settings,
            framework_config=config_settings(app.config),
            framework_source="Bottle app.config (moesif.*)",
            callback_app=app,
            agent=self._agent,
            user_agent=f"bottle-moesif/{__version__}",
        )
        # Bottle.__call__ looks up self.wsgi per call: an instance attribute puts us in front of every call.
        app.wsgi = middleware  # type: ignore[method-assign]
        self._app, self._middleware = app, middleware

    def apply(self, callback: Callable[..., Any], route: Any) -> Callable[..., Any]:
        """Tell the capture layer this route's rule and options when it runs."""
        options = route_options(route)
        rule = getattr(route, "rule", None)

        @functools.wraps(callback)
        def moesif_route(*args: Any, **kwargs: Any) -> Any:
            try:
                annotations = annotations_of(bottle.request.environ)
                if annotations is not None:
                    if annotations.route is None:
                        annotations.route = rule
                    if options.skip:
                        annotations.skip = True
                    if options.metadata:
                        annotations.add_metadata(options.metadata)
            except Exception as exc:  # never fail the route over its name
                warn_once("bottle-apply", "moesif: could not read the Bottle route (%s: %s)", type(exc).__name__, exc)
            return callback(*args, **kwargs)

        return moesif_route

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued, stop the sender and unwrap the app; ``app.close()`` and ``app.uninstall()`` call it."""
        middleware = self._middleware
        if middleware is None:
            return True
        try:
            return middleware.close(timeout)
        finally:
            app = self._app
            if app is not None and app.__dict__.get("wsgi") is middleware:
                del app.wsgi

    # -- the middleware and its sender -------------------------------------------------------

    @property
    def middleware(self) -> MoesifMiddleware:
        """The capture middleware; RuntimeError before ``app.install(plugin)``."""
        if self._middleware is None:
            raise RuntimeError("MoesifPlugin is not installed: call app.install(MoesifPlugin(settings)) first")
        return self._middleware

    @property
    def agent(self) -> Agent:  # type: ignore[override]
        """The background sender (``update_user`` and friends queue through it)."""
        return self.middleware.agent

    @property
    def settings(self) -> Settings:
        return self.middleware.settings

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver every event captured so far, waiting at most ``timeout`` seconds."""
        return self.middleware.flush(timeout)

    def stats(self) -> dict[str, int]:
        """Counters: queued, sent, retried, dropped by reason, sampled out, skipped."""
        return self.middleware.stats()
