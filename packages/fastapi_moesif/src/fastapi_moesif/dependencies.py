"""FastAPI dependencies through which a route tells Moesif who called it, or to leave the call out.

The middleware cannot know what the app's own authentication resolved; a dependency can. What
it sets lands in the call's :class:`~moesif_core.annotations.RequestAnnotations`, which win over
the ``IDENTIFY_*`` callbacks and the token in the ``Authorization`` header.

Example::

    from typing import Annotated
    from fastapi import Depends
    from fastapi_moesif import MoesifCall, identify_with, moesif_call

    @app.get("/items/{item_id}")
    async def item(item_id: int, moesif: Annotated[MoesifCall, Depends(moesif_call)]):
        moesif.user_id = "u-42"
        moesif.add_metadata({"plan": "gold"})

    current_user = identify_with(get_current_user, user_id=lambda user: user.id)

    @app.get("/me")
    async def me(user: Annotated[User, Depends(current_user)]):
        return user
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import HTTPConnection, Request

from moesif_core.annotations import RequestAnnotations, annotations_of
from moesif_core.log import warn_once

__all__ = ["MoesifCall", "identify_with", "moesif_call"]

Extractor = Callable[[Any], Any]


class MoesifCall:
    """What a route may say about the current call. Without a Moesif middleware, every setter does nothing."""

    __slots__ = ("_annotations",)

    def __init__(self, annotations: RequestAnnotations | None) -> None:
        self._annotations = annotations

    @property
    def captured(self) -> bool:
        """True when a Moesif middleware is capturing this call."""
        return self._annotations is not None

    @property
    def user_id(self) -> str | None:
        return None if self._annotations is None else self._annotations.user_id

    @user_id.setter
    def user_id(self, value: str | None) -> None:
        if self._annotations is not None:
            self._annotations.user_id = None if value is None else str(value)

    @property
    def company_id(self) -> str | None:
        return None if self._annotations is None else self._annotations.company_id

    @company_id.setter
    def company_id(self, value: str | None) -> None:
        if self._annotations is not None:
            self._annotations.company_id = None if value is None else str(value)

    @property
    def session_token(self) -> str | None:
        return None if self._annotations is None else self._annotations.session_token

    @session_token.setter
    def session_token(self, value: str | None) -> None:
        if self._annotations is not None:
            self._annotations.session_token = None if value is None else str(value)

    def add_metadata(self, values: dict[str, Any]) -> None:
        """Merge ``values`` into this call's metadata (merged over what ``GET_METADATA`` returns)."""
        if self._annotations is not None and isinstance(values, dict):
            self._annotations.add_metadata(values)

    def skip(self) -> None:
        """Leave this call out of Moesif (counted as skipped)."""
        if self._annotations is not None:
            self._annotations.skip = True


def moesif_call(request: HTTPConnection) -> MoesifCall:
    """Dependency: the :class:`MoesifCall` of the current request, for ``Depends(moesif_call)``."""
    annotations = annotations_of(request.scope)
    if annotations is None:
        warn_once(
            "fastapi-dependency-unwired",
            "moesif: a route asked for moesif_call but no MoesifMiddleware wraps this app; what it sets is ignored",
        )
    return MoesifCall(annotations)


async def _extract(name: str, extractor: Extractor | None, value: Any) -> Any:
    if extractor is None:
        return None
    try:
        result = extractor(value)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the user's code: the route must still run
        warn_once(f"fastapi-extract:{name}", "moesif: the %s extractor raised %s: %s; left out", name, type(exc).__name__, exc)
        return None
    return result


def identify_with(
    dependency: Callable[..., Any],
    *,
    user_id: Extractor | None = None,
    company_id: Extractor | None = None,
    session_token: Extractor | None = None,
    metadata: Extractor | None = None,
) -> Callable[..., Awaitable[Any]]:
    """Wrap the app's own dependency (e.g. ``get_current_user``) so that its result identifies the call.

    The returned dependency resolves ``dependency`` as FastAPI would, gives its result to each
    extractor (plain or ``async``; one that raises or returns ``None`` sets nothing) and returns
    the result unchanged, so routes use it in place of the original. Create it once at import
    time: FastAPI caches a dependency per request by identity.
    """
    from fastapi import Depends  # FastAPI is an optional extra; plain Starlette apps never get here

    resolved = Depends(dependency)

    async def identified(request: Request, value: Any = resolved) -> Any:
        call = moesif_call(request)
        if not call.captured:
            return value
        found = await _extract("user_id", user_id, value)
        if found is not None:
            call.user_id = found
        found = await _extract("company_id", company_id, value)
        if found is not None:
            call.company_id = found
        found = await _extract("session_token", session_token, value)
        if found is not None:
            call.session_token = found
        found = await _extract("metadata", metadata, value)
        if isinstance(found, dict):
            call.add_metadata(found)
        return value

    identified.__name__ = f"identify_with_{getattr(dependency, '__name__', 'dependency')}"
    identified.__qualname__ = identified.__name__
    return identified
