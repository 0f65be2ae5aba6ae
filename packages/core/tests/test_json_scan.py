"""The native one-pass body check: never "yes" for what is not valid, unmasked, in-range JSON.

"No" only costs time (the exact path runs), "yes" puts the bytes into the batch as they are, so
the properties below hold the scanner to: yes => orjson reads it, it is UTF-8, and no key at any
depth needs masking; and to saying yes for ordinary bodies, or it would not be worth having.
"""

from __future__ import annotations

import json
import os
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from moesif_core import json_scan
from moesif_core.body_codec import decode_body
from moesif_core.event_builder import EventBuilder
from moesif_core.masking import DEFAULT_BODY_MASKS, KeyFinder, mask_json
from moesif_core.record import RawExchange
from moesif_core.settings import Settings

NAMES = DEFAULT_BODY_MASKS | {"x-secret", "api key"}

native = pytest.mark.skipif(not json_scan.NATIVE, reason="moesif_core._json_scan is not built here")


def test_the_native_check_is_built_where_the_project_expects_it() -> None:
    # The project's test environment builds it (a C compiler is part of the machine): if the
    # build silently fell back to pure Python, the tests below would all skip without this one.
    if os.environ.get("MOESIF_EXPECT_NATIVE"):
        assert json_scan.NATIVE


def test_no_check_for_names_it_cannot_compare_byte_for_byte() -> None:
    assert json_scan.plain_json_check(frozenset({"caf\u00e9"})) is None
    assert json_scan.plain_json_check(frozenset({'a"b'})) is None
    if json_scan.NATIVE:
        assert json_scan.plain_json_check(NAMES) is json_scan.plain_json_check(NAMES)  # made once per name set
        assert json_scan.plain_json_check(frozenset()) is not None


def keys_to_mask(value: Any, names: frozenset[str]) -> bool:
    if isinstance(value, dict):
        return any(key.lower() in names or keys_to_mask(item, names) for key, item in value.items())
    if isinstance(value, list):
        return any(keys_to_mask(item, names) for item in value)
    return False


def assert_yes_is_right(data: bytes, names: frozenset[str] = NAMES) -> bool:
    check = json_scan.plain_json_check(names)
    assert check is not None
    plain = check(data)
    if plain:
        value = orjson.loads(data)  # raises if the bytes are not JSON orjson reads
        data.decode("utf-8")
        assert isinstance(value, (dict, list))
        assert not keys_to_mask(value, names)
    return plain


@native
@pytest.mark.parametrize(
    "data",
    [
        b"{}",
        b"[]",
        b' \n\t\r{"a": [1, -0, 0.5, -1.25e-7, 2E+10, true, false, null, "x"]} \n',
        b'{"nested": {"deeper": [[[{"k": "v"}]]]}}',
        '{"caf\u00e9": "\u00fc\U0001f600", "\u4e2d": 1}'.encode(),  # non-ASCII keys cannot be a listed name
        b'{"emoji": "\\ud83d\\ude00", "esc": "\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000"}',
        b'{"a": "\x7f"}',
        b"[" + b"9" * 250 + b"]",  # a big integer, but within a double's range
        b"[1e99, 1" + b"0" * 200 + b"e99]",
        b'{"passwords": 1, "tokenized": 2, "my_token": 3}',  # near misses are not names
        b"[" * 255 + b"]" * 255,
    ],
)
def test_yes_for_valid_bodies_without_names(data: bytes) -> None:
    assert assert_yes_is_right(data)


