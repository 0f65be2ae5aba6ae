"""User and company ids from the token in the authorization header, when no callback named them.

``Bearer <jwt>`` gives the claim ``AUTHORIZATION_USER_ID_FIELD`` of the JWT payload (base64url,
padding restored: the incumbents used the standard alphabet and lost every token whose payload
contains ``-`` or ``_``); ``Basic <b64>`` gives the username; anything else is tried as a bare JWT.
No signature is verified: this is analytics, not authentication. Malformed tokens give ``None``,
never an exception.

Cheap enough for the request path (sampling and governance need the id before the app runs):
the same token arrives again and again, so results are cached per header value.

Example::

    identify_from_headers({"authorization": "Bearer eyJ...x.eyJzdWIiOiJ1LTEifQ.sig"}, settings)
    # ("u-1", None)
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from .log import logger
from .settings import Settings

__all__ = ["Identifier", "identify_from_headers", "jwt_claims"]

_CACHE_LIMIT: Final = 1024
_MAX_TOKEN_CHARS: Final = 16384  # a header this long is not a token worth decoding on every request

Identity = tuple[str | None, str | None]
_NOBODY: Final[Identity] = (None, None)


def _b64decode(segment: str, urlsafe: bool) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    if urlsafe:
        # urlsafe_b64decode also accepts the standard alphabet's '+' and '/': both appear in the wild.
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded)


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (``header.payload.signature``) as a dict, unverified; None if it is not one."""
    try:
        parts = token.strip().split(".")
        if len(parts) < 2 or not parts[1]:
            return None
        claims = orjson.loads(_b64decode(parts[1], urlsafe=True))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _lookup(claims: Any, key: str) -> Any:
    """``claims[key]``, the key compared case-insensitively when there is no exact match."""
    if not isinstance(claims, dict):
        return None
    if key in claims:
        return claims[key]
    lowered = key.lower()
    for name, value in claims.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _claim(claims: dict[str, Any], path: str, dotted: tuple[str, ...]) -> Any:
    # A whole name first: namespaced claims such as "https://example.com/user.id" contain dots.
    value = _lookup(claims, path)
    if value is None and len(dotted) > 1:
        value = claims
        for part in dotted:
            value = _lookup(value, part)
            if value is None:
                break
    return value


def _as_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


class Identifier:
    """Per-settings identification from headers; build once, call :meth:`identify` from any thread."""

    __slots__ = ("_cache", "_company_dotted", "_company_field", "_debug", "_header_names", "_user_dotted", "_user_field")

    def __init__(
        self,
        header_names: Iterable[str] = ("authorization",),
        user_id_field: str = "sub",
        company_id_field: str | None = None,
        *,
        debug: bool = False,
    ) -> None:
        self._header_names = tuple(name.strip().lower() for name in header_names if name and name.strip())
        self._user_field = user_id_field or "sub"
        self._user_dotted = tuple(self._user_field.split("."))
        self._company_field = company_id_field or None
        self._company_dotted = tuple(company_id_field.split(".")) if company_id_field else ()
        self._debug = debug
        self._cache: dict[str, Identity] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Identifier:
        return cls(
            settings.authorization_header_name,
            settings.authorization_user_id_field,
            settings.authorization_company_id_field,
            debug=settings.debug,
        )

    @property
    def header_names(self) -> tuple[str, ...]:
        """The lower-case headers :meth:`identify` reads, in order (the native event writer asks first)."""
        return self._header_names

    def identify(self, headers: Mapping[str, str]) -> Identity:
        """``(user_id, company_id)`` from lower-case ``headers``; ``(None, None)`` when there is none. Never raises."""
        try:
            for name in self._header_names:
                value = headers.get(name)
                if value:
                    break
            else:
                if self._debug:
                    logger.debug("moesif: no user id: none of the headers %s is present", list(self._header_names))
                return _NOBODY
            cached = self._cache.get(value)
            if cached is not None:
                self._explain("user id %s, as for this %s header before", "found" if cached[0] else "not found", name)
                return cached
            identity = self._from_value(value, name)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[value] = identity
            return identity
        except Exception:  # a non-str header value, or worse: no id, never an exception
            return _NOBODY

    def _from_value(self, value: str, header: str) -> Identity:
        if len(value) > _MAX_TOKEN_CHARS:
            self._explain("no user id: the %s header is too long to be a token", header)
            return _NOBODY
        credential = value.split(",", 1)[0].strip()
        scheme, _, rest = credential.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._from_jwt(rest.strip(), header, "Bearer token")
        if scheme == "basic":
            try:
                decoded = _b64decode(rest.strip(), urlsafe=False).decode("utf-8")
            except (ValueError, binascii.Error):
                self._explain("no user id: the Basic credentials in the %s header are not base64 of UTF-8", header)
                return _NOBODY
            user = decoded.split(":", 1)[0] or None
            self._explain(
                "user id %s from the username of the Basic credentials in the %s header", "found" if user else "empty", header
            )
            return (user, None)
        identity = self._from_jwt(credential, header, "bare token")
        if identity == _NOBODY and rest:
            # "<scheme> <jwt>" with a scheme other than Bearer, e.g. "JWT eyJ...".
            identity = self._from_jwt(rest.strip(), header, f"{scheme!r} token")
        return identity

    def _from_jwt(self, token: str, header: str, kind: str) -> Identity:
        claims = jwt_claims(token)
        if claims is None:
            self._explain("no user id: the %s in the %s header is not a JWT with a JSON object payload", kind, header)
            return _NOBODY
        user = _as_id(_claim(claims, self._user_field, self._user_dotted))
        company = _as_id(_claim(claims, self._company_field, self._company_dotted)) if self._company_field else None
        if user is None:
            self._explain("no user id: the JWT (%s in the %s header) has no usable claim %r", kind, header, self._user_field)
        else:
            self._explain("user id from claim %r of the JWT (%s in the %s header)", self._user_field, kind, header)
        return (user, company)

    def _explain(self, message: str, *args: object) -> None:
        # Names of headers and claims only, never a token or an id: debug logs get shared.
        if self._debug and logger.isEnabledFor(logging.DEBUG):
            logger.debug("moesif: " + message, *args)


_identifiers: dict[int, tuple[Settings, Identifier]] = {}


def identify_from_headers(headers: Mapping[str, str], settings: Settings) -> Identity:
    """``(user_id, company_id)`` from the token in lower-case ``headers``, per ``settings``; never raises.

    Keeps one :class:`Identifier` per settings object, so the request path pays a dict lookup and,
    for a token seen before, another.
    """
    entry = _identifiers.get(id(settings))
    if entry is None or entry[0] is not settings:
        entry = (settings, Identifier.from_settings(settings))
        if len(_identifiers) >= 64:
            _identifiers.clear()
        _identifiers[id(settings)] = entry
    return entry[1].identify(headers)
