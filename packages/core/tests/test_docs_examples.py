"""The ```python blocks of README.md and of each docs page run, in order, as one script per page.

A page reads as a tutorial, so later blocks may use what earlier ones defined; fragments meant only
to be read are fenced ```py instead. Each page runs in its own interpreter with MOESIF_BASE_URI
pointing at a local collector, so an example that sends anything sends it to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def examples() -> list[Any]:
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = FENCE.findall(page.read_text(encoding="utf-8"))
        if blocks:
            found.append(pytest.param("\n\n".join(blocks), id=str(page.relative_to(ROOT))))
    return found


def test_the_docs_have_runnable_examples() -> None:
    assert len(examples()) >= 5  # pages with examples, not blocks


@pytest.mark.parametrize("code", examples())
def test_doc_example_runs(code: str, moesif_collector: Any, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "MOESIF_APPLICATION_ID": moesif_collector.application_id,
        "MOESIF_BASE_URI": moesif_collector.base_uri,
        "PYTHONPATH": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, str(script)], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"example failed:\n{code}\n--- stderr ---\n{result.stderr[-3000:]}"
