"""Per-view choices (skip this view, add metadata) and the current call's annotations.

The decorators only mark the view function; the extension reads the mark of the matched view
when the response starts (and, for a call that raised, when Flask handles the exception), so a
mark works even when a ``before_request`` hook answers the call (a 401 from an auth hook on a
skipped health check stays skipped) and when Flask lets the exception of a view propagate.

Example::

    @app.get("/health")
    @skip_moesif
    def health():
        return "ok"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import flask

from moesif_core.annotations import RequestAnnotations, annotations_of

__all__ = ["current_annotations", "moesif_metadata", "skip_moesif"]

F = TypeVar("F", bound=Callable[..., Any])

# functools.wraps copies __dict__, so the mark survives the user's own decorators.
OPTIONS_ATTR: Final = "__moesif_options__"


def _mark(view: F, **options: Any) -> F:
    existing = getattr(view, OPTIONS_ATTR, None)
    merged = dict(existing) if isinstance(existing, dict) else {}
    if "metadata" in options and isinstance(merged.get("metadata"), dict):
        options["metadata"] = {**merged["metadata"], **options["metadata"]}
    merged.update(options)
    setattr(view, OPTIONS_ATTR, merged)
    return view


def skip_moesif(view: F) -> F:
    """Do not send calls of this view to Moesif (health checks, metrics scrapes)."""
    return _mark(view, skip=True)


def moesif_metadata(metadata: Mapping[str, Any]) -> Callable[[F], F]:
    """Add ``metadata`` to every event of this view (merged over ``GET_METADATA``'s result).

    Example::

        @app.post("/orders")
        @moesif_metadata({"feature": "checkout"})
        def create_order(): ...
    """
    if not isinstance(metadata, Mapping):
        raise TypeError(f"moesif_metadata takes a dict, got {type(metadata).__name__}")
    values = dict(metadata)

    def decorate(view: F) -> F:
        return _mark(view, metadata=values)

    return decorate


def current_annotations() -> RequestAnnotations:
    """The current call's annotations: set ``.user_id``, ``.company_id``, ``.skip`` or ``add_metadata()``.

    Outside a captured request (no extension, tests without it) a detached object is returned,
    so view code never needs to check.

    Example::

        current_annotations().user_id = current_user.get_id()
    """
    if flask.has_request_context():
        found = annotations_of(flask.request.environ)
        if found is not None:
            return found
    return RequestAnnotations()


def apply_view_options(view: Any, annotations: RequestAnnotations) -> None:
    options = getattr(view, OPTIONS_ATTR, None)
    if not isinstance(options, dict):
        return
    if options.get("skip"):
        annotations.skip = True
    metadata = options.get("metadata")
    if isinstance(metadata, dict):
        # Applied when the response starts, after the view ran: what the view added itself wins.
        own = annotations.metadata
        annotations.metadata = {**metadata, **own} if own else dict(metadata)
