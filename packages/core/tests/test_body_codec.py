"""Body bytes -> (body, transfer_encoding): JSON objects and arrays as JSON, the rest base64, gzip undone."""

from __future__ import annotations

import base64
import gzip
import zlib

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from moesif_core.body_codec import decode_body, decompress, encode_body


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_no_body_gives_nulls() -> None:
    assert encode_body(None) == (None, None)
    assert encode_body(b"") == (None, None)


@pytest.mark.parametrize("text", [b'{"a": [1, 2, {"b": null}]}', b"[1, 2, 3]", b'  \n {"a": 1}', b"[]"])
def test_json_objects_and_arrays_go_as_json(text: bytes) -> None:
    assert encode_body(text, None, "application/json") == (orjson.loads(text), "json")


def test_json_with_a_byte_order_mark_goes_as_json() -> None:
    assert encode_body(b'\xef\xbb\xbf{"a": 1}') == ({"a": 1}, "json")


def test_json_is_detected_whatever_the_content_type_says() -> None:
    assert encode_body(b'{"a": 1}', None, "text/plain") == ({"a": 1}, "json")


@pytest.mark.parametrize("text", [b"42", b'"a string"', b"true", b"null", b"3.5"])
def test_json_scalars_go_as_base64(text: bytes) -> None:
    assert encode_body(text, None, "application/json") == (b64(text), "base64")


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)), b"<xml><a>1</a></xml>", b"plain text", b"a=1&b=2", b'{"broken": ', b"[1, 2", b'{"nan": NaN}'],
)
def test_anything_else_goes_as_standard_base64(data: bytes) -> None:
    assert encode_body(data, None, "application/octet-stream") == (b64(data), "base64")


def test_gzip_body_is_decoded_first() -> None:
    raw = orjson.dumps({"hello": "world", "n": list(range(50))})
    assert encode_body(gzip.compress(raw), "gzip", "application/json") == (orjson.loads(raw), "json")
    assert encode_body(gzip.compress(b"some text"), "GZIP", "text/plain") == (b64(b"some text"), "base64")


