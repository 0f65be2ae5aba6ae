"""Sampling config and governance rules from a JSON file, so users can try them against a local collector.

The file holds ``{"config": {...}, "rules": [...]}`` (either key may be left out). The collector
rereads it when its modification time changes, so editing the file changes what ``/v1/config``
and ``/v1/rules`` serve (and the ETag) without a restart; a broken edit keeps the last good
content and is reported once per change.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = ["DEFAULT_CONFIG", "CollectorFile", "ConfigFileError", "content_etag", "load_config_file"]

DEFAULT_CONFIG: Final[dict[str, Any]] = {
    "sample_rate": 100,
    "user_sample_rate": {},
    "company_sample_rate": {},
    "user_rules": {},
    "company_rules": {},
    "regex_config": [],
}


class ConfigFileError(ValueError):
    """The config file is missing, not JSON, or of the wrong shape; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class CollectorFile:
    """What one read of a config file gave: the config (None when absent), the rules (None when absent)."""

    config: dict[str, Any] | None
    rules: list[Any] | None
    mtime_ns: int


def content_etag(value: Any) -> str:
    """A stable ETag for a JSON value: equal content gives the same tag, whatever the key order."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def load_config_file(path: str | os.PathLike[str]) -> CollectorFile:
    """Read and check ``path``; raise :class:`ConfigFileError` with a clear message on any problem."""
    try:
        mtime = os.stat(path).st_mtime_ns
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {os.fspath(path)}: {exc.strerror or exc}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigFileError(f"config file {os.fspath(path)} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(
            f'config file {os.fspath(path)} must hold a JSON object such as {{"config": {{...}}, "rules": [...]}}'
        )
    unknown = sorted(set(data) - {"config", "rules"})
    if unknown:
        raise ConfigFileError(f"config file {os.fspath(path)} has unknown keys {unknown}; only 'config' and 'rules' are read")
    config = data.get("config")
    rules = data.get("rules")
    if config is not None and not isinstance(config, dict):
        raise ConfigFileError(f"config file {os.fspath(path)}: 'config' must be an object, got {type(config).__name__}")
    if rules is not None:
        if not isinstance(rules, list):
            raise ConfigFileError(f"config file {os.fspath(path)}: 'rules' must be an array, got {type(rules).__name__}")
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise ConfigFileError(f"config file {os.fspath(path)}: rules[{i}] must be an object")
    if config is not None:
        rate = config.get("sample_rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 100):
            raise ConfigFileError(
                f"config file {os.fspath(path)}: config.sample_rate must be a number from 0 to 100, got {rate!r}"
            )
    return CollectorFile(config, rules, mtime)
