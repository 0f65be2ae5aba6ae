"""Whether moesif-core may load its optional C extensions, decided in one place.

Each module with a native half (:mod:`~moesif_core.json_scan`, :mod:`~moesif_core.request_path`,
:mod:`~moesif_core.headers`, :mod:`~moesif_core.event_json`) loads it with :func:`native_part`
inside ``try`` and falls back to its Python version on ``ImportError``: an extension that was
never built (no compiler at install time, another interpreter), one turned off with
``MOESIF_PURE_PYTHON=1`` (to rule the C parts out when chasing a problem) and one built from
other sources than the Python beside it look the same. The last happens in a checkout after a
``git pull`` until the extensions are rebuilt (``hatch run native``): calling a stale build
with the new arguments would fail every import of moesif-core, and so the app.

Example::

    try:
        _native = native_part("_headers", 1).normalize
    except ImportError:
        _native = None
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from .log import warn_once

__all__ = ["native_part", "refuse_if_pure_python"]


def refuse_if_pure_python() -> None:
    """Raise ImportError when ``MOESIF_PURE_PYTHON`` is set, as a missing extension would."""
    if os.environ.get("MOESIF_PURE_PYTHON"):
        raise ImportError("MOESIF_PURE_PYTHON is set")


def native_part(name: str, api: int) -> ModuleType:
    """The extension ``moesif_core.<name>`` if it gives the interface ``api``; ImportError otherwise.

    Each extension states the interface it was built for (its ``API`` constant, raised with any
    change its Python module must match).
    """
    refuse_if_pure_python()
    module = importlib.import_module(f"{__package__}.{name}")
    built = getattr(module, "API", None)
    if built != api:
        warn_once(
            f"native-api-{name}",
            "moesif: %s.%s was built from other sources (interface %s, this code needs %s); using the "
            "Python version: rebuild it (reinstall moesif-core, or run `hatch run native` in a checkout)",
            __package__,
            name,
            built,
            api,
        )
        raise ImportError(f"{__package__}.{name} gives interface {built}, not {api}")
    return module
