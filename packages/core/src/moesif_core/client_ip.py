"""The caller's IP address, from proxy headers in the spec's order, else the peer address.

Proxies write these headers in several dialects: plain lists (``X-Forwarded-For: client, proxy1``),
``a.b.c.d:port``, bracketed IPv6 with a port, and RFC 7239 ``Forwarded: for="[2001:db8::1]:4711"``.
Every candidate is validated with :mod:`ipaddress`, so ``unknown``, obfuscated identifiers and
garbage are skipped rather than reported as an address. The headers are client-controlled: this is
the address for analytics, not for access control.

Example::

    client_ip({"x-forwarded-for": "unknown, 203.0.113.7:5000"}, "10.0.0.1")  # "203.0.113.7"
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

__all__ = ["IP_HEADERS", "client_ip", "parse_address"]

# Checked in this order; the first header giving a valid address wins.
IP_HEADERS: Final = (
    "x-client-ip",
    "x-forwarded-for",
    "cf-connecting-ip",
    "true-client-ip",
    "x-real-ip",
    "x-cluster-client-ip",
    "x-forwarded",
    "forwarded-for",
    "forwarded",
)
_FORWARDED_STYLE: Final = frozenset({"forwarded", "x-forwarded"})
_IP_HEADER_SET: Final = frozenset(IP_HEADERS)
_VERDICTS_LIMIT: Final = 4096
# address text -> valid? ``ipaddress`` parses in Python (microseconds); the same clients come back.
_verdicts: dict[str, bool] = {}


def parse_address(token: str) -> str | None:
    """One address as proxies write it (quoted, ``[v6]:port``, ``v4:port``) -> the address, or None if invalid."""
    token = token.strip().strip('"').strip()
    if not token:
        return None
    if token[0] == "[":
        end = token.find("]")
        if end < 0:
            return None
        token = token[1:end]
    elif token.count(":") == 1:
        # "a.b.c.d:port"; a bare IPv6 address has two colons or more and no port.
        token = token.split(":", 1)[0]
    valid = _verdicts.get(token)
    if valid is None:
        try:
            ipaddress.ip_address(token)
            valid = True
        except ValueError:
            valid = False
        if len(_verdicts) >= _VERDICTS_LIMIT:
            _verdicts.clear()
        _verdicts[token] = valid
    return token if valid else None


def _first_in_list(value: str) -> str | None:
    for part in value.split(","):
        address = parse_address(part)
        if address is not None:
            return address
    return None


def _first_forwarded_for(value: str) -> str | None:
    """RFC 7239: ``for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`` -> the first valid ``for``."""
    for element in value.split(","):
        for pair in element.split(";"):
            name, sep, node = pair.partition("=")
            if sep and name.strip().lower() == "for":
                address = parse_address(node)
                if address is not None:
                    return address
    return None


def client_ip(headers: Mapping[str, str], peer: str | None) -> str | None:
    """The first valid address from the proxy headers (lower-case names), else ``peer``; never raises."""
    try:
        if _IP_HEADER_SET.isdisjoint(headers):  # the common case, in one C call
            return peer if isinstance(peer, str) and peer else None
        for name in IP_HEADERS:
            value = headers.get(name)
            if not value:
                continue
            forwarded = name in _FORWARDED_STYLE and "=" in value
            address = _first_forwarded_for(value) if forwarded else _first_in_list(value)
            if address is not None:
                return address
    except Exception:  # a non-str value: the peer address is still right
        pass
    if isinstance(peer, str) and peer:
        return peer
    return None
