"""Whether a call is kept: a per-route skip, then the sampling rate of the served config.

Decided in the request path as soon as the response starts, so that a dropped call costs a few
attribute reads and one random number, not a body copy or an event.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .annotations import RequestAnnotations
from .client_ip import client_ip
from .headers import normalize_headers
from .identify import identify_from_headers
from .log import logger
from .record import RawExchange

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["keep_call"]


def keep_call(agent: Agent, record: RawExchange, annotations: RequestAnnotations) -> bool:
    """True to keep ``record``; sets ``record.weight`` from the sampling rate, counts what is dropped."""
    if annotations.skip:
        agent.count("skipped")
        if agent.settings.debug:
            logger.debug("moesif: %s %s skipped by the route", record.method, record.path)
        return False
    if getattr(agent, "flat_sample_rate", None) == 100:
        record.weight = 1
        return True  # the usual config: every call kept, nothing about it to look at
    user_id = record.user_id
    company_id = record.company_id
    ip = record.client_addr
    needs_identity = agent.sampling_needs_identity and (user_id is None or company_id is None)
    needs_ip = getattr(agent, "sampling_needs_ip", False)
    if needs_identity or needs_ip:
        # Only parsed when the served config has per-user rates or IP rules: the common case skips it.
        headers = normalize_headers(record.request_headers, record.request_header_style)
        if needs_identity:
            token_user, token_company = identify_from_headers(headers, agent.settings)
            user_id = user_id if user_id is not None else token_user
            company_id = company_id if company_id is not None else token_company
        if needs_ip:
            ip = client_ip(headers, record.client_addr)
    rate = agent.sample_rate(
        route=record.path,
        verb=record.method,
        ip=ip,
        status=record.status,
        user_id=_as_text(user_id),
        company_id=_as_text(company_id),
    )
    if rate >= 100:
        record.weight = 1
        return True
    if rate <= 0 or random.random() * 100 >= rate:
        agent.count("sampled_out")
        if agent.settings.debug:
            logger.debug("moesif: %s %s sampled out (rate %s%%)", record.method, record.path, rate)
        return False
    record.weight = max(1, int(100 // rate))
    return True


def _as_text(value: object) -> str | None:
    """A callback's id as the sampler compares it; an object whose ``str()`` raises counts as no id."""
    if value is None or type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return None
