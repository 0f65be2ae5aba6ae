"""The client IP: proxy headers in the spec's order, every dialect, validated, else the peer."""

from __future__ import annotations

import pytest

from moesif_core.client_ip import IP_HEADERS, client_ip, parse_address


def test_headers_are_tried_in_the_spec_order() -> None:
    assert IP_HEADERS == (
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
    # Each header, with all later ones present too, wins over them.
    values = {name: f"10.0.0.{i + 1}" for i, name in enumerate(IP_HEADERS)}
    for i, name in enumerate(IP_HEADERS):
        present = {n: (f"for={v}" if n == "forwarded" else v) for n, v in values.items() if IP_HEADERS.index(n) >= i}
        assert client_ip(present, "192.0.2.1") == values[name], name


@pytest.mark.parametrize("name", IP_HEADERS)
def test_each_header_alone_is_read(name: str) -> None:
    value = "for=198.51.100.7" if name == "forwarded" else "198.51.100.7"
    assert client_ip({name: value}, "192.0.2.1") == "198.51.100.7"


def test_x_forwarded_for_gives_the_left_most_valid_address_without_its_port() -> None:
    assert client_ip({"x-forwarded-for": "unknown, 203.0.113.7:5000, 10.0.0.1"}, None) == "203.0.113.7"
    assert client_ip({"x-forwarded-for": " 203.0.113.9 ,10.0.0.1"}, None) == "203.0.113.9"


def test_invalid_values_fall_through_to_the_next_header() -> None:
    headers = {"x-client-ip": "not-an-ip", "x-forwarded-for": "garbage, also garbage", "x-real-ip": "198.51.100.1"}
    assert client_ip(headers, "192.0.2.1") == "198.51.100.1"


def test_ipv6_is_accepted_bare_and_bracketed_with_port() -> None:
    assert client_ip({"x-forwarded-for": "2001:db8::1, 10.0.0.1"}, None) == "2001:db8::1"
    assert client_ip({"x-forwarded-for": "[2001:db8::2]:443"}, None) == "2001:db8::2"
    assert client_ip({"x-real-ip": "::ffff:192.0.2.5"}, None) == "::ffff:192.0.2.5"


def test_forwarded_rfc_7239_with_quotes_ipv6_brackets_and_ports() -> None:
    value = 'for=unknown;proto=http, For="[2001:db8:cafe::17]:4711";by=203.0.113.43, for=192.0.2.60'
    assert client_ip({"forwarded": value}, None) == "2001:db8:cafe::17"
    assert client_ip({"forwarded": 'proto=https;for="192.0.2.61:8080"'}, None) == "192.0.2.61"
    assert client_ip({"forwarded": "for=_hidden, for=198.51.100.17"}, None) == "198.51.100.17"


def test_x_forwarded_may_use_the_forwarded_syntax_or_a_plain_list() -> None:
    assert client_ip({"x-forwarded": "for=192.0.2.43"}, None) == "192.0.2.43"
    assert client_ip({"x-forwarded": "192.0.2.44"}, None) == "192.0.2.44"


def test_peer_address_is_the_fallback() -> None:
    assert client_ip({}, "127.0.0.1") == "127.0.0.1"
    assert client_ip({"forwarded": "for=unknown"}, "::1") == "::1"
    assert client_ip({}, None) is None
    assert client_ip({}, "") is None


def test_non_string_header_values_fall_back_to_the_peer() -> None:
    assert client_ip({"x-client-ip": b"1.2.3.4"}, "127.0.0.1") == "127.0.0.1"  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ('"[::1]:80"', "::1"),
        ("1.2.3.4:65535", "1.2.3.4"),
        ("[::1", None),
        ("", None),
        ("999.1.1.1", None),
        ("1.2.3", None),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_parse_address_dialects(token: str, expected: str | None) -> None:
    assert parse_address(token) == expected
