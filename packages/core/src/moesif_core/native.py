"""Whether moesif-core may load its optional C extensions, decided in one place.

Each module with a native half (:mod:`~moesif_core.json_scan`, :mod:`~moesif_core.request_path`,
:mod:`~moesif_core.headers`, :mod:`~moesif_core.event_json`) imports it inside ``try`` after
:func:`refuse_if_pure_python`, and falls back to its Python version on ``ImportError``: an
extension that was never built (no compiler at install time, another interpreter) and one turned
off with ``MOESIF_PURE_PYTHON=1`` (to rule the C parts out when chasing a problem) look the same.

Example::

    try:
        refuse_if_pure_python()
        from ._headers import normalize as _native
    except ImportError:
        _native = None
"""

from __future__ import annotations

import os

__all__ = ["refuse_if_pure_python"]


def refuse_if_pure_python() -> None:
    """Raise ImportError when ``MOESIF_PURE_PYTHON`` is set, as a missing extension would."""
    if os.environ.get("MOESIF_PURE_PYTHON"):
        raise ImportError("MOESIF_PURE_PYTHON is set")