@native
@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"   ", "only whitespace"),
        (b'"text"', "a scalar at the top"),
        (b"123", "a scalar at the top"),
        (b"\xef\xbb\xbf{}", "a byte order mark (the caller strips it)"),
        (b'{"a": 1,}', "a trailing comma"),
        (b"[1,]", "a trailing comma"),
        (b"[,1]", "a leading comma"),
        (b'{"a" 1}', "no colon"),
        (b'{"a": }', "no value"),
        (b"{a: 1}", "an unquoted key"),
        (b"{1: 1}", "a number as key"),
        (b"[01]", "a leading zero"),
        (b"[-]", "a sign alone"),
        (b"[1.]", "no fraction digits"),
        (b"[.5]", "no integer digits"),
        (b"[1e]", "no exponent digits"),
        (b"[+1]", "a plus sign"),
        (b"[NaN]", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[tru]", "a cut literal"),
        (b"[nulll]", "a long literal"),
        (b"[1 2]", "two values"),
        (b"[1] [2]", "two documents"),
        (b"[1] x", "trailing bytes"),
        (b"[1]\x00", "a trailing NUL"),
        (b"[1", "cut short"),
        (b'{"a": "x', "an unterminated string"),
        (b'["a\x01"]', "a control character in a string"),
        (b'["a\x00b"]', "a NUL in a string"),
        (b'{"a\x00": 1}', "a NUL in a key"),
        (b"[1,\x00 2]", "a NUL between values"),
        (b'["abc', "cut inside a string, at the NUL after every bytes object"),
        (b"[1, ", "cut after a comma"),
        (b'["a\tb"]', "a raw tab in a string"),
        (b'["\\x"]', "an unknown escape"),
        (b'["\\u12"]', "a short unicode escape"),
        (b'["\\u12G4"]', "a bad hex digit"),
        (b'["\\ud800"]', "a lone high surrogate"),
        (b'["\\udc00"]', "a lone low surrogate"),
        (b'["\\ud800\\u0041"]', "a high surrogate without its low half"),
        (b'["\xff"]', "not UTF-8"),
        (b'["\xc0\xaf"]', "an overlong form"),
        (b'["\xed\xa0\x80"]', "an encoded surrogate"),
        (b'["\xf4\x90\x80\x80"]', "past U+10FFFF"),
        (b'["\xe2\x82"]', "a cut sequence"),
        (b"[1e400]", "overflows a double"),
        (b"[1e-400]", "a three-digit exponent"),
        (b"[1e100]", "a three-digit exponent"),
        (b"[" + b"9" * 299 + b"e99]", "overflows a double (299 digits and e99)"),
        (b"[" + b"9" * 301 + b"]", "overflows a double"),
        (b"[" * 256 + b"]" * 256, "nested deeper than the native check follows"),
        (b'{"password": "x"}', "a name"),
        (b'{"PassWord": "x"}', "a name in another case"),
        (b'{"a": [{"b": {"access_token": 1}}]}', "a name deep down"),
        (b'{"api key": 1}', "a name with a space"),
        (b'{"X-Secret": 1}', "a name with a dash"),
        (b'{"pass\\u0077ord": "x"}', "a key with an escape"),
        (b'{"a\\"b": 1}', "a key with an escape"),
        ('{"\u212aey": 1}'.encode(), "the KELVIN SIGN, whose lower() is ASCII"),
    ],
)
def test_no_for_everything_else(data: bytes, why: str) -> None:
    assert not assert_yes_is_right(data), why


@native
def test_names_are_whole_keys_compared_without_case() -> None:
    check = json_scan.plain_json_check(frozenset({"token"}))
    assert check is not None
    assert not check(b'{"TOKEN": 1}')
    assert check(b'{"token_type": 1, "tokens": 2, "a": "token"}')  # values and longer keys are not names
    assert check(memoryview(b'{"a": 1}')) is True  # any buffer (scanned as a bytes copy)
    assert check(bytearray(b'{"a": "x')) is False
    assert check(memoryview(b'["x"]  trailing')[:5]) is True


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f == 0 or 1e-90 < abs(f) < 1e90),
    st.text(),
)
keys = st.text(max_size=10).filter(lambda key: key.lower() not in NAMES)
json_documents = st.recursive(
    json_leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=30,
).filter(lambda value: isinstance(value, (dict, list)))


def encodings(value: Any) -> list[tuple[bytes, bool]]:
    """The same document the way servers write it: compact, indented, ASCII-escaped (Python's json);
    with each, whether non-ASCII text was escaped."""
    return [
        (orjson.dumps(value), False),
        (orjson.dumps(value, option=orjson.OPT_INDENT_2), False),
        (json.dumps(value).encode(), True),
        (json.dumps(value, ensure_ascii=False, indent=1).encode(), False),
    ]


def key_written_with_escape(value: Any, ascii_only: bool) -> bool:
    """Whether some key, at any depth, is written with an escape or the KELVIN SIGN (then "no" is right)."""
    if isinstance(value, dict):
        for key, item in value.items():
            # Python's json with ensure_ascii escapes everything outside " " to "~", DEL included.
            if any(ord(c) < 0x20 or c in '"\\' or c == "\u212a" for c in key) or (
                ascii_only and any(not " " <= c <= "~" for c in key)
            ):
                return True
            if key_written_with_escape(item, ascii_only):
                return True
    elif isinstance(value, list):
        return any(key_written_with_escape(item, ascii_only) for item in value)
    return False


