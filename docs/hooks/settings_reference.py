"""mkdocs hook: renders the configuration reference from ``moesif_core.settings.SPECS``.

The settings object is the one source of truth: a page that says ``{{ settings_reference }}``
gets the table of every key, its type, default and meaning, so the docs cannot drift.
"""

from __future__ import annotations

from typing import Any

from moesif_core.settings import SPECS, SettingSpec

_KINDS = {"str": "string", "bool": "bool", "int": "int", "float": "float (seconds)", "list": "list of strings", "callable": "callable"}


def _default(spec: SettingSpec) -> str:
    if spec.default is None or spec.default == ():
        return "—"
    if isinstance(spec.default, tuple):
        return "`" + ", ".join(spec.default) + "`"
    if isinstance(spec.default, int) and not isinstance(spec.default, bool) and spec.default >= 1024:
        return f"`{spec.default:_}`".replace("_", ",")
    return f"`{spec.default!r}`" if isinstance(spec.default, str) else f"`{spec.default}`"


def render() -> str:
    rows = ["| key | type | default | env var | meaning |", "| --- | --- | --- | --- | --- |"]
    for spec in SPECS:
        env = "—" if spec.kind == "callable" else f"`MOESIF_{spec.key}`"
        origin = "" if spec.incumbent else " *(new)*"
        rows.append(f"| `{spec.key}`{origin} | {_KINDS[spec.kind]} | {_default(spec)} | {env} | {spec.doc} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace("{{ settings_reference }}", render())
