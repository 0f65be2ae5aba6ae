"""Sampling rates from the served config: precedence, regexes, malformed input, weights."""

from __future__ import annotations

import logging

import pytest

from moesif_core.sampling import Sampler, coerce_rate, weight_for


def rate(
    sampler: Sampler,
    route: str = "/",
    verb: str = "GET",
    ip: str | None = "10.0.0.1",
    status: int = 200,
    user_id: str | None = None,
    company_id: str | None = None,
) -> int:
    return sampler.rate(route=route, verb=verb, ip=ip, status=status, user_id=user_id, company_id=company_id)


CONFIG = {
    "sample_rate": 40,
    "user_sample_rate": {"u-slow": 10, "u-all": 100},
    "company_sample_rate": {"acme": 20},
    "regex_config": [
        {"conditions": [{"path": "request.route", "value": "/health"}], "sample_rate": 0},
        {
            "conditions": [{"path": "request.verb", "value": "^POST$"}, {"path": "response.status", "value": "^5"}],
            "sample_rate": 100,
        },
        {"conditions": [{"path": "request.ip_address", "value": r"^192\.168\."}], "sample_rate": 5},
    ],
}


def test_no_config_samples_everything() -> None:
    assert rate(Sampler()) == 100
    assert not Sampler().needs_identity


def test_first_matching_regex_entry_wins_over_user_and_company() -> None:
    sampler = Sampler.from_config(CONFIG)
    assert rate(sampler, route="/api/health/live", user_id="u-all") == 0  # unanchored search
    assert rate(sampler, verb="POST", status=503, user_id="u-slow") == 100


def test_a_regex_entry_needs_all_its_conditions() -> None:
    sampler = Sampler.from_config(CONFIG)
    assert rate(sampler, verb="POST", status=201) == 40
    assert rate(sampler, verb="GET", status=503) == 40


def test_ip_condition_matches_the_ip_and_never_a_missing_one() -> None:
    sampler = Sampler.from_config(CONFIG)
    assert rate(sampler, ip="192.168.1.4") == 5
    assert rate(sampler, ip=None) == 40


def test_user_rate_then_company_rate_then_default() -> None:
    sampler = Sampler.from_config(CONFIG)
    assert rate(sampler, user_id="u-slow", company_id="acme") == 10
    assert rate(sampler, user_id="someone-else", company_id="acme") == 20
    assert rate(sampler, user_id="someone-else", company_id="other") == 40
    assert sampler.needs_identity


def test_invalid_regex_disables_only_its_entry_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    config = {
        "sample_rate": 70,
        "regex_config": [
            {"conditions": [{"path": "request.route", "value": "(unclosed"}], "sample_rate": 0},
            {"conditions": [{"path": "request.route", "value": "^/ok"}], "sample_rate": 30},
        ],
    }
    with caplog.at_level(logging.WARNING, logger="moesif"):
        sampler = Sampler.from_config(config)
        Sampler.from_config(config)  # compiled again for a refreshed config: no second line
    assert rate(sampler, route="/ok") == 30
    assert rate(sampler, route="(unclosed") == 70
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "invalid regex" in warnings[0].getMessage()


@pytest.mark.parametrize(
    "config",
    [
        None,
        "not a dict",
        {"sample_rate": "fifty"},
        {"sample_rate": 100, "regex_config": "nope", "user_sample_rate": ["x"]},
        {"regex_config": [{"conditions": [{"path": "request.body.x", "value": "a"}], "sample_rate": 0}]},
        {"regex_config": [{"conditions": [], "sample_rate": 0}, 7, {"sample_rate": 0}]},
    ],
)
def test_malformed_config_samples_everything_and_never_raises(config: object) -> None:
    assert rate(Sampler.from_config(config), route="/x") == 100


@pytest.mark.parametrize(("rate_value", "weight"), [(100, 1), (50, 2), (33, 3), (30, 3), (10, 10), (1, 100), (0, 1)])
def test_weight_is_floor_of_100_over_the_rate(rate_value: int, weight: int) -> None:
    assert weight_for(rate_value) == weight


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(50, 50), (50.9, 50), (0.2, 1), (0, 0), (-3, 0), (250, 100), (True, None), ("50", None), (float("nan"), None)],
)
def test_served_rates_are_clamped_to_whole_percentages(raw: object, expected: int | None) -> None:
    assert coerce_rate(raw) == expected


def test_flat_rate_only_when_no_rule_tells_calls_apart() -> None:
    assert Sampler().flat_rate == 100
    assert Sampler.from_config({"sample_rate": 30}).flat_rate == 30
    assert Sampler.from_config(CONFIG).flat_rate is None
    assert Sampler.from_config({"user_sample_rate": {"u": 0}}).flat_rate is None
    assert Sampler.from_config({"regex_config": CONFIG["regex_config"]}).flat_rate is None


def test_keep_call_applies_a_route_rule_even_when_the_default_keeps_everything() -> None:
    from moesif_core.agent import Agent
    from moesif_core.annotations import RequestAnnotations
    from moesif_core.call_filter import keep_call
    from moesif_core.record import RawExchange
    from moesif_core.remote_config import RemoteConfig
    from moesif_core.settings import Settings

    agent = Agent(
        Settings.resolve({"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}, environ={}), user_agent="test"
    )
    health, orders = RawExchange(), RawExchange()
    health.path, orders.path = "/health", "/orders"
    assert keep_call(agent, health, RequestAnnotations()) and health.weight == 1  # no config yet: keep all
    agent._config = RemoteConfig.from_payloads(
        {"sample_rate": 100, "regex_config": [{"conditions": [{"path": "request.route", "value": "/health"}], "sample_rate": 0}]},
        [],
        etag="1",
    )
    assert not keep_call(agent, health, RequestAnnotations())
    assert keep_call(agent, orders, RequestAnnotations())
    assert agent.stats()["sampled_out"] == 1
