"""The collector's web page in a real headless Chromium: it renders stored events and the summary."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from moesif_core.collector import LocalCollector

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent; install it with `apt-get install -y chromium`"
    ),
]


def make_event(path: str, status: int, user: str, n: int) -> dict[str, Any]:
    return {
        "request": {"time": "2026-11-21T18:16:46.000", "uri": f"http://app.local{path}", "verb": "GET"},
        "response": {"time": "2026-11-21T18:16:46.025", "status": status},
        "user_id": user,
        "direction": "Incoming",
        "transaction_id": f"tx-{n}",
    }


def rendered_dom(url: str) -> str:
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=4000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_page_lists_events_and_summary_and_escapes_content() -> None:
    with LocalCollector() as c:
        c.store.add_events([make_event("/orders", 200, "ann", 1), make_event("/orders", 503, "<img src=x onerror=alert(1)>", 2)])
        dom = rendered_dom(c.base_uri + "/")
    c.close()
    assert "<td>/orders</td>" in dom
    assert '<td class="s5">503</td>' in dom
    assert "<td>ann</td>" in dom
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom  # shown as text, never as markup
    assert "<img src=x" not in dom
    assert "2 events, 1 errors (50.0%)" in dom
    assert '<span id="state">live, updated' in dom
