"""Per-route choices from Bottle's route config, and the current call's annotations.

Bottle flattens nested route config, so ``@app.get("/health", moesif={"skip": True})`` is read
back as ``route.config["moesif.skip"]`` and ``moesif={"metadata": {"team": "a"}}`` as
``route.config["moesif.metadata.team"]``. They are read once, when the plugin is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import bottle

from moesif_core.annotations import RequestAnnotations, annotations_of

__all__ = ["RouteOptions", "current_annotations", "route_options"]

SKIP_KEY: Final = "moesif.skip"
METADATA_PREFIX: Final = "moesif.metadata."
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """What a route's config asks of Moesif."""

    skip: bool = False
    metadata: dict[str, Any] | None = None


def _is_true(value: Any) -> bool:
    # Only an explicit yes: in Bottle 0.13 the route config also shows app-level keys, where a
    # ``moesif.skip`` could be the SKIP callback setting rather than a per-route flag.
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in _TRUE


def _metadata(config: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = [k for k in config if isinstance(k, str) and k.startswith(METADATA_PREFIX)]
    if not keys:
        return None
    metadata: dict[str, Any] = {}
    for key in keys:
        # Bottle 0.12 also keeps a namespace object for every inner level: only leaves are values.
        if any(other.startswith(key + ".") for other in keys):
            continue
        *parents, leaf = key[len(METADATA_PREFIX) :].split(".")
        node = metadata
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[leaf] = config[key]
    return metadata or None


def route_options(route: Any) -> RouteOptions:
    """The Moesif options of a ``bottle.Route``, from its config."""
    config = getattr(route, "config", None)
    if not isinstance(config, Mapping):
        return RouteOptions()
    return RouteOptions(skip=_is_true(config.get(SKIP_KEY)), metadata=_metadata(config))


def current_annotations() -> RequestAnnotations:
    """The current call's annotations: set ``.user_id``, ``.company_id``, ``.skip`` or ``add_metadata()``.

    Outside a captured request a detached object is returned, so route code never needs to check.

    Example::

        @app.get("/me")
        def me():
            current_annotations().user_id = session_user()
    """
    try:
        found = annotations_of(bottle.request.environ)
    except (RuntimeError, AttributeError, KeyError):  # no request bound to this thread
        found = None
    return found if found is not None else RequestAnnotations()
