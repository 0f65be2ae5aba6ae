"""``MoesifFlask``: the Flask extension, glue over :class:`moesif_core.wsgi.MoesifMiddleware`.

The core middleware wraps ``app.wsgi_app`` (not a request hook), so it sees what Flask's hooks
miss: 404s and 405s, errors raised anywhere, and streamed bodies chunk by chunk. What Flask
alone knows (the matched rule and the view's ``skip_moesif`` / ``moesif_metadata`` marks) is read
from the request as the response starts, not by a request hook: Flask matched the URL before any
hook ran, and a hook costs every call more than one read. An exception Flask lets propagate
(``PROPAGATE_EXCEPTIONS``: testing and debug mode) reaches the capture layer after Flask left its
request context, so Flask's error path (``got_request_exception``, sent on errors only, inside the
context) notes them first. The user's callbacks run inside the request context, so
``flask.request``, ``flask.g`` and flask-login's ``current_user`` work in them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import flask
from werkzeug.utils import ImportStringError, import_string

from moesif_core.annotations import RequestAnnotations, annotations_of
from moesif_core.entities import EntityApi
from moesif_core.log import warn_once
from moesif_core.settings import SPECS, Settings, SettingsError
from moesif_core.wsgi import MoesifMiddleware

from ._version import __version__
from .view_options import apply_view_options

if TYPE_CHECKING:
    from moesif_core.agent import Agent

__all__ = ["EXTENSION_KEY", "MoesifFlask"]

EXTENSION_KEY: Final = "moesif"
CONFIG_PREFIX: Final = "MOESIF_"
_CALLABLE_KEYS: Final = frozenset(spec.key for spec in SPECS if spec.kind == "callable")


def config_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``MOESIF_*`` keys of ``app.config`` without the prefix; callbacks may be import strings.

    A string such as ``"myapp.analytics:identify_user"`` for a callback key is imported with
    Werkzeug's ``import_string``, so ``app.config.from_prefixed_env()`` and .cfg files can name them.
    """
    found: dict[str, Any] = {}
    for name, raw in config.items():
        if not isinstance(name, str) or not name.startswith(CONFIG_PREFIX):
            continue
        key = name[len(CONFIG_PREFIX) :]
        value = raw
        if key.upper() in _CALLABLE_KEYS and isinstance(raw, str):
            try:
                value = import_string(raw)
            except (ImportError, ImportStringError) as exc:
                raise SettingsError(f"{key.upper()} (from Flask app.config[{name!r}]) could not be imported: {exc}") from None
        found[key] = value
    return found


class MoesifFlask(EntityApi):
    """Captures every call of a Flask app and sends it to Moesif in the background.

    Settings come from ``settings`` (the moesifwsgi keys), then ``app.config["MOESIF_<KEY>"]``,
    then ``MOESIF_<KEY>`` environment variables. Initializing an app twice does nothing more.

    Example::

        moesif = MoesifFlask()

        def create_app():
            app = Flask(__name__)
            app.config["MOESIF_APPLICATION_ID"] = "..."
            moesif.init_app(app)
            return app
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        settings: Mapping[str, Any] | Settings | None = None,
        *,
        agent: Agent | None = None,
    ) -> None:
        self._settings = settings
        self._agent = agent  # tests and benchmarks hand in their own; normally the core builds one per app
        self._middlewares: dict[flask.Flask, MoesifMiddleware] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Wrap ``app.wsgi_app`` with the capture middleware and register the extension.

        Raises :class:`~moesif_core.SettingsError` for a missing or malformed setting.
        """
        existing = app.extensions.get(EXTENSION_KEY)
        if existing is self:
            return
        if isinstance(existing, MoesifFlask):
            # Another MoesifFlask already wraps this app: wrapping twice would send every call twice.
            warn_once(
                f"flask-double-init:{id(app)}",
                "moesif: Flask app %r already has a MoesifFlask; reusing it instead of capturing twice",
                app.name,
            )
            self._middlewares[app] = existing.middleware_for(app)
            return
        middleware = MoesifMiddleware(
            app.wsgi_app,
            self._settings,
            framework_config=config_settings(app.config),
            framework_source="Flask app.config (MOESIF_*)",
            callback_app=app,
            agent=self._agent,
            user_agent=f"flask-moesif/{__version__}",
            annotate=functools.partial(_note_view, app),
        )
        app.wsgi_app = middleware  # type: ignore[method-assign]
        _note_views_of_failed_calls(app)
        app.extensions[EXTENSION_KEY] = self
        self._middlewares[app] = middleware

    # -- the middleware of an app -------------------------------------------------------------

    def middleware_for(self, app: flask.Flask) -> MoesifMiddleware:
        """The capture middleware of ``app``; KeyError if ``init_app(app)`` was not called."""
        return self._middlewares[app]

    @property
    def middleware(self) -> MoesifMiddleware:
        """The middleware of the current app (or of the only app initialized)."""
        if flask.has_app_context():
            app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
            if app in self._middlewares:
                return self._middlewares[app]
        if len(self._middlewares) == 1:
            return next(iter(self._middlewares.values()))
        if not self._middlewares:
            raise RuntimeError("MoesifFlask is not initialized: call MoesifFlask(app) or moesif.init_app(app) first")
        raise RuntimeError("MoesifFlask serves several apps: use moesif.middleware_for(app) or an app context")

    @property
    def agent(self) -> Agent:  # type: ignore[override]
        """The background sender of the current app (``update_user`` and friends queue through it)."""
        return self.middleware.agent

    @property
    def settings(self) -> Settings:
        return self.middleware.settings

    # -- lifecycle ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver every event captured so far by every initialized app; False if time ran out."""
        done = True
        for agent in self._agents():
            done = agent.flush(timeout) and done
        return done

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the background senders; later calls are no longer sent."""
        done = True
        for agent in self._agents():
            done = agent.close(timeout) and done
        return done

    def stats(self) -> dict[str, int]:
        """Counters of the current app's sender: queued, sent, retried, dropped by reason."""
        return self.middleware.stats()

    def _agents(self) -> list[Agent]:
        unique: dict[int, Agent] = {}
        for middleware in self._middlewares.values():
            unique.setdefault(id(middleware.agent), middleware.agent)
        return list(unique.values())


