"""Who calls the demo app and what the collector serves: users, companies, tokens, sampling and governance.

Everything the demo's story depends on is here, in one place, so the traffic, the printed summary
and the tests agree on it: which users exist and how they authenticate (JWTs with ``sub``/``org``
claims, or Basic auth), which companies they belong to, the sampling config (health checks are
not logged) and the governance rule (``DELETE /admin/...`` is blocked before the app runs).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "APPLICATION_ID",
    "BLOCK_RULE_ID",
    "COMPANIES",
    "SERVED_CONFIG",
    "SERVED_RULES",
    "USERS",
    "DemoUser",
    "basic_auth",
    "unsigned_jwt",
]

APPLICATION_ID: Final = "moesif-demo"
BLOCK_RULE_ID: Final = "block-admin-deletes"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped token with a made-up signature: the middleware reads claims and never verifies, nor does the demo app."""
    header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    return f"{header}.{_b64url(orjson.dumps(claims))}.{_b64url(b'demo-signature-not-verified')}"


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass(frozen=True, slots=True)
class DemoUser:
    """One caller: ``authorization`` is the header value it sends; ``weight`` how often it calls, relatively."""

    user_id: str
    company_id: str | None
    authorization: str
    weight: int
    name: str
    email: str


def _jwt_user(user_id: str, org: str, name: str, weight: int) -> DemoUser:
    token = unsigned_jwt({"sub": user_id, "org": org, "name": name, "iat": 1767225600, "exp": 4102444800})
    return DemoUser(user_id, org, f"Bearer {token}", weight, name, f"{user_id}@{org}.example")


USERS: Final[tuple[DemoUser, ...]] = (
    _jwt_user("alice", "acme", "Alice Archer", 6),
    _jwt_user("bob", "acme", "Bob Baker", 4),
    _jwt_user("carol", "globex", "Carol Chen", 3),
    _jwt_user("dave", "initech", "Dave Dorsey", 2),
    # A service account with Basic auth: identified by its username, no company.
    DemoUser("reporting-bot", None, basic_auth("reporting-bot", "s3cret"), 2, "Reporting bot", "ops@acme.example"),
)

COMPANIES: Final[tuple[dict[str, Any], ...]] = (
    {"company_id": "acme", "company_domain": "acme.example", "metadata": {"plan": "enterprise", "seats": 120}},
    {"company_id": "globex", "company_domain": "globex.example", "metadata": {"plan": "growth", "seats": 25}},
    {"company_id": "initech", "company_domain": "initech.example", "metadata": {"plan": "free", "seats": 3}},
)

# Served at /v1/config: keep everything except health checks (a regex entry at 0 %).
SERVED_CONFIG: Final[dict[str, Any]] = {
    "sample_rate": 100,
    "user_sample_rate": {},
    "company_sample_rate": {},
    "user_rules": {},
    "company_rules": {},
    "regex_config": [{"conditions": [{"path": "request.route", "value": "^/health$"}], "sample_rate": 0}],
}

# Served at /v1/rules: DELETE on anything under /admin is answered 403 by the middleware, never by the app.
SERVED_RULES: Final[list[dict[str, Any]]] = [
    {
        "_id": BLOCK_RULE_ID,
        "type": "regex",
        "block": True,
        "applied_to": "matching",
        "applied_to_unidentified": True,
        "regex_config": [
            {"conditions": [{"path": "request.verb", "value": "^DELETE$"}, {"path": "request.route", "value": "^/admin(/|$)"}]}
        ],
        "response": {
            "status": 403,
            "headers": {"X-Blocked-By": BLOCK_RULE_ID},
            "body": {"error": "admin deletions are disabled by a governance rule"},
        },
    }
]
