"""What every middleware object offers on top of its agent: flush, close, counters, users and companies.

The WSGI and ASGI middlewares, the framework integrations and the standalone client all expose
the same lifecycle calls; they live here once.
"""

from __future__ import annotations

import asyncio

from .entities import EntityApi
from .log import warn_once

__all__ = ["AgentApi"]


class AgentApi(EntityApi):
    """Lifecycle and counters over ``self.agent``, plus the ``update_*`` calls of :class:`EntityApi`."""

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver every event captured so far, waiting at most ``timeout`` seconds (blocks the caller)."""
        return self.agent.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """Deliver every event captured so far without blocking the event loop."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.agent.flush, timeout)
        except Exception as exc:
            warn_once("aflush", "moesif: flush failed (%s: %s)", type(exc).__name__, exc)
            return False

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the background sender; later calls are no longer captured."""
        return self.agent.close(timeout)

    def stats(self) -> dict[str, int]:
        """Counters: queued, sent, retried, dropped by reason, sampled out, skipped, and what waits now."""
        return self.agent.stats()
