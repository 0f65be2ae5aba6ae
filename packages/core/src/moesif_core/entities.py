"""Users, companies and subscriptions: validated in the caller, delivered in the background or now.

The incumbents post these synchronously in the caller's thread and swallow errors. Here a bad
profile fails loudly in the caller (it is a programming error: ``ValueError``/``TypeError``
naming the field and, in a batch, the position), and delivery by default goes through the
agent's queue with the sender's retries, never blocking. ``wait=True`` sends now and returns a
:class:`~moesif_core.entity_delivery.DeliveryResult`; the ``a``-prefixed variants do that in a
thread so an event loop is never blocked.

Profiles may be dicts, JSON text holding an object, or objects with ``to_dictionary()`` (the
``moesifapi`` ``UserModel``/``CompanyModel`` the incumbents accept). ``datetime`` values become
ISO 8601 text.

Example::

    middleware.update_user({"user_id": "u1", "metadata": {"plan": "pro"}})          # queued, True
    result = middleware.update_company({"company_id": "c1"}, wait=True)             # DeliveryResult
    result = await middleware.aupdate_users_batch([{"user_id": "u1"}, {"user_id": "u2"}])
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

import orjson

from .entity_delivery import DeliveryResult, deliver_now

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["DeliveryResult", "EntityApi", "validate_company", "validate_subscription", "validate_user"]

_USER_FIELDS = frozenset(
    {"user_id", "company_id", "modified_time", "ip_address", "session_token", "user_agent_string", "metadata", "campaign"}
)
_COMPANY_FIELDS = frozenset(
    {"company_id", "company_domain", "modified_time", "ip_address", "session_token", "metadata", "campaign"}
)
_SUBSCRIPTION_FIELDS = frozenset(
    {"subscription_id", "company_id", "current_period_start", "current_period_end", "status", "metadata"}
)
_CAMPAIGN_FIELDS = frozenset(
    {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "referring_domain", "gclid"}
)
_ALSO_REQUIRED = {"subscription": ("company_id",)}
_TIME_FIELDS = frozenset({"modified_time", "current_period_start", "current_period_end"})


def _as_dict(kind: str, id_field: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes, bytearray)):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"a {kind} given as text must be a JSON object with {id_field!r}; it is not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise TypeError(f"a {kind} given as JSON must be an object with {id_field!r}, got a JSON {type(parsed).__name__}")
        return parsed
    to_dictionary = getattr(value, "to_dictionary", None)
    if callable(to_dictionary):  # a moesifapi model object
        converted = to_dictionary()
        if isinstance(converted, Mapping):
            return {key: item for key, item in converted.items() if item is not None}
    raise TypeError(f"a {kind} must be a dict with at least {id_field!r}, got {type(value).__name__}")


def _validate(kind: str, id_field: str, fields: frozenset[str], value: Any) -> dict[str, Any]:
    entity = _as_dict(kind, id_field, value)
    ident = entity.get(id_field)
    if ident is None or isinstance(ident, bool) or (isinstance(ident, str) and not ident.strip()):
        raise ValueError(f"a {kind} needs a non-empty {id_field!r}: got keys {sorted(map(str, entity))}")
    if not isinstance(ident, (str, int)):
        raise TypeError(f"{kind} {id_field!r} must be a string (or an int), got {type(ident).__name__}")
    entity[id_field] = str(ident)
    for also in _ALSO_REQUIRED.get(kind, ()):
        value = entity.get(also)
        if value is None or isinstance(value, bool) or not str(value).strip():
            raise ValueError(f"a {kind} needs a non-empty {also!r} too: got keys {sorted(map(str, entity))}")
        entity[also] = str(value)
    unknown = set(entity) - fields
    if unknown:
        raise ValueError(f"unknown {kind} field(s) {sorted(map(str, unknown))}; known: {sorted(fields)}")
    metadata = entity.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"{kind} 'metadata' must be a dict, got {type(metadata).__name__}")
    campaign = entity.get("campaign")
    if campaign is not None:
        campaign = _as_campaign(kind, campaign)
        entity["campaign"] = campaign
    for key in _TIME_FIELDS & entity.keys():
        if isinstance(entity[key], (datetime.datetime, datetime.date)):
            entity[key] = entity[key].isoformat()
    return entity


def _as_campaign(kind: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        to_dictionary = getattr(value, "to_dictionary", None)
        value = to_dictionary() if callable(to_dictionary) else value
    if not isinstance(value, Mapping):
        raise TypeError(f"{kind} 'campaign' must be a dict, got {type(value).__name__}")
    campaign = {key: item for key, item in value.items() if item is not None}
    unknown = set(campaign) - _CAMPAIGN_FIELDS
    if unknown:
        raise ValueError(f"unknown {kind} campaign field(s) {sorted(map(str, unknown))}; known: {sorted(_CAMPAIGN_FIELDS)}")
    return campaign


def validate_user(user: Any) -> dict[str, Any]:
    """A user as the Collector API takes it; raises ValueError/TypeError naming the problem."""
    return _validate("user", "user_id", _USER_FIELDS, user)


def validate_company(company: Any) -> dict[str, Any]:
    """A company as the Collector API takes it; raises ValueError/TypeError naming the problem."""
    return _validate("company", "company_id", _COMPANY_FIELDS, company)


def validate_subscription(subscription: Any) -> dict[str, Any]:
    """A subscription (``subscription_id`` and ``company_id`` required) as the Collector API takes it; raises ValueError/TypeError."""
    return _validate("subscription", "subscription_id", _SUBSCRIPTION_FIELDS, subscription)


_VALIDATORS = {"users": validate_user, "companies": validate_company, "subscriptions": validate_subscription}
_SINGULAR = {
    "users": ("user", "update_user"),
    "companies": ("company", "update_company"),
    "subscriptions": ("subscription", "update_subscription"),
}


def validate_batch(kind: str, items: Any) -> list[dict[str, Any]]:
    """Every item of a batch validated; errors name the item's position (``users[3]: ...``)."""
    singular, single_method = _SINGULAR[kind]
    if isinstance(items, (Mapping, str, bytes, bytearray)) or not isinstance(items, Iterable):
        raise TypeError(
            f"a batch of {kind} must be a list of {singular} dicts, got {type(items).__name__}"
            f" (for one {singular}, use {single_method})"
        )
    validate = _VALIDATORS[kind]
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            out.append(validate(item))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{kind}[{index}]: {exc}") from None
    return out


