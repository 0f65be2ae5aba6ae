"""Credential masking: default header and body names, added names, any depth, forms, the transaction id."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from moesif_core.masking import (
    DEFAULT_BODY_MASKS,
    DEFAULT_HEADER_MASKS,
    MASK,
    MAX_BODY_DEPTH,
    Masks,
    mask_form,
    mask_headers,
    mask_json,
)


def test_brief_header_names_are_masked_by_default() -> None:
    for name in (
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
    ):
        assert name in DEFAULT_HEADER_MASKS
    for name in ("x-access-token", "x-csrf-token", "x-xsrf-token", "x-amz-security-token"):
        assert name in DEFAULT_HEADER_MASKS


def test_brief_body_names_are_masked_by_default() -> None:
    for name in ("password", "passwd", "pwd", "secret", "client_secret", "token", "access_token", "refresh_token", "id_token"):
        assert name in DEFAULT_BODY_MASKS
    for name in ("api_key", "apikey", "private_key", "authorization", "credit_card", "card_number", "cvv", "ssn"):
        assert name in DEFAULT_BODY_MASKS


def test_headers_are_masked_in_place_and_the_names_reported() -> None:
    headers = {"authorization": "Bearer x", "cookie": "s=1", "accept": "*/*"}
    assert mask_headers(headers, Masks().request_headers) == ["authorization", "cookie"]
    assert headers == {"authorization": MASK, "cookie": MASK, "accept": "*/*"}


def test_default_masking_off_leaves_credentials() -> None:
    masks = Masks(use_defaults=False)
    headers = {"authorization": "Bearer x"}
    assert mask_headers(headers, masks.request_headers) == []
    assert headers == {"authorization": "Bearer x"}
    assert mask_json({"password": "p"}, masks.request_body) == {"password": "p"}


def test_added_names_extend_the_defaults_case_insensitively() -> None:
    masks = Masks(request_headers=["X-Internal"], response_body=["Balance"])
    headers = {"x-internal": "1", "authorization": "a", "x-other": "2"}
    mask_headers(headers, masks.request_headers)
    assert headers == {"x-internal": MASK, "authorization": MASK, "x-other": "2"}
    assert mask_json({"BALANCE": 3, "password": "p", "x": 1}, masks.response_body) == {"BALANCE": MASK, "password": MASK, "x": 1}
    # the other direction keeps only the defaults
    assert mask_json({"balance": 3}, masks.request_body) == {"balance": 3}


def test_added_names_apply_alone_when_defaults_are_off() -> None:
    masks = Masks(use_defaults=False, request_body=["pin"], request_headers=["x-pin"])
    assert mask_json({"pin": 1, "password": "p"}, masks.request_body) == {"pin": MASK, "password": "p"}
    headers = {"x-pin": "1", "authorization": "a"}
    mask_headers(headers, masks.request_headers)
    assert headers == {"x-pin": MASK, "authorization": "a"}


def test_transaction_id_header_is_never_masked() -> None:
    masks = Masks(request_headers=["X-Moesif-Transaction-Id"], response_headers=["x-moesif-transaction-id"])
    headers = {"x-moesif-transaction-id": "t"}
    mask_headers(headers, masks.request_headers)
    mask_headers(headers, masks.response_headers)
    assert headers == {"x-moesif-transaction-id": "t"}


def test_body_fields_are_masked_at_any_depth_case_insensitively() -> None:
    body: Any = {
        "user": {"name": "a", "Password": "p1", "profile": {"SSN": "123", "tags": ["x"]}},
        "items": [{"token": "t1", "id": 1}, [{"cvv": 123}], "plain"],
        "credentials": {"client_secret": {"nested": "whole value goes"}},
    }
    masked: list[str] = []
    out = mask_json(body, Masks().request_body, masked)
    assert out == {
        "user": {"name": "a", "Password": MASK, "profile": {"SSN": MASK, "tags": ["x"]}},
        "items": [{"token": MASK, "id": 1}, [{"cvv": MASK}], "plain"],
        "credentials": {"client_secret": MASK},
    }
    assert sorted(masked) == ["Password", "SSN", "client_secret", "cvv", "token"]


def test_masking_is_right_the_second_time_a_key_is_seen() -> None:
    # Keys judged safe are remembered; a masked key must never become "safe".
    names = Masks().response_body
    for _ in range(3):
        assert mask_json([{"password": "p", "id": 1}], names) == [{"password": MASK, "id": 1}]
        assert mask_json([{"id": 1, "nested": {"Token": "x"}}], names) == [{"id": 1, "nested": {"Token": MASK}}]


def test_scalars_are_returned_unchanged() -> None:
    assert mask_json("password", Masks().request_body) == "password"


def test_bodies_nested_too_deep_are_cut_and_still_serialise() -> None:
    body: Any = []
    node = body
    for _ in range(MAX_BODY_DEPTH + 50):
        child: list[Any] = []
        node.append(child)
        node = child
    out = mask_json(body, Masks().request_body)
    orjson.dumps({"request": {"body": out}})  # would raise past orjson's depth limit
    depth, node = 0, out
    while isinstance(node, list) and node:
        node, depth = node[0], depth + 1
    assert node == MASK and depth <= MAX_BODY_DEPTH


def test_form_fields_are_masked_keeping_the_rest_as_sent() -> None:
    masked: list[str] = []
    data = b"user=alice&Password=s3cret&remember=on&pass%77ord=x&api_key=k&empty"
    assert (
        mask_form(data, Masks().request_body, masked)
        == b"user=alice&Password=*****&remember=on&pass%77ord=*****&api_key=*****&empty"
    )
    assert masked == ["password", "password", "api_key"]


def test_form_without_masked_fields_is_returned_as_is() -> None:
    data = b"a=1&b=2"
    assert mask_form(data, Masks().request_body) is data


def test_prefilter_finds_every_name_and_lets_clean_bodies_skip_the_walk() -> None:
    from moesif_core.masking import DEFAULT_BODY_MASKS, may_hold_masked_field

    names = frozenset(DEFAULT_BODY_MASKS)
    for name in names:
        assert may_hold_masked_field(f'{{"{name.upper()}": 1}}'.encode(), names), name
    assert not may_hold_masked_field(b'{"items": [{"id": 1, "name": "pen"}], "email": "a@b.c"}', names)


def test_prefilter_handles_names_with_other_characters_and_escaped_keys() -> None:
    from moesif_core.masking import may_hold_masked_field

    names = frozenset({"password", "x-secret-field"})
    assert may_hold_masked_field(b'{"X-Secret-Field": "v"}', names)
    assert may_hold_masked_field(b'{"pass\\u0077ord": "v"}', names)  # an escaped key is always walked
    assert not may_hold_masked_field(b'{"user_passwords_count": 3, "note": "secret field"}', names)


@pytest.mark.parametrize(
    "body",
    [
        b'{ "Password" : "x" }',  # Jackson's pretty printer puts a space before the colon
        b'{\n  "items": [\n    {\n      "TOKEN":\t"x"\n    }\n  ]\n}',
        b'[{"a": 1}, {"b": {"api_key": 2}}]',
        b'{"a":1,"cvv":1}',
    ],
)
def test_prefilter_finds_keys_however_the_json_is_laid_out(body: bytes) -> None:
    from moesif_core.masking import may_hold_masked_field

    assert may_hold_masked_field(body, frozenset(DEFAULT_BODY_MASKS))


def test_prefilter_ignores_names_that_are_only_values() -> None:
    from moesif_core.masking import may_hold_masked_field

    names = frozenset(DEFAULT_BODY_MASKS)
    assert not may_hold_masked_field(b'{"kind": "token", "tags": ["password", "secret"]}', names)
    assert not may_hold_masked_field(b'{"a": "x\\"token\\": y"}', names)  # an escaped quote inside a value


def test_prefilter_folds_names_with_digits_signs_and_case_like_the_body() -> None:
    from moesif_core.masking import may_hold_masked_field

    names = frozenset({"api+key2", "pass word"})
    assert may_hold_masked_field(b'{"API+KEY2": 1}', names)
    assert may_hold_masked_field(b'{"pass word": 1}', names)
    assert not may_hold_masked_field(b'{"api_key": 1}', names)


def test_prefilter_walks_bodies_whose_keys_may_be_escaped() -> None:
    from moesif_core.masking import may_hold_masked_field

    assert may_hold_masked_field(b'{"x\\/y": 1}', frozenset({"x/y"}))
    assert not may_hold_masked_field(b'{"a": "\\n"}', frozenset({"x/y"}))
    assert may_hold_masked_field(b'{"a": 1}', frozenset({'quo"te'}))  # a name JSON must escape: always walked


def test_only_the_kelvin_sign_lower_cases_to_ascii_and_it_is_walked() -> None:
    from moesif_core.masking import may_hold_masked_field

    folding = [c for c in range(128, 0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c).lower().isascii()]
    assert folding == [0x212A]
    body = '{"api_\u212aey": "x"}'.encode()
    names = frozenset(DEFAULT_BODY_MASKS)
    assert may_hold_masked_field(body, names)
    assert mask_json(orjson.loads(body), names) == {"api_\u212aey": MASK}


def test_prefilter_walks_non_ascii_bodies_when_a_name_is_not_ascii() -> None:
    from moesif_core.masking import may_hold_masked_field

    names = frozenset({"contraseña"})
    assert may_hold_masked_field('{"CONTRASEÑA": 1}'.encode(), names)
    assert not may_hold_masked_field(b'{"clave": 1}', names)


@pytest.mark.parametrize(
    ("text", "overflows"),
    [
        (b"[1e400]", True),
        (b"[1E+309]", True),
        (b"[1.5e308]", True),  # three exponent digits: a false alarm at worst, and the parser decides
        (b"[1" + b"0" * 310 + b"]", True),
        (b"[1e-400]", False),
        (b"[1.5e30, 12345, -7]", False),
        (b'{"e": "0e00"}', False),
    ],
)
def test_overflow_check_finds_every_number_a_double_cannot_hold(text: bytes, overflows: bool) -> None:
    from moesif_core.json_fold import fold, may_overflow

    assert may_overflow(fold(text)) is overflows
