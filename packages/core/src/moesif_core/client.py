"""A Moesif client for code without a web framework: scripts, workers, CLIs, billing jobs.

It has what a middleware object has besides capturing served calls: ``update_user`` and friends
(queued with retries, or sent now with ``wait=True`` / the ``a``-prefixed coroutines), outgoing
capture when ``CAPTURE_OUTGOING_REQUESTS`` is on, ``flush``, ``close`` and ``stats``. Nothing
starts until it is used; ``close`` (or leaving the ``with`` block, or process exit) delivers
what is queued.

Example::

    from moesif_core.client import MoesifClient

    with MoesifClient({"APPLICATION_ID": "..."}) as moesif:
        moesif.update_users_batch([{"user_id": "u1"}, {"user_id": "u2"}])
        result = moesif.update_company({"company_id": "c1"}, wait=True)
        assert result.ok, result.error
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .agent_api import AgentApi
from .settings import Settings

if TYPE_CHECKING:
    from types import TracebackType

    from .agent import Agent
    from .outgoing import OutgoingCapture

__all__ = ["MoesifClient"]


class MoesifClient(AgentApi):
    """Users, companies, subscriptions and outgoing capture for one application id; see the module docstring.

    ``settings`` takes the same keys as the middlewares (a dict or ``Settings``; ``MOESIF_*``
    environment variables fill the rest); a missing or wrong one raises ``SettingsError``.
    """

    def __init__(self, settings: Mapping[str, Any] | Settings | None = None, *, user_agent: str | None = None) -> None:
        from ._version import __version__
        from .agent import Agent

        self.settings = Settings.resolve(settings)
        self.agent: Agent = Agent(self.settings, user_agent=user_agent or f"moesif-core/{__version__}")
        self._capture: OutgoingCapture | None = None
        if self.settings.capture_outgoing_requests:
            self.start_outgoing_capture()

    def start_outgoing_capture(self) -> OutgoingCapture:
        """Capture this process's ``requests``/``httpx`` calls for this client (see the outgoing docs)."""
        from .outgoing import start_capture

        if self._capture is None or not self._capture.running:
            self._capture = start_capture(self.settings, agent=self.agent)
        return self._capture

    def stop_outgoing_capture(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.stop()

    def close(self, timeout: float | None = None) -> bool:
        """Stop outgoing capture, deliver what is queued (up to ``timeout``), stop; idempotent."""
        self.stop_outgoing_capture()
        return self.agent.close(timeout)

    def __enter__(self) -> MoesifClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MoesifClient {self.agent!r}>"