class EntityApi:
    """``update_user`` and friends, shared by every middleware object and :class:`~moesif_core.client.MoesifClient`.

    Each method validates first (raising ``ValueError``/``TypeError`` on a bad profile), then
    either queues the post (default: returns True, or False when the queue had no room) or, with
    ``wait=True``, posts now with the same retries and returns a ``DeliveryResult``; ``timeout``
    bounds that wait in seconds. The ``a``-prefixed coroutines post now from a worker thread.
    """

    agent: Agent

    # -- users --------------------------------------------------------------------------------

    @overload
    def update_user(self, user: Any, *, wait: Literal[False] = False, timeout: float | None = None) -> bool: ...
    @overload
    def update_user(self, user: Any, *, wait: Literal[True], timeout: float | None = None) -> DeliveryResult: ...
    def update_user(self, user: Any, *, wait: bool = False, timeout: float | None = None) -> bool | DeliveryResult:
        """Create or update one user profile (``user_id`` required)."""
        return self._deliver("users", validate_user(user), wait, timeout)

    @overload
    def update_users_batch(self, users: Iterable[Any], *, wait: Literal[False] = False, timeout: float | None = None) -> bool: ...
    @overload
    def update_users_batch(
        self, users: Iterable[Any], *, wait: Literal[True], timeout: float | None = None
    ) -> DeliveryResult: ...
    def update_users_batch(
        self, users: Iterable[Any], *, wait: bool = False, timeout: float | None = None
    ) -> bool | DeliveryResult:
        """Create or update several user profiles in one post."""
        return self._deliver("users/batch", validate_batch("users", users), wait, timeout)

    async def aupdate_user(self, user: Any, *, timeout: float | None = None) -> DeliveryResult:
        """:meth:`update_user` with ``wait=True``, without blocking the event loop."""
        return await self._adeliver("users", validate_user(user), timeout)

    async def aupdate_users_batch(self, users: Iterable[Any], *, timeout: float | None = None) -> DeliveryResult:
        """:meth:`update_users_batch` with ``wait=True``, without blocking the event loop."""
        return await self._adeliver("users/batch", validate_batch("users", users), timeout)

    # -- companies ----------------------------------------------------------------------------

    @overload
    def update_company(self, company: Any, *, wait: Literal[False] = False, timeout: float | None = None) -> bool: ...
    @overload
    def update_company(self, company: Any, *, wait: Literal[True], timeout: float | None = None) -> DeliveryResult: ...
    def update_company(self, company: Any, *, wait: bool = False, timeout: float | None = None) -> bool | DeliveryResult:
        """Create or update one company profile (``company_id`` required)."""
        return self._deliver("companies", validate_company(company), wait, timeout)

    @overload
    def update_companies_batch(
        self, companies: Iterable[Any], *, wait: Literal[False] = False, timeout: float | None = None
    ) -> bool: ...
    @overload
    def update_companies_batch(
        self, companies: Iterable[Any], *, wait: Literal[True], timeout: float | None = None
    ) -> DeliveryResult: ...
    def update_companies_batch(
        self, companies: Iterable[Any], *, wait: bool = False, timeout: float | None = None
    ) -> bool | DeliveryResult:
        """Create or update several company profiles in one post."""
        return self._deliver("companies/batch", validate_batch("companies", companies), wait, timeout)

    async def aupdate_company(self, company: Any, *, timeout: float | None = None) -> DeliveryResult:
        """:meth:`update_company` with ``wait=True``, without blocking the event loop."""
        return await self._adeliver("companies", validate_company(company), timeout)

    async def aupdate_companies_batch(self, companies: Iterable[Any], *, timeout: float | None = None) -> DeliveryResult:
        """:meth:`update_companies_batch` with ``wait=True``, without blocking the event loop."""
        return await self._adeliver("companies/batch", validate_batch("companies", companies), timeout)

    # -- subscriptions ------------------------------------------------------------------------

    @overload
    def update_subscription(self, subscription: Any, *, wait: Literal[False] = False, timeout: float | None = None) -> bool: ...
    @overload
    def update_subscription(self, subscription: Any, *, wait: Literal[True], timeout: float | None = None) -> DeliveryResult: ...
    def update_subscription(
        self, subscription: Any, *, wait: bool = False, timeout: float | None = None
    ) -> bool | DeliveryResult:
        """Create or update one subscription (``subscription_id`` and ``company_id`` required)."""
        return self._deliver("subscriptions", validate_subscription(subscription), wait, timeout)

    @overload
    def update_subscriptions_batch(
        self, subscriptions: Iterable[Any], *, wait: Literal[False] = False, timeout: float | None = None
    ) -> bool: ...
    @overload
    def update_subscriptions_batch(
        self, subscriptions: Iterable[Any], *, wait: Literal[True], timeout: float | None = None
    ) -> DeliveryResult: ...
    def update_subscriptions_batch(
        self, subscriptions: Iterable[Any], *, wait: bool = False, timeout: float | None = None
    ) -> bool | DeliveryResult:
        """Create or update several subscriptions in one post."""
        return self._deliver("subscriptions/batch", validate_batch("subscriptions", subscriptions), wait, timeout)

    async def aupdate_subscription(self, subscription: Any, *, timeout: float | None = None) -> DeliveryResult:
        """:meth:`update_subscription` with ``wait=True``, without blocking the event loop."""
        return await self._adeliver("subscriptions", validate_subscription(subscription), timeout)

    async def aupdate_subscriptions_batch(self, subscriptions: Iterable[Any], *, timeout: float | None = None) -> DeliveryResult:
        """:meth:`update_subscriptions_batch` with ``wait=True``, without blocking the event loop."""
        return await self._adeliver("subscriptions/batch", validate_batch("subscriptions", subscriptions), timeout)

    # -- delivery -----------------------------------------------------------------------------

    def _deliver(self, kind: str, payload: Any, wait: bool, timeout: float | None) -> bool | DeliveryResult:
        if wait:
            return self._send_now(kind, payload, timeout)
        if isinstance(payload, list) and not payload:
            return True  # an empty batch: nothing to send
        return self.agent.submit_entity(kind, payload)

    async def _adeliver(self, kind: str, payload: Any, timeout: float | None) -> DeliveryResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._send_now, kind, payload, timeout))

    def _send_now(self, kind: str, payload: Any, timeout: float | None) -> DeliveryResult:
        if isinstance(payload, list) and not payload:
            return DeliveryResult(True, None, 0)
        from ._version import __version__
        from .sender import encode

        agent = self.agent
        user_agent = getattr(agent, "user_agent", None) or f"moesif-core/{__version__}"
        result = deliver_now(agent.settings, kind, encode(payload), user_agent=user_agent, timeout=timeout)
        if result.ok:
            agent.count("entities_sent")
        return result