def test_truncated_gzip_stream_gives_what_it_holds() -> None:
    raw = b"line of text that repeats with a counter " + b"".join(b"%d " % i for i in range(5000))
    compressed = gzip.compress(raw)
    cut = compressed[: len(compressed) // 2]
    body, encoding = encode_body(cut, "gzip", "text/plain")
    assert encoding == "base64"
    decoded = base64.b64decode(body)
    assert len(decoded) > 1000
    assert raw.startswith(decoded)


def test_deflate_zlib_wrapped_and_raw_are_both_decoded() -> None:
    raw = b'{"k": "v"}'
    assert encode_body(zlib.compress(raw), "deflate") == ({"k": "v"}, "json")
    raw_deflate = zlib.compressobj(wbits=-15)
    data = raw_deflate.compress(raw) + raw_deflate.flush()
    assert encode_body(data, "deflate") == ({"k": "v"}, "json")


def test_layered_encodings_are_undone_right_to_left() -> None:
    raw = b'[1, "two"]'
    assert encode_body(gzip.compress(zlib.compress(raw)), "deflate, gzip") == ([1, "two"], "json")


def test_concatenated_gzip_members_are_all_decoded() -> None:
    data = gzip.compress(b'{"a": ') + gzip.compress(b"1}")
    assert encode_body(data, "gzip") == ({"a": 1}, "json")


def test_body_already_decoded_despite_the_header_is_taken_as_is() -> None:
    # requests decodes responses but keeps Content-Encoding: gzip.
    assert encode_body(b'{"a": 1}', "gzip", "application/json") == ({"a": 1}, "json")


def test_corrupt_gzip_goes_as_the_raw_bytes_in_base64() -> None:
    data = b"\x1f\x8b\x08\x00" + b"\xff" * 40
    assert encode_body(data, "gzip") == (b64(data), "base64")


def test_unsupported_encoding_goes_as_the_raw_bytes_in_base64() -> None:
    assert encode_body(b"\x0b\x02\x80", "br") == (b64(b"\x0b\x02\x80"), "base64")


def test_zip_bomb_is_capped_and_marked_cut() -> None:
    bomb = gzip.compress(b"\x00" * (50 * 1024 * 1024))  # 50 MB of zeros in ~50 KB
    assert len(bomb) < 100_000
    decoded = decode_body(bomb, "gzip", None, 64 * 1024)
    assert decoded.transfer_encoding == "base64"
    assert decoded.cut is True
    assert len(base64.b64decode(decoded.body)) == 64 * 1024


def test_json_bomb_is_cut_and_not_parsed() -> None:
    raw = b"[" + b"0," * 1_000_000 + b"0]"
    decoded = decode_body(gzip.compress(raw), "gzip", "application/json", 10_000)
    assert decoded.transfer_encoding == "base64" and decoded.cut


def test_decompress_reports_failure_as_none() -> None:
    assert decompress(b"\x78\x9c\xff\xff\xff", "deflate", 100) is None
    assert decompress(b"abc", "compress", 100) is None
    assert decompress(b"abc", "identity", 100) == (b"abc", False)


def test_form_masker_runs_only_on_urlencoded_bodies() -> None:
    seen: list[bytes] = []

    def masker(data: bytes) -> bytes:
        seen.append(data)
        return b"masked"

    assert decode_body(b"a=1", None, "application/x-www-form-urlencoded; charset=utf-8", 100, form_masker=masker).body == b64(
        b"masked"
    )
    assert decode_body(b"a=1", None, "text/plain", 100, form_masker=masker).body == b64(b"a=1")
    assert seen == [b"a=1"]


def test_json_masker_gets_the_parsed_value() -> None:
    decoded = decode_body(b'{"a": 1}', None, None, 100, json_masker=lambda value: {**value, "b": 2})
    assert decoded.body == {"a": 1, "b": 2} and decoded.transfer_encoding == "json"


def test_a_body_that_is_not_bytes_is_ignored_not_converted() -> None:
    # bytes(n) of an int would allocate n bytes: a wrong type must cost nothing.
    assert decode_body(2_000_000_000, None, None, 100) == (None, None, False)  # type: ignore[arg-type]
    assert decode_body("text", None, None, 100) == (None, None, False)  # type: ignore[arg-type]
    assert encode_body(bytearray(b"[1]")) == ([1], "json")


# -- embedding: JSON bodies go into the event as their own bytes ---------------------------------


def embedded(data: bytes, **hooks: object) -> object:
    return decode_body(data, None, "application/json", 1 << 20, embed=True, **hooks).body  # type: ignore[arg-type]


def test_embedded_json_keeps_the_bytes_as_sent() -> None:
    text = b'{"price": 1.10, "big": 123456789012345678901234567890, "list" : [ 1 ]}'
    body = embedded(text)
    assert isinstance(body, orjson.Fragment)
    assert orjson.dumps({"body": body}) == b'{"body":' + text + b"}"


def test_embedding_drops_the_byte_order_mark() -> None:
    assert orjson.dumps(embedded(b'\xef\xbb\xbf{"a": 1}')) == b'{"a": 1}'


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1e400}',  # valid JSON that overflows a double: orjson refuses it, so the parse path decides
        b'{"a": 1E+309}',
        b"[1" + b"0" * 320 + b"]",
        b"[" + b"9" * 299 + b"e99]",  # 299 digits are not 300, but e99 takes it past a double
        b'{"a": "\xff"}',  # not UTF-8
        b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"a": 1,}',
        b'{"a": 1} trailing',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_bodies_that_cannot_be_embedded_take_the_parsing_path(text: bytes) -> None:
    with_embed = decode_body(text, None, "application/json", 1 << 20, embed=True)
    without = decode_body(text, None, "application/json", 1 << 20)
    assert not isinstance(with_embed.body, orjson.Fragment)
    assert with_embed == without


def test_a_raised_recursion_limit_does_not_let_deep_bodies_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "getrecursionlimit", lambda: 100_000)
    deep = b"[" * 600 + b"]" * 600
    assert not isinstance(embedded(deep), orjson.Fragment)
    assert isinstance(embedded(b"[" * 100 + b"]" * 100), orjson.Fragment)


def test_a_body_that_may_hold_a_masked_key_is_parsed_and_masked() -> None:
    seen: list[object] = []

    def masker(value: object) -> object:
        seen.append(value)
        return {"masked": True}

    body = embedded(b'{"password": "x"}', json_masker=masker, mask_prefilter=lambda data, folded: b'"password"' in folded)
    assert body == {"masked": True} and seen == [{"password": "x"}]
    clean = embedded(b'{"name": "x"}', json_masker=masker, mask_prefilter=lambda data, folded: False)
    assert isinstance(clean, orjson.Fragment) and len(seen) == 1


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False), st.text()
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=25,
)


@hsettings(max_examples=400, deadline=None)
@given(
    value=json_values,
    pretty=st.booleans(),
    cut=st.integers(0, 40),
    noise=st.binary(max_size=3),
)
def test_embedding_never_changes_what_the_event_says(value: object, pretty: bool, cut: int, noise: bytes) -> None:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
    # Also bodies that are almost JSON: a few bytes changed somewhere.
    for data in (text, text[: len(text) - cut] + noise + text[len(text) - cut :]):
        fast = decode_body(data, None, None, 1 << 20, embed=True)
        slow = decode_body(data, None, None, 1 << 20)
        assert fast.transfer_encoding == slow.transfer_encoding
        if isinstance(fast.body, orjson.Fragment):
            assert orjson.loads(orjson.dumps(fast.body)) == slow.body
        else:
            assert fast.body == slow.body
