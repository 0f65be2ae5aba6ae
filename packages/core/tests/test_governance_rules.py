"""The governance rules engine, on rule sets shaped like the ones /v1/rules and /v1/config serve."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from moesif_core.governance import Governor, RequestFacts
from moesif_core.testing import governance_rule as rule


def facts(**kw: Any) -> RequestFacts:
    kw.setdefault("verb", "GET")
    kw.setdefault("route", "/")
    return RequestFacts(**kw)


def test_no_rules_compiles_to_nothing() -> None:
    assert Governor.compile([], {}) is None
    assert Governor.compile(None, None) is None


def test_regex_rule_blocks_a_route_and_leaves_others() -> None:
    gov = Governor.compile(
        [rule("r1", groups=[[("request.route", "^/admin"), ("request.verb", "POST|DELETE")]], body={"error": "admin is closed"})],
        {},
    )
    assert gov is not None
    blocked = gov.evaluate(facts(verb="DELETE", route="/admin/users"))
    assert blocked is not None
    assert (blocked.blocked_by, blocked.status, blocked.body) == ("r1", 403, {"error": "admin is closed"})
    assert gov.evaluate(facts(verb="GET", route="/admin/users")) is None  # AND within a group
    assert gov.evaluate(facts(verb="DELETE", route="/items")) is None


def test_condition_groups_are_ored() -> None:
    gov = Governor.compile([rule("r1", groups=[[("request.verb", "PUT")], [("request.headers.x-tier", "free")]])], {})
    assert gov is not None
    assert gov.evaluate(facts(verb="PUT")) is not None
    assert gov.evaluate(facts(headers={"x-tier": "free"})) is not None
    assert gov.evaluate(facts(headers={"x-tier": "pro"})) is None


def test_user_cohort_rule_fills_merge_tags_and_unknown() -> None:
    rules = [
        rule(
            "quota",
            "user",
            status=429,
            headers={"X-Plan": "{{plan}}", "X-Missing": "{{nope}}"},
            body={"message": "Quota of {{quota}} reached for {{ plan }}"},
        )
    ]
    config = {"user_rules": {"u1": [{"rules": "quota", "values": {"plan": "free", "quota": 1000}}]}}
    gov = Governor.compile(rules, config)
    assert gov is not None
    decision = gov.evaluate(facts(user_id="u1"))
    assert decision is not None
    assert decision.status == 429
    assert decision.headers == {"X-Plan": "free", "X-Missing": "UNKNOWN"}
    assert decision.body == {"message": "Quota of 1000 reached for free"}
    assert gov.evaluate(facts(user_id="u2")) is None  # not in the cohort


def test_company_not_matching_rule_applies_to_companies_outside_the_cohort() -> None:
    rules = [rule("paying-only", "company", applied_to="not_matching", status=402, body={"error": "upgrade"})]
    config = {"company_rules": {"acme": [{"rules": "paying-only", "values": {}}]}}
    gov = Governor.compile(rules, config)
    assert gov is not None
    assert gov.evaluate(facts(company_id="acme")) is None
    decision = gov.evaluate(facts(company_id="other"))
    assert decision is not None and decision.status == 402


def test_unidentified_rule_applies_only_without_an_id() -> None:
    gov = Governor.compile([rule("anon", "user", unidentified=True, status=401, body={"error": "sign in"})], {})
    assert gov is not None
    decision = gov.evaluate(facts())
    assert decision is not None and decision.blocked_by == "anon"
    assert gov.evaluate(facts(user_id="someone")) is None


def test_headers_only_rules_merge_and_later_blocks_win() -> None:
    rules = [
        rule("h1", block=False, headers={"X-A": "1", "X-Shared": "regex"}),
        rule("c1", "company", block=True, status=451, headers={"X-Shared": "company"}, body="company says no"),
        rule("u1", "user", block=True, status=418, headers={"X-U": "user"}, body="user says no"),
    ]
    config = {"company_rules": {"co": [{"rules": "c1"}]}, "user_rules": {"me": [{"rules": "u1"}]}}
    gov = Governor.compile(rules, config)
    assert gov is not None
    headers_only = gov.evaluate(facts())
    assert headers_only is not None and headers_only.blocked_by is None
    assert headers_only.headers == {"X-A": "1", "X-Shared": "regex"}
    both = gov.evaluate(facts(company_id="co", user_id="me"))
    assert both is not None
    assert (both.blocked_by, both.status, both.body) == ("u1", 418, "user says no")
    assert both.headers == {"X-A": "1", "X-Shared": "company", "X-U": "user"}


def test_every_cohort_rule_is_evaluated_not_just_until_the_first_miss() -> None:
    rules = [
        rule("first", "user", block=False, groups=[[("request.route", "^/never")]], headers={"X-First": "1"}),
        rule("second", "user", block=False, headers={"X-Second": "1"}),
    ]
    config = {"user_rules": {"u": [{"rules": "first"}, {"rules": "second"}, {"rules": "missing-from-rules"}]}}
    gov = Governor.compile(rules, config)
    assert gov is not None
    decision = gov.evaluate(facts(user_id="u", route="/items"))
    assert decision is not None and decision.headers == {"X-Second": "1"}


def test_body_field_rule_matches_graphql_operation_name() -> None:
    gov = Governor.compile([rule("gql", groups=[[("request.body.operationName", "^DeleteAll$")]], status=400)], {})
    assert gov is not None and gov.needs_body
    assert gov.evaluate(facts(verb="POST", body={"operationName": "DeleteAll", "query": "..."})) is not None
    assert gov.evaluate(facts(verb="POST", body={"operationName": "List"})) is None
    assert gov.evaluate(facts(verb="POST", body=["not", "a", "dict"])) is None


def test_malformed_rules_are_ignored_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    good = rule("ok", status=599)  # an unusual status code is fine
    bad = [
        {"_id": "no-type"},
        rule("bad-regex", groups=[[("request.route", "([unclosed")]]),
        rule("bad-status", status="teapot"),
        rule("bad-path", groups=[[("response.secret", "x")]]),
        "not even an object",
    ]
    with caplog.at_level(logging.WARNING, logger="moesif"):
        gov = Governor.compile([*bad, good], {"user_rules": "garbage"})
    assert gov is not None
    decision = gov.evaluate(facts())
    assert decision is not None and (decision.blocked_by, decision.status) == ("ok", 599)
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == len(bad)
