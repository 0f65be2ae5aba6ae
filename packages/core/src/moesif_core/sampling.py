"""Sampling rates from the served ``/v1/config``, compiled once per config so the request path is cheap.

Precedence, as the Collector API defines it: the first ``regex_config`` entry whose conditions all
match (paths ``request.verb``, ``request.route``, ``request.ip_address``, ``response.status``;
unanchored ``re.search``), then the user's rate, then the company's, then ``sample_rate``.
Regexes are compiled here, once; an invalid one (or an unknown path) disables its entry with one
log line instead of failing every request. A config that is not what we expect samples at 100 %.

Example::

    sampler = Sampler.from_config({"sample_rate": 50, "regex_config": [
        {"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}]})
    sampler.rate(route="/health", verb="GET", ip=None, status=200, user_id=None, company_id=None)  # 0
    weight_for(50)  # 2
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from .log import warn_once

__all__ = ["Sampler", "coerce_rate", "weight_for"]

# Condition paths of ``regex_config`` and the request fact each one reads.
_FACTS: Final = {
    "request.verb": "verb",
    "request.route": "route",
    "request.ip_address": "ip",
    "request.ip": "ip",
    "response.status": "status",
}


def weight_for(rate: float) -> int:
    """How many calls one kept event stands for: 1 at 100 %, else ``floor(100 / rate)``.

    A rate of 0 keeps nothing, so its weight is never used; it is 1 to stay a valid count.
    """
    if rate >= 100 or rate <= 0:
        return 1
    return max(1, math.floor(100 / rate))


def coerce_rate(value: Any) -> int | None:
    """A served rate as an int percentage in 0..100, None when it is not a number.

    Rates between 0 and 1 round up to 1 so that a tiny but non-zero rate keeps some traffic.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    if value <= 0:
        return 0
    if value >= 100:
        return 100
    return max(1, int(value))


def _rate_map(value: Any, name: str) -> dict[str, int]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        warn_once(f"sampling-map-{name}", "moesif: ignoring %s in the served config: expected an object", name)
        return {}
    rates: dict[str, int] = {}
    for key, raw in value.items():
        rate = coerce_rate(raw)
        if rate is not None:
            rates[str(key)] = rate
    return rates


def _compile_entry(entry: Any) -> tuple[tuple[tuple[str, re.Pattern[str]], ...], int] | None:
    if not isinstance(entry, Mapping):
        warn_once("sampling-entry", "moesif: ignoring a regex_config entry of the served config: expected an object")
        return None
    rate = coerce_rate(entry.get("sample_rate"))
    conditions = entry.get("conditions")
    if rate is None or not isinstance(conditions, list) or not conditions:
        warn_once("sampling-entry", "moesif: ignoring a regex_config entry without conditions or sample_rate")
        return None
    compiled: list[tuple[str, re.Pattern[str]]] = []
    for condition in conditions:
        if not isinstance(condition, Mapping):
            warn_once("sampling-entry", "moesif: ignoring a regex_config entry with a malformed condition")
            return None
        fact = _FACTS.get(str(condition.get("path")))
        if fact is None:
            warn_once(
                f"sampling-path-{condition.get('path')}",
                "moesif: ignoring a regex_config entry on unknown path %r",
                condition.get("path"),
            )
            return None
        try:
            pattern = re.compile(str(condition.get("value", "")))
        except (re.error, RecursionError, OverflowError) as exc:
            warn_once(
                f"sampling-regex-{condition.get('value')}",
                "moesif: ignoring a regex_config entry with invalid regex %r (%s)",
                condition.get("value"),
                exc,
            )
            return None
        compiled.append((fact, pattern))
    return tuple(compiled), rate


class Sampler:
    """The compiled sampling part of one config; immutable once built."""

    __slots__ = ("company_rates", "default_rate", "flat_rate", "needs_ip", "regex_entries", "user_rates")

    def __init__(
        self,
        default_rate: int = 100,
        regex_entries: tuple[tuple[tuple[tuple[str, re.Pattern[str]], ...], int], ...] = (),
        user_rates: Mapping[str, int] | None = None,
        company_rates: Mapping[str, int] | None = None,
    ) -> None:
        self.default_rate = default_rate
        self.regex_entries = regex_entries
        self.user_rates: Mapping[str, int] = user_rates or {}
        self.company_rates: Mapping[str, int] = company_rates or {}
        # The rate of every call when no rule tells calls apart (the usual config): the request
        # path then needs no facts about the call at all.
        self.flat_rate: int | None = None if (regex_entries or self.user_rates or self.company_rates) else default_rate
        #: True when a regex entry looks at ``request.ip_address``, so the caller must resolve the client's address.
        self.needs_ip: bool = any(fact == "ip" for conditions, _ in regex_entries for fact, _ in conditions)

    @classmethod
    def from_config(cls, config: Any) -> Sampler:
        """Compile the sampling keys of a ``/v1/config`` answer; anything malformed is ignored."""
        if not isinstance(config, Mapping):
            return cls()
        default = coerce_rate(config.get("sample_rate"))
        entries: list[tuple[tuple[tuple[str, re.Pattern[str]], ...], int]] = []
        raw_entries = config.get("regex_config") or []
        if isinstance(raw_entries, list):
            for entry in raw_entries:
                compiled = _compile_entry(entry)
                if compiled is not None:
                    entries.append(compiled)
        else:
            warn_once("sampling-regex-config", "moesif: ignoring regex_config of the served config: expected a list")
        return cls(
            100 if default is None else default,
            tuple(entries),
            _rate_map(config.get("user_sample_rate"), "user_sample_rate"),
            _rate_map(config.get("company_sample_rate"), "company_sample_rate"),
        )

    @property
    def needs_identity(self) -> bool:
        """True when a user's or company's rate could apply, so the caller must know who it is."""
        return bool(self.user_rates or self.company_rates)

    def rate(
        self,
        *,
        route: str,
        verb: str,
        ip: str | None,
        status: int,
        user_id: str | None,
        company_id: str | None,
    ) -> int:
        """The percentage (0..100) of such calls to keep."""
        if self.regex_entries:
            facts = {"route": route, "verb": verb, "ip": ip, "status": str(status)}
            for conditions, rate in self.regex_entries:
                for fact, pattern in conditions:
                    value = facts[fact]
                    if value is None or pattern.search(value) is None:
                        break
                else:
                    return rate
        if user_id is not None and self.user_rates:
            user_rate = self.user_rates.get(user_id)
            if user_rate is not None:
                return user_rate
        if company_id is not None and self.company_rates:
            company_rate = self.company_rates.get(company_id)
            if company_rate is not None:
                return company_rate
        return self.default_rate
