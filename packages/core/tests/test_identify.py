"""User and company ids from the authorization header: JWT (base64url), Basic, bare tokens, garbage."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from moesif_core.identify import Identifier, identify_from_headers, jwt_claims
from moesif_core.settings import Settings
from moesif_core.testing import make_jwt


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def settings(**extra: Any) -> Settings:
    return Settings.resolve({"APPLICATION_ID": "test-app-id", **extra}, environ={})


def test_bearer_jwt_whose_payload_has_url_safe_characters_gives_the_user_id() -> None:
    # Found by search: this payload's base64url text holds both '-' and '_', which the standard
    # alphabet rejects (the incumbents' bug).
    payload = None
    for n in range(2000):
        candidate = {"sub": f"user-{n}", "pad": "??>>" * (n % 7)}
        text = _segment(orjson.dumps(candidate))
        if "-" in text and "_" in text:
            payload = candidate
            break
    assert payload is not None
    token = make_jwt(payload)
    assert "-" in token.split(".")[1] and "_" in token.split(".")[1]
    assert identify_from_headers({"authorization": f"Bearer {token}"}, settings()) == (payload["sub"], None)


@pytest.mark.parametrize("sub", ["a", "ab", "abc", "abcd"])
def test_padding_is_restored_whatever_the_payload_length(sub: str) -> None:
    token = make_jwt({"sub": sub})
    assert "=" not in token
    assert Identifier().identify({"authorization": f"Bearer {token}"}) == (sub, None)


def test_padded_payload_is_accepted_too() -> None:
    header, payload, sig = make_jwt({"sub": "abc"}).split(".")
    padded = payload + "=" * (-len(payload) % 4)
    assert Identifier().identify({"authorization": f"Bearer {header}.{padded}.{sig}"}) == ("abc", None)


def test_dotted_claim_path_reaches_a_nested_id() -> None:
    token = make_jwt({"sub": "outer", "user": {"id": 42}})
    ident = Identifier(user_id_field="user.id")
    assert ident.identify({"authorization": f"Bearer {token}"}) == ("42", None)


def test_namespaced_claim_with_dots_in_its_name_is_found_whole() -> None:
    token = make_jwt({"https://example.com/user.id": "u-7"})
    ident = Identifier(user_id_field="https://example.com/user.id")
    assert ident.identify({"authorization": f"Bearer {token}"}) == ("u-7", None)


def test_claim_keys_compare_case_insensitively() -> None:
    token = make_jwt({"User": {"ID": "u-9"}, "SUB": "s-1"})
    assert Identifier(user_id_field="user.id").identify({"authorization": f"Bearer {token}"}) == ("u-9", None)
    assert Identifier(user_id_field="sub").identify({"authorization": f"Bearer {token}"}) == ("s-1", None)


def test_bearer_scheme_is_case_insensitive() -> None:
    token = make_jwt({"sub": "u1"})
    assert Identifier().identify({"authorization": f"bEaReR   {token}"}) == ("u1", None)


def test_numeric_claims_become_strings_and_unusable_ones_none() -> None:
    assert Identifier().identify({"authorization": f"Bearer {make_jwt({'sub': 12345})}"}) == ("12345", None)
    assert Identifier().identify({"authorization": f"Bearer {make_jwt({'sub': 7.0})}"}) == ("7", None)
    for unusable in (True, None, "", {"x": 1}, [1]):
        assert Identifier().identify({"authorization": f"Bearer {make_jwt({'sub': unusable})}"}) == (None, None)


def test_basic_gives_the_username_before_the_first_colon() -> None:
    creds = base64.b64encode(b"alice:pa:ss").decode()
    assert Identifier().identify({"authorization": f"Basic {creds}"}) == ("alice", None)
    assert Identifier().identify({"authorization": f"basic {creds}"}) == ("alice", None)


def test_basic_with_unpadded_base64_still_works() -> None:
    creds = base64.b64encode(b"bob:x").decode().rstrip("=")
    assert Identifier().identify({"authorization": f"Basic {creds}"}) == ("bob", None)


def test_bare_jwt_is_tried_when_there_is_no_scheme() -> None:
    assert Identifier().identify({"authorization": make_jwt({"sub": "bare"})}) == ("bare", None)


def test_jwt_behind_another_scheme_word_is_found() -> None:
    assert Identifier().identify({"authorization": f"JWT {make_jwt({'sub': 'x1'})}"}) == ("x1", None)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer a.!!!!.c",
        "Bearer a." + _segment(b"[1, 2]") + ".c",  # payload JSON but not an object
        "Bearer a." + _segment(b"\xff\xfe") + ".c",  # not UTF-8
        "Bearer a." + _segment(b'"sub"') + ".c",
        "Bearer a.x.c",  # one base64 char: impossible length
        "Basic !!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b":nouser").decode(),
        "Digest username=x",
        "...",
        "\x00\x01",
        "Bearer " + "a" * 20000,
    ],
)
def test_garbage_tokens_give_no_id_and_never_raise(value: str) -> None:
    assert Identifier().identify({"authorization": value}) == (None, None)


def test_non_string_header_values_give_no_id() -> None:
    assert Identifier().identify({"authorization": b"Bearer x"}) == (None, None)  # type: ignore[dict-item]


def test_company_claim_is_read_when_configured() -> None:
    token = make_jwt({"sub": "u1", "org": {"ID": "acme"}})
    s = settings(AUTHORIZATION_COMPANY_ID_FIELD="org.id")
    assert identify_from_headers({"authorization": f"Bearer {token}"}, s) == ("u1", "acme")
    assert identify_from_headers({"authorization": f"Bearer {token}"}, settings()) == ("u1", None)


def test_header_names_are_checked_in_order_case_insensitively() -> None:
    s = settings(AUTHORIZATION_HEADER_NAME="X-User-Token, Authorization")
    first = make_jwt({"sub": "from-custom"})
    second = make_jwt({"sub": "from-authorization"})
    both = {"x-user-token": f"Bearer {first}", "authorization": f"Bearer {second}"}
    assert identify_from_headers(both, s) == ("from-custom", None)
    assert identify_from_headers({"authorization": f"Bearer {second}"}, s) == ("from-authorization", None)


def test_only_the_first_comma_separated_credential_is_read() -> None:
    value = f"Bearer {make_jwt({'sub': 'first'})}, Bearer {make_jwt({'sub': 'second'})}"
    assert Identifier().identify({"authorization": value}) == ("first", None)


def test_missing_header_gives_no_id() -> None:
    assert Identifier().identify({}) == (None, None)
    assert Identifier().identify({"authorization": ""}) == (None, None)


def test_repeated_token_gives_the_same_answer_from_the_cache() -> None:
    ident = Identifier()
    headers = {"authorization": f"Bearer {make_jwt({'sub': 'again'})}"}
    assert ident.identify(headers) == ident.identify(headers) == ("again", None)


def test_jwt_claims_returns_the_payload_unverified() -> None:
    assert jwt_claims(make_jwt({"sub": "x", "n": 1})) == {"sub": "x", "n": 1}
    assert jwt_claims("nope") is None


def test_debug_log_names_the_reason_but_never_the_token(caplog: pytest.LogCaptureFixture) -> None:
    token = make_jwt({"sub": "secret-user-id"})
    s = settings(DEBUG=True)
    with caplog.at_level("DEBUG", logger="moesif"):
        assert identify_from_headers({"authorization": f"Bearer {token}"}, s) == ("secret-user-id", None)
        identify_from_headers({"authorization": "Bearer garbage"}, s)
    text = caplog.text
    assert "claim 'sub'" in text
    assert "not a JWT" in text
    assert token not in text and "secret-user-id" not in text and "garbage" not in text
