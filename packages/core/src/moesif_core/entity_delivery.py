"""Posting a user/company/subscription update now, in the caller's thread, and saying how it went.

The background path (``Agent.submit_entity``) is the default; this one is for callers that must
know the outcome (a sign-up flow, a migration script). It uses a fresh
:class:`~moesif_core.transport.HttpTransport` and the retry policy of the sender, from
:mod:`moesif_core.transport` (retryable answers, backoff with jitter, ``Retry-After``); it never
raises for a network problem: the :class:`DeliveryResult` says what happened.

Example::

    result = deliver_now(settings, "users", encode(user), user_agent="moesif-core/1.0")
    if not result:
        print(result.error)   # e.g. "HTTP 401"
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .log import logger
from .settings import Settings
from .transport import HttpTransport, TransportError, gzip_body, is_retryable_status, retry_delay

__all__ = ["DeliveryResult", "deliver_now"]

_BODY_EXCERPT: Final = 200


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How a synchronous update went: true when the Collector API accepted it (any 2xx)."""

    ok: bool
    status: int | None  # the last HTTP status, None when no answer came
    attempts: int  # posts made (0 when there was nothing to send)
    error: str | None = None  # why it failed, None when it did not

    def __bool__(self) -> bool:
        return self.ok


def deliver_now(
    settings: Settings,
    kind: str,
    body: bytes,
    *,
    user_agent: str,
    timeout: float | None = None,
    sleep: Callable[[float], object] | None = None,
) -> DeliveryResult:
    """POST ``body`` (JSON) to ``/v1/<kind>`` with the sender's retries; give up after ``timeout`` seconds if set."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    wait = sleep or threading.Event().wait
    transport = HttpTransport(
        settings.base_uri,
        application_id=settings.application_id,
        user_agent=user_agent,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
    )
    path = f"/v1/{kind}"
    payload = gzip_body(body)
    attempt = 0
    status: int | None = None
    try:
        while True:
            retry_after: str | None = None
            try:
                response = transport.request("POST", path, payload, gzip=True)
            except TransportError as exc:
                status, why = None, str(exc)
            else:
                status = response.status
                if 200 <= status < 300:
                    if settings.debug:
                        logger.debug("moesif: sent %s now -> HTTP %d", path, status)
                    return DeliveryResult(True, status, attempt + 1)
                excerpt = response.body[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
                why = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
                if status in (401, 403):
                    why += " (the APPLICATION_ID is wrong: copy it from your Moesif account under API Keys)"
                if not is_retryable_status(status):
                    return DeliveryResult(False, status, attempt + 1, why)
                retry_after = response.headers.get("retry-after")
            if attempt >= settings.max_retries:
                return DeliveryResult(False, status, attempt + 1, f"{why} (gave up after {attempt} retries)")
            delay = retry_delay(attempt, settings.retry_backoff, settings.retry_backoff_max, retry_after)
            if deadline is not None and time.monotonic() + delay >= deadline:
                return DeliveryResult(False, status, attempt + 1, f"{why} (timed out before retry {attempt + 1})")
            if settings.debug:
                logger.debug("moesif: %s failed (%s); retry %d in %.2fs", path, why, attempt + 1, delay)
            wait(delay)
            attempt += 1
    finally:
        transport.close()
