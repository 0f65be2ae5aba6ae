"""Per-request notes that framework glue and route code leave for the capture layer.

Integrations know things the generic WSGI/ASGI layer cannot see (the route template, a view's
"do not log me" decorator, the user a FastAPI dependency resolved). They write them on the
object stored under ``environ["moesif"]`` (WSGI) or ``scope["moesif"]`` (ASGI); the capture
layer reads it when the response starts and when the call ends. It is one mutable object so
that frameworks which copy the environ or scope dict still share it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .record import RawExchange

__all__ = ["KEY", "RequestAnnotations", "annotations_of"]

KEY: Final = "moesif"


class RequestAnnotations:
    """What the app said about this call; ``None`` means "not said", so callbacks and tokens decide."""

    __slots__ = ("company_id", "metadata", "route", "session_token", "skip", "user_id")

    def __init__(self) -> None:
        self.skip: bool = False
        self.user_id: str | None = None
        self.company_id: str | None = None
        self.session_token: str | None = None
        self.metadata: dict[str, Any] | None = None
        self.route: str | None = None

    def add_metadata(self, values: dict[str, Any]) -> None:
        """Merge ``values`` into this call's metadata (later keys win)."""
        if self.metadata is None:
            self.metadata = dict(values)
        else:
            self.metadata.update(values)

    def apply_to(self, record: RawExchange) -> None:
        """Put what the app said on ``record``, for calls where no callback runs."""
        record.user_id = self.user_id
        record.company_id = self.company_id
        record.session_token = self.session_token
        record.metadata = self.metadata
        record.route = self.route

    def merged_metadata(self, from_callback: Any) -> Any:
        """GET_METADATA's answer with this call's own metadata on top (the call's keys win)."""
        if not self.metadata:
            return from_callback
        return {**from_callback, **self.metadata} if isinstance(from_callback, dict) else dict(self.metadata)


def annotations_of(environ_or_scope: MutableMapping[str, Any]) -> RequestAnnotations | None:
    """The annotations of a call being captured, or None when no Moesif middleware wraps it."""
    found = environ_or_scope.get(KEY)
    return found if isinstance(found, RequestAnnotations) else None
