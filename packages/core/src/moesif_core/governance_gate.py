"""Where governance meets the request path: the governor of the current config, and the facts it needs.

Shared by the WSGI and ASGI capture layers, which only differ in how they read a body ahead and
how they answer a blocked call. With no rules served, :meth:`GovernanceGate.current` is one
attribute comparison per call.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson

from .client_ip import client_ip
from .governance import Decision, Governor, RequestFacts
from .headers import normalize_headers
from .identify import identify_from_headers
from .log import warn_once
from .record import RawExchange

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["GovernanceGate", "blocked_response_body", "facts_of", "status_line"]


class GovernanceGate:
    """The governor compiled from the agent's current config snapshot, recompiled when it changes."""

    __slots__ = ("_agent", "_config", "_governor")

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._config: object = None
        self._governor: Governor | None = None

    def current(self) -> Governor | None:
        try:
            config = self._agent.config
        except AttributeError:  # an agent stand-in without remote config
            return None
        if config is not self._config:
            try:
                self._governor = Governor.compile(list(config.raw_rules), config.raw_config)
            except Exception as exc:
                warn_once("governance-compile", "moesif: governance rules could not be used (%s: %s)", type(exc).__name__, exc)
                self._governor = None
            self._config = config
        return self._governor


def facts_of(
    record: RawExchange,
    governor: Governor,
    body: bytes | None,
    user_id: Any,
    company_id: Any,
    settings: Any,
) -> tuple[RequestFacts, dict[str, str]]:
    """The facts rules look at; also returns the normalised request headers for reuse."""
    headers = normalize_headers(record.request_headers, record.request_header_style)
    if governor.needs_identity and (user_id is None or company_id is None):
        token_user, token_company = identify_from_headers(headers, settings)
        user_id = token_user if user_id is None else user_id
        company_id = token_company if company_id is None else company_id
    parsed: Any = None
    if body and governor.needs_body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
    route = record.root_path + record.path
    if record.query_string:
        route = f"{route}?{record.query_string}"
    facts = RequestFacts(
        verb=record.method,
        route=route,
        ip=client_ip(headers, record.client_addr),
        headers=headers,
        body=parsed,
        user_id=None if user_id is None else str(user_id),
        company_id=None if company_id is None else str(company_id),
    )
    return facts, headers


def blocked_response_body(decision: Decision) -> bytes:
    """The body a blocked call gets: the rule's JSON body (a string body is sent as JSON too)."""
    if decision.body is None:
        return b""
    try:
        return orjson.dumps(decision.body, default=str)
    except TypeError:
        return orjson.dumps(str(decision.body))


def status_line(status: int) -> str:
    """A WSGI status line for any code a rule may name, including ones http.HTTPStatus does not know."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Blocked"
    return f"{status} {phrase}"


def merge_header_pairs(headers: list[tuple[str, str]], extra: dict[str, str]) -> list[tuple[str, str]]:
    """The app's headers with the rules' headers set on top (a rule's header replaces the app's)."""
    names = {name.lower() for name in extra}
    return [(k, v) for k, v in headers if k.lower() not in names] + list(extra.items())
