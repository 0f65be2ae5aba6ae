"""The native header normalisation gives exactly the Python path's dict, or hands over.

``moesif_core._headers.normalize`` answers only the common shapes and says None otherwise; the
properties hold every dict it returns to the Python path's, order included, over header lists
with repeats, mixed case, non-ASCII names, odd types and odd items.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moesif_core import headers as headers_module

native = pytest.mark.skipif(not headers_module.NATIVE, reason="moesif_core._headers is not built here")


def test_the_native_normalisation_is_built_where_the_project_expects_it() -> None:
    if os.environ.get("MOESIF_EXPECT_NATIVE"):
        assert headers_module.NATIVE


def python_path(headers: Any, style: str) -> dict[str, str]:
    try:
        return headers_module._fast(headers, style)
    except Exception:
        return headers_module._careful(headers, style)


def check(headers: Any, style: str) -> None:
    from moesif_core._headers import normalize

    got = normalize(headers, style)
    if got is not None:
        expected = python_path(headers, style)
        assert got == expected
        assert list(got) == list(expected)
    assert list(headers_module.normalize_headers(headers, style).items()) == list(python_path(headers, style).items())


names = st.sampled_from(["Host", "host", "Accept", "X-Trace", "x-trace", "Content-Type", "", "É", "x_y", "Set-Cookie"])
latin = st.text(alphabet=st.characters(max_codepoint=255), max_size=6)


class Sub(str):
    pass


@native
@given(
    st.lists(
        st.tuples(
            st.one_of(names.map(lambda n: n.encode("utf-8")), latin.map(lambda t: t.encode("latin-1"))),
            latin.map(lambda t: t.encode("latin-1")),
        ),
        max_size=12,
    )
)
def test_asgi_lists(pairs: list[tuple[bytes, bytes]]) -> None:
    check(pairs, "asgi")
    check(tuple(pairs), "asgi")
    check([list(pair) for pair in pairs], "asgi")


@native
@given(st.lists(st.tuples(st.one_of(names, latin), latin), max_size=12))
def test_pair_lists(pairs: list[tuple[str, str]]) -> None:
    check(pairs, "pairs")
    check(tuple(pairs), "pairs")


odd_items = st.one_of(
    st.tuples(st.text(max_size=3), st.binary(max_size=3)),
    st.tuples(st.binary(max_size=3), st.text(max_size=3)),
    st.tuples(st.builds(Sub, st.text(max_size=3)), st.text(max_size=3)),
    st.tuples(st.text(max_size=3), st.none()),
    st.tuples(st.integers(), st.integers()),
    st.just(("a", "b", "c")),
    st.just(("only",)),
    st.builds(bytearray, st.binary(max_size=3)).map(lambda b: (bytes(b), b)),
)


@native
@given(st.lists(odd_items, max_size=6), st.sampled_from(["asgi", "pairs", "wsgi"]))
def test_odd_lists_are_handed_over_or_match(pairs: list[Any], style: str) -> None:
    check(pairs, style)


environ_keys = st.one_of(
    st.sampled_from(
        [
            "HTTP_HOST",
            "HTTP_X_TRACE",
            "HTTP_x_trace",
            "CONTENT_TYPE",
            "CONTENT_LENGTH",
            "HTTP_",
            "REQUEST_METHOD",
            "wsgi.input",
            "HTTP_É",
        ]
    ),
    st.text(max_size=8).map(lambda t: "HTTP_" + t),
    st.text(max_size=8),
)
environ_values = st.one_of(latin, st.builds(Sub, latin), st.integers(), st.none(), st.binary(max_size=3))


@native
@given(st.dictionaries(environ_keys, environ_values, max_size=14))
def test_environs(environ: dict[str, Any]) -> None:
    check(environ, "environ")
    environ[b"HTTP_BYTES"] = "x"  # type: ignore[index]
    check(environ, "environ")


@native
def test_the_usual_shapes_are_answered_natively() -> None:
    from moesif_core._headers import normalize

    assert normalize([(b"Accept", b"a"), (b"accept", b"b"), (b"X-L", b"caf\xe9")], "asgi") == {"accept": "a, b", "x-l": "caf\xe9"}
    assert normalize([("Content-Type", "t"), ("Set-Cookie", "1"), ("set-cookie", "2")], "pairs") == {
        "content-type": "t",
        "set-cookie": "1, 2",
    }
    environ = {"HTTP_X_FORWARDED_FOR": "1.2.3.4", "CONTENT_TYPE": "a/b", "PATH_INFO": "/", "wsgi.input": object()}
    assert normalize(environ, "environ") == {"x-forwarded-for": "1.2.3.4", "content-type": "a/b"}
    assert normalize([("HTTP_HOST", "h")], "wsgi") is None


@native
@pytest.mark.parametrize("style", [None, 3, b"asgi", "\ud800"])
def test_a_style_that_is_not_a_plain_str_is_handed_over(style: Any) -> None:
    # A record's fields may hold anything (the event builder must survive them): never raise.
    from moesif_core._headers import normalize

    assert normalize([""], style) is None
    assert headers_module.normalize_headers([("a", "b")], style) == python_path([("a", "b")], style)
