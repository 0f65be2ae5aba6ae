"""Per-view choices for Pyramid: view decorators and ``request.moesif``.

Pyramid's idiom for wrapping one view is ``@view_config(..., decorator=...)``; the decorated view
callable takes ``(context, request)``. Both decorators only write the call's annotations, which
the capture layer reads when the response starts.

Example::

    @view_config(route_name="health", renderer="string", decorator=skip_moesif)
    def health(request):
        return "ok"
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from moesif_core.annotations import RequestAnnotations, annotations_of

__all__ = ["annotations_for", "moesif_metadata", "skip_moesif"]

ViewCallable = Callable[[Any, Any], Any]


def annotations_for(request: Any) -> RequestAnnotations:
    """The call's annotations (``request.moesif``); a detached object when the call is not captured."""
    environ = getattr(request, "environ", None)
    found = annotations_of(environ) if isinstance(environ, dict) else None
    return found if found is not None else RequestAnnotations()


def skip_moesif(view: ViewCallable) -> ViewCallable:
    """View decorator: calls of this view are not sent to Moesif (health checks, metrics scrapes)."""

    @functools.wraps(view)
    def moesif_skipped(context: Any, request: Any) -> Any:
        annotations_for(request).skip = True
        return view(context, request)

    return moesif_skipped


def moesif_metadata(metadata: Mapping[str, Any]) -> Callable[[ViewCallable], ViewCallable]:
    """View decorator factory: add ``metadata`` to every event of this view (over ``GET_METADATA``'s result).

    Example::

        @view_config(route_name="checkout", renderer="json", decorator=moesif_metadata({"feature": "checkout"}))
        def checkout(request): ...
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"moesif_metadata takes a dict, got {type(metadata).__name__}")
    values = dict(metadata)

    def decorate(view: ViewCallable) -> ViewCallable:
        @functools.wraps(view)
        def moesif_annotated(context: Any, request: Any) -> Any:
            annotations_for(request).add_metadata(values)
            return view(context, request)

        return moesif_annotated

    return decorate