def _note_view(app: flask.Flask, environ: dict[str, Any], annotations: RequestAnnotations) -> None:
    """The matched rule and the view's marks, for the capture layer, as the response starts.

    Flask starts the response inside its request context, so the request there is the one it
    routed, even when a middleware between us and Flask handed it a copy of the environ.
    """
    if not flask.has_request_context():
        # The app ended without starting a response, after Flask left the context (and cleared
        # the request it kept in the environ): an exception it let propagate was noted by
        # _note_failed_view while the context was there.
        return
    _note_request(app, flask.request._get_current_object(), annotations)  # type: ignore[attr-defined]


def _note_views_of_failed_calls(app: flask.Flask) -> None:
    """Have Flask's error path, which alone still runs inside the request context, note the view.

    ``Flask.wsgi_app`` hands an exception of the view or a hook to ``handle_exception``, which
    sends ``got_request_exception`` and, with ``PROPAGATE_EXCEPTIONS`` (testing, debug mode),
    re-raises it; Flask then pops its request context before the capture layer sees the
    exception. Both run on errors only: the normal path pays nothing.
    """
    try:
        flask.got_request_exception.connect(_note_failed_view, app, weak=False)
    except Exception:  # Flask before 2.3 without blinker: its signals cannot be connected to
        _wrap_handle_exception(app)


def _wrap_handle_exception(app: flask.Flask) -> None:
    handle_exception = app.handle_exception

    @functools.wraps(handle_exception)
    def handle_exception_noting_the_view(e: Exception) -> Any:
        _note_failed_view(app)
        return handle_exception(e)

    app.handle_exception = handle_exception_noting_the_view  # type: ignore[method-assign]


def _note_failed_view(app: flask.Flask, **_: Any) -> None:
    """The view of a call that raised, while Flask's request context is still there; never raises.

    An exception here would replace the app's own, so it costs one warning and the route only.
    """
    try:
        request = flask.request._get_current_object()  # type: ignore[attr-defined]
        annotations = annotations_of(request.environ)  # shared by a copy of the environ made inside us
        if annotations is not None:
            _note_request(app, request, annotations)
    except Exception as exc:
        warn_once("flask-note-failed-view", "moesif: could not read the route of a failed call (%s: %s)", type(exc).__name__, exc)


def _note_request(app: flask.Flask, request: Any, annotations: RequestAnnotations) -> None:
    rule = request.url_rule
    if rule is None:
        return  # 404 and 405: no view
    if annotations.route is None:
        annotations.route = rule.rule
    apply_view_options(app.view_functions.get(rule.endpoint), annotations)
