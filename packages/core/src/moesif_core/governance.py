"""Governance rules: decide, before the app runs, whether a call is blocked or gets extra headers.

Rules come from ``GET /v1/rules``; cohort membership and merge-tag values from ``GET /v1/config``
(``user_rules`` / ``company_rules``). A :class:`Governor` is compiled once per config snapshot, so
the request path only runs precompiled regexes, and nothing at all when there are no rules.

Where the incumbents stop at the first non-matching cohort rule, raise ``KeyError`` on a rule id
missing from ``/v1/rules`` or on an unknown status code, this evaluates every applicable rule,
skips unknown ids, ignores malformed rules with one log line and accepts any status code.

Example::

    governor = Governor.compile(rules, config)
    decision = governor.evaluate(RequestFacts(verb="GET", route="/admin", ip="1.2.3.4", headers={}, user_id="u1"))
    if decision is not None and decision.blocked_by:
        ...  # answer decision.status / decision.headers / decision.body instead of calling the app
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .log import warn_once

__all__ = ["Decision", "Governor", "RequestFacts"]

UNKNOWN: Final = "UNKNOWN"
_MERGE_TAG: Final = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


@dataclass(slots=True)
class RequestFacts:
    """What rules can look at, gathered once per call before the app runs."""

    verb: str
    route: str
    ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None  # parsed JSON body, only when some rule looks at request.body.*
    user_id: str | None = None
    company_id: str | None = None


@dataclass(slots=True)
class Decision:
    """The merged outcome of every rule that applied: headers always, the block when one blocks."""

    headers: dict[str, str] = field(default_factory=dict)
    blocked_by: str | None = None
    status: int = 200
    body: Any = None


Condition = Callable[[RequestFacts], bool]


def _field_getter(path: str) -> Callable[[RequestFacts], Any]:
    if path == "request.verb":
        return lambda f: f.verb
    if path in {"request.ip", "request.ip_address"}:
        return lambda f: f.ip
    if path == "request.route":
        return lambda f: f.route
    if path.startswith("request.headers."):
        name = path[len("request.headers.") :].lower()
        return lambda f: f.headers.get(name)
    if path.startswith("request.body."):
        key = path[len("request.body.") :]
        return lambda f: f.body.get(key) if isinstance(f.body, dict) else None
    raise ValueError(f"unknown condition path {path!r}")


def _compile_condition(raw: Any) -> Condition:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("path"), str) or not isinstance(raw.get("value"), str):
        raise ValueError(f"a condition needs string 'path' and 'value', got {raw!r}")
    getter = _field_getter(raw["path"])
    pattern = re.compile(raw["value"])

    def matches(facts: RequestFacts) -> bool:
        value = getter(facts)
        if value is None or value == "":
            return False
        return pattern.search(value if isinstance(value, str) else str(value)) is not None

    return matches


def _compile_groups(raw: Any) -> tuple[tuple[Condition, ...], ...] | None:
    """Condition groups: ANDed within a group, ORed across groups; None (no groups) matches every call."""
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise ValueError("regex_config must be a list of condition groups")
    groups = []
    for group in raw:
        conditions = group.get("conditions") if isinstance(group, Mapping) else None
        if not isinstance(conditions, list):
            raise ValueError(f"a condition group needs a 'conditions' list, got {group!r}")
        if conditions:  # an empty group matches nothing, as in the Moesif rule editor
            groups.append(tuple(_compile_condition(c) for c in conditions))
    return tuple(groups)


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    kind: str  # "regex" | "user" | "company"
    block: bool
    applied_to_not_matching: bool
    applied_to_unidentified: bool
    groups: tuple[tuple[Condition, ...], ...] | None
    status: int
    headers: Mapping[str, Any]
    body: Any
    uses_body: bool

    def matches(self, facts: RequestFacts) -> bool:
        if self.groups is None:
            return True
        return any(all(cond(facts) for cond in group) for group in self.groups)

    @classmethod
    def compile(cls, raw: Any) -> Rule:
        if not isinstance(raw, Mapping):
            raise ValueError("a rule must be an object")
        rule_id = raw.get("_id")
        kind = raw.get("type")
        if not isinstance(rule_id, str) or not rule_id:
            raise ValueError("a rule needs an '_id'")
        if kind not in ("regex", "user", "company"):
            raise ValueError(f"rule {rule_id}: unknown type {kind!r}")
        response = raw.get("response") or {}
        if not isinstance(response, Mapping):
            raise ValueError(f"rule {rule_id}: 'response' must be an object")
        status = response.get("status", 200)
        try:
            status = int(status)
        except (TypeError, ValueError):
            raise ValueError(f"rule {rule_id}: response status {status!r} is not a number") from None
        if not 100 <= status <= 999:
            raise ValueError(f"rule {rule_id}: response status {status} is out of range")
        headers = response.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError(f"rule {rule_id}: response headers must be an object")
        regex_config = raw.get("regex_config")
        return cls(
            rule_id=rule_id,
            kind=kind,
            block=bool(raw.get("block", False)),
            applied_to_not_matching=raw.get("applied_to") == "not_matching",
            applied_to_unidentified=bool(raw.get("applied_to_unidentified", False)),
            groups=_compile_groups(regex_config),
            status=status,
            headers=headers,
            body=response.get("body"),
            uses_body="request.body." in repr(regex_config),
        )


def _fill_merge_tags(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "{{" not in value:
            return value
        return _MERGE_TAG.sub(lambda m: str(values.get(m.group(1), UNKNOWN)), value)
    if isinstance(value, dict):
        return {k: _fill_merge_tags(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_merge_tags(v, values) for v in value]
    return value


def _cohorts(raw: Any) -> dict[str, dict[str, Mapping[str, Any]]]:
    """``{"<entity>": [{"rules": id, "values": {...}}]}`` -> entity -> rule id -> merge-tag values."""
    result: dict[str, dict[str, Mapping[str, Any]]] = {}
    if not isinstance(raw, Mapping):
        return result
    for entity, entries in raw.items():
        if not isinstance(entries, list):
            continue
        memberships: dict[str, Mapping[str, Any]] = {}
        for entry in entries:
            if isinstance(entry, Mapping) and isinstance(entry.get("rules"), str):
                values = entry.get("values")
                memberships[entry["rules"]] = values if isinstance(values, Mapping) else {}
        result[str(entity)] = memberships
    return result


class Governor:
    """The rules of one config snapshot, compiled and split by kind."""

    __slots__ = ("company_cohorts", "company_rules", "needs_body", "needs_identity", "regex_rules", "user_cohorts", "user_rules")

    def __init__(self, rules: list[Rule], config: Mapping[str, Any]) -> None:
        self.regex_rules = [r for r in rules if r.kind == "regex"]
        self.company_rules = [r for r in rules if r.kind == "company"]
        self.user_rules = [r for r in rules if r.kind == "user"]
        self.user_cohorts = _cohorts(config.get("user_rules"))
        self.company_cohorts = _cohorts(config.get("company_rules"))
        self.needs_body = any(r.uses_body for r in rules)
        self.needs_identity = bool(self.company_rules or self.user_rules)

    @classmethod
    def compile(cls, raw_rules: Any, raw_config: Any) -> Governor | None:
        """A governor for these rules, or None when there is nothing to enforce (the common, free case)."""
        if not isinstance(raw_rules, list) or not raw_rules:
            return None
        rules = []
        for raw in raw_rules:
            try:
                rules.append(Rule.compile(raw))
            except (ValueError, re.error) as exc:
                rule_id = raw.get("_id") if isinstance(raw, Mapping) else None
                warn_once(f"governance-rule:{rule_id}", "moesif: governance rule %s ignored: %s", rule_id, exc)
        if not rules:
            return None
        return cls(rules, raw_config if isinstance(raw_config, Mapping) else {})

    def evaluate(self, facts: RequestFacts) -> Decision | None:
        """Apply regex rules, then company rules, then user rules; None when none applied."""
        decision: Decision | None = None
        for rule in self.regex_rules:
            if rule.matches(facts):
                decision = _apply(decision, rule, {})
        decision = self._apply_entity_rules(decision, self.company_rules, self.company_cohorts, facts.company_id, facts)
        return self._apply_entity_rules(decision, self.user_rules, self.user_cohorts, facts.user_id, facts)

    @staticmethod
    def _apply_entity_rules(
        decision: Decision | None,
        rules: list[Rule],
        cohorts: dict[str, dict[str, Mapping[str, Any]]],
        entity_id: str | None,
        facts: RequestFacts,
    ) -> Decision | None:
        if not rules:
            return decision
        if entity_id is None:
            for rule in rules:
                if rule.applied_to_unidentified and rule.matches(facts):
                    decision = _apply(decision, rule, {})
            return decision
        memberships = cohorts.get(entity_id, {})
        for rule in rules:
            in_cohort = rule.rule_id in memberships
            if in_cohort == rule.applied_to_not_matching:
                continue
            if rule.matches(facts):
                decision = _apply(decision, rule, memberships.get(rule.rule_id, {}))
        return decision


def _apply(decision: Decision | None, rule: Rule, values: Mapping[str, Any]) -> Decision:
    if decision is None:
        decision = Decision()
    for name, value in rule.headers.items():
        decision.headers[str(name)] = str(_fill_merge_tags(value, values))
    if rule.block:
        decision.blocked_by = rule.rule_id
        decision.status = rule.status
        decision.body = _fill_merge_tags(rule.body, values)
    return decision
