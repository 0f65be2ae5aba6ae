"""The collector's web page and its JSON API (filled in by issue 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .local_collector import LocalCollector

__all__ = ["handle_web_request"]


def handle_web_request(collector: LocalCollector, method: str, path: str, query: str) -> tuple[int, bytes, str] | None:
    """Answer a request for the page or its API as (status, body, content type); None when the path is not ours."""
    return None
