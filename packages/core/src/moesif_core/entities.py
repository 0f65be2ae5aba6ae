"""Users and companies: validated here, sent by the agent's background sender with its retries.

The incumbents post these synchronously in the caller's thread and swallow errors; here a bad
dict fails loudly in the caller (it is a programming error), and delivery never blocks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["EntityApi", "validate_company", "validate_user"]

_USER_FIELDS = frozenset(
    {"user_id", "company_id", "modified_time", "ip_address", "session_token", "user_agent_string", "metadata", "campaign"}
)
_COMPANY_FIELDS = frozenset(
    {"company_id", "company_domain", "modified_time", "ip_address", "session_token", "metadata", "campaign"}
)
_SUBSCRIPTION_FIELDS = frozenset(
    {"subscription_id", "company_id", "current_period_start", "current_period_end", "status", "metadata"}
)


def _validate(kind: str, id_field: str, fields: frozenset[str], value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"a {kind} must be a dict with at least {id_field!r}, got {type(value).__name__}")
    entity = dict(value)
    ident = entity.get(id_field)
    if ident is None or (isinstance(ident, str) and not ident.strip()):
        raise ValueError(f"a {kind} needs a non-empty {id_field!r}: got keys {sorted(entity)}")
    entity[id_field] = str(ident)
    unknown = set(entity) - fields
    if unknown:
        raise ValueError(f"unknown {kind} field(s) {sorted(unknown)}; known: {sorted(fields)}")
    metadata = entity.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"{kind} 'metadata' must be a dict, got {type(metadata).__name__}")
    return entity


def validate_user(user: Any) -> dict[str, Any]:
    """A user dict as the Collector API takes it; raises ValueError/TypeError naming the problem."""
    return _validate("user", "user_id", _USER_FIELDS, user)


def validate_company(company: Any) -> dict[str, Any]:
    """A company dict as the Collector API takes it; raises ValueError/TypeError naming the problem."""
    return _validate("company", "company_id", _COMPANY_FIELDS, company)


def validate_subscription(subscription: Any) -> dict[str, Any]:
    return _validate("subscription", "subscription_id", _SUBSCRIPTION_FIELDS, subscription)


class EntityApi:
    """``update_user`` and friends, shared by every middleware object (they all have an ``agent``)."""

    agent: Agent

    def update_user(self, user: Mapping[str, Any]) -> bool:
        """Queue one user profile for delivery; False if the queue had no room."""
        return self.agent.submit_entity("users", validate_user(user))

    def update_users_batch(self, users: Iterable[Mapping[str, Any]]) -> bool:
        """Queue several user profiles for delivery in one post."""
        return self.agent.submit_entity("users/batch", [validate_user(u) for u in users])

    def update_company(self, company: Mapping[str, Any]) -> bool:
        """Queue one company profile for delivery; False if the queue had no room."""
        return self.agent.submit_entity("companies", validate_company(company))

    def update_companies_batch(self, companies: Iterable[Mapping[str, Any]]) -> bool:
        """Queue several company profiles for delivery in one post."""
        return self.agent.submit_entity("companies/batch", [validate_company(c) for c in companies])

    def update_subscription(self, subscription: Mapping[str, Any]) -> bool:
        """Queue one subscription for delivery."""
        return self.agent.submit_entity("subscriptions", validate_subscription(subscription))

    def update_subscriptions_batch(self, subscriptions: Iterable[Mapping[str, Any]]) -> bool:
        """Queue several subscriptions for delivery in one post."""
        return self.agent.submit_entity("subscriptions/batch", [validate_subscription(s) for s in subscriptions])
