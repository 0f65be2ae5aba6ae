"""What the component mends on Falcon's request so that the core's capture reads the call as Falcon does.

Falcon builds its request before any component runs: ``req.stream`` already holds the server's
``wsgi.input``, and ``req.headers`` may have consumed an ASGI scope's header iterable. Both the
direct path and the governance bridge start the core's record on the same environ or scope, then
call these.
"""

from __future__ import annotations

from typing import Any

__all__ = ["list_scope_headers", "point_stream_at_tee"]


def point_stream_at_tee(req: Any, original_input: Any) -> None:
    """After the core teed ``wsgi.input``, make ``req.stream`` read through the tee too."""
    teed_input = req.env.get("wsgi.input")
    if teed_input is not original_input:
        # bounded_stream and media read env["wsgi.input"] lazily; only req.stream was taken early.
        req.stream = teed_input


def list_scope_headers(req: Any) -> None:
    """Give the scope a header list the core can read, when Falcon consumed an iterable building ``req.headers``."""
    scope = req.scope
    if not isinstance(scope.get("headers"), (list, tuple)):  # falcon.testing uses iterators on purpose
        scope["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in req.headers.items()]
