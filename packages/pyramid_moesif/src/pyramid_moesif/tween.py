"""The Moesif tween: what only Pyramid knows about a call, handed to the capture layer.

The capture itself happens around the whole router (see :mod:`pyramid_moesif.include`), so this
tween does not time, read bodies or catch errors. It runs while the request is live (threadlocals
pushed, finished callbacks not yet run): it gives views ``request.moesif`` (the call's
annotations), notes the matched route's pattern, keeps the request reachable for the user's
callbacks (:func:`request_of`) and, when ``IDENTIFY_USER`` is :func:`authenticated_userid`, asks
Pyramid's security policy for the user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from moesif_core.annotations import RequestAnnotations, annotations_of
from moesif_core.log import warn_once

__all__ = ["REQUEST_KEY", "TWEEN_NAME", "authenticated_userid", "request_of", "tween_factory"]

TWEEN_NAME: Final = "pyramid_moesif.tween_factory"
REQUEST_KEY: Final = "pyramid_moesif.request"
USERID_KEY: Final = "pyramid_moesif.authenticated_userid"
STATE_KEY: Final = "pyramid_moesif.state"  # registry entry: the first capture middleware built for it


def request_of(environ: dict[str, Any]) -> Any:
    """The Pyramid request of a captured call, for callbacks that take ``(app, environ, ...)``; None before the tween ran.

    Example::

        def identify_company(app, environ, response_headers):
            request = pyramid_moesif.request_of(environ)
            return request.matchdict.get("org") if request is not None and request.matchdict else None
    """
    return environ.get(REQUEST_KEY)


def authenticated_userid(app: Any, environ: dict[str, Any], response_headers: Any = None) -> Any:
    """An ``IDENTIFY_USER`` for Pyramid: the user id of the app's security policy.

    The tween asks ``request.authenticated_userid`` while the request is live (before
    ``pyramid_tm`` commits or sessions close); this function hands that answer over.

    Example (``.ini``)::

        moesif.identify_user = pyramid_moesif.authenticated_userid
    """
    return environ.get(USERID_KEY)


def tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Pyramid tween factory, added over ``EXCVIEW`` by ``config.include("pyramid_moesif")``."""

    def moesif_tween(request: Any) -> Any:
        environ = request.environ
        annotations = annotations_of(environ)
        if annotations is None:  # not under the capture middleware (a subrequest, or a test calling the router's parts)
            request.moesif = RequestAnnotations()  # detached: what a view writes there goes nowhere
            return handler(request)
        # A plain attribute, not add_request_method(reify=True): Pyramid applies request properties
        # by creating a new class for every request (~30 us a call on the benchmark machine).
        request.moesif = annotations
        environ[REQUEST_KEY] = request
        try:
            return handler(request)
        finally:
            try:
                route = request.matched_route
                if route is not None and annotations.route is None:
                    annotations.route = route.pattern
                state = registry.get(STATE_KEY)
                if state is not None and state.settings.identify_user is authenticated_userid:
                    environ[USERID_KEY] = request.authenticated_userid
            except Exception as exc:  # a security policy may raise: the call goes on, without a user
                warn_once("pyramid-tween", "moesif: could not read the Pyramid route or user (%s: %s)", type(exc).__name__, exc)

    return moesif_tween