@native
@hsettings(max_examples=300, deadline=None)
@given(value=json_documents)
def test_yes_for_valid_documents_without_names(value: Any) -> None:
    for data, ascii_only in encodings(value):
        if key_written_with_escape(value, ascii_only):
            assert_yes_is_right(data)
        else:
            assert assert_yes_is_right(data), data


@native
@hsettings(max_examples=500, deadline=None)
@given(
    value=json_documents,
    name=st.sampled_from(sorted(NAMES)),
    upper=st.booleans(),
    position=st.integers(0, 10_000),
    mutation=st.binary(min_size=1, max_size=4),
    cut=st.integers(0, 10_000),
)
@example(value={"a": 1}, name="token", upper=False, position=0, mutation=b"\\", cut=0)
def test_yes_is_never_wrong_on_near_json(value: Any, name: str, upper: bool, position: int, mutation: bytes, cut: int) -> None:
    """Documents with a listed key planted, and documents with bytes changed, inserted or cut."""
    planted = {name.upper() if upper else name: "x", "rest": value}
    assert not assert_yes_is_right(orjson.dumps(planted))
    assert not assert_yes_is_right(orjson.dumps([value, planted]))
    for data, _ in encodings(value):
        at = position % (len(data) + 1)
        assert_yes_is_right(data[:at] + mutation + data[at:])
        assert_yes_is_right(data[:at] + mutation + data[at + len(mutation) :])
        assert_yes_is_right(data[: len(data) - cut % (len(data) + 1)])


@native
@hsettings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_yes_is_never_wrong_on_any_bytes(data: bytes) -> None:
    assert_yes_is_right(data)
    assert_yes_is_right(b"[" + data + b"]")
    assert_yes_is_right(b'{"a":"' + data + b'"}')


# -- the same events with and without it ----------------------------------------------------------


def pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moesif_core.event_builder.plain_json_check", lambda names: None)


BODIES = [
    b'{"order": 1, "items": [{"sku": "A", "price": 19.99}]}',
    b'{"user": {"Password": "hunter2", "name": "ada"}}',
    b'{"pass\\u0077ord": "hunter2"}',
    b"[1e400]",
    b"[" + b"9" * 299 + b"e99]",
    b'{"a": 1,}',
    b"not json",
    '{"\u212aey": "k"}'.encode(),
]


@native
@pytest.mark.parametrize("body", BODIES)
def test_events_are_the_same_with_or_without_the_native_check(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.resolve({"APPLICATION_ID": "app", "RESPONSE_BODY_MASKS": ["key"]})
    record = RawExchange()
    record.method = "POST"
    record.host = "example.com"
    record.path = "/echo"
    record.request_headers = [("Content-Type", "application/json")]
    record.response_headers = [("Content-Type", "application/json")]
    record.request_body = record.response_body = body
    record.status = 200
    fast = EventBuilder(settings).build_json(record)
    pure_python(monkeypatch)
    slow = EventBuilder(settings).build_json(record)
    assert fast is not None and slow is not None
    assert orjson.loads(fast) == orjson.loads(slow)
    assert b"hunter2" not in fast


@native
@hsettings(max_examples=300, deadline=None)
@given(value=json_documents, name=st.sampled_from(sorted(NAMES)), plant=st.booleans())
def test_decode_body_gives_the_same_value_with_or_without_it(value: Any, name: str, plant: bool) -> None:
    names = frozenset(NAMES)
    document = {"rest": value, name.title(): "secret value"} if plant else value
    check = json_scan.plain_json_check(names)
    finder = KeyFinder.of(names)
    for data, _ in encodings(document):
        hooks: dict[str, Any] = {"json_masker": lambda parsed: mask_json(parsed, names), "mask_prefilter": finder.may_match}
        fast = decode_body(data, None, None, 1 << 20, embed=True, plain_check=check, **hooks)
        slow = decode_body(data, None, None, 1 << 20, embed=True, **hooks)
        assert fast.transfer_encoding == slow.transfer_encoding
        as_value = [
            orjson.loads(orjson.dumps(body)) if isinstance(body, orjson.Fragment) else body for body in (fast.body, slow.body)
        ]
        assert as_value[0] == as_value[1]
        if plant:
            assert b"secret value" not in orjson.dumps(fast.body)


def test_moesif_pure_python_keeps_the_extension_out() -> None:
    import subprocess
    import sys

    code = "from moesif_core import json_scan; print(json_scan.NATIVE, json_scan.plain_json_check(frozenset()))"
    env = {**os.environ, "MOESIF_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "None"]
