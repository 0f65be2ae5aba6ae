"""The native steps of recording a call give what the Python versions give, for any input."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moesif_core import request_path

native = pytest.mark.skipif(not request_path.NATIVE, reason="moesif_core._request_path is not built here")


def test_the_native_steps_are_built_where_the_project_expects_them() -> None:
    if os.environ.get("MOESIF_EXPECT_NATIVE"):
        assert request_path.NATIVE


class StrSubclass(str):
    pass


class OddKey:
    """A key whose hash runs Python code (and changes nothing)."""

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OddKey)


values = st.one_of(
    st.text(max_size=8),
    st.binary(max_size=4),
    st.integers(),
    st.none(),
    st.builds(StrSubclass, st.text(max_size=4)),
    st.tuples(st.integers()),
)
keys = st.one_of(
    st.text(max_size=12),
    st.builds(OddKey),
    st.sampled_from(["CONTENT_TYPE", "CONTENT_LENGTH", "CONTENT_TYPEX", "CONTENT_TYPF", "CONTENT_LENGTX", "CONTENT"]),
    st.sampled_from(["HTTP_", "HTTP", "HTTP-X", "http_x", "XTTP_A", "HXTP_A", "HTXP_A", "HTTX_A", "HTTPXA"]),  # one letter off
    st.builds(lambda rest: "HTTP_" + rest, st.text(max_size=6)),  # 1-, 2- and 4-byte str kinds
    st.builds(lambda rest: StrSubclass("HTTP_" + rest), st.text(max_size=3)),
)


@native
@given(st.dictionaries(keys, values, max_size=40))
def test_header_entries_is_the_python_version(environ: dict[Any, Any]) -> None:
    expected = {
        k: v
        for k, v in environ.items()
        if type(v) is str and type(k) is str and (k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH"))
    }
    assert request_path._py_header_entries(environ) == expected
    got = request_path.header_entries(environ)
    assert got == expected
    assert list(got) == list(expected)  # same order
    assert got is not environ


class Environ(Mapping[str, Any]):
    """Not a dict: read through items()."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@native
def test_header_entries_of_a_dict_subclass_and_of_another_mapping() -> None:
    data = {"PATH_INFO": "/a", "wsgi.input": object(), "HTTP_HOST": StrSubclass("h"), "HTTP_X": "1", "CONTENT_TYPE": "t"}
    headers = {"HTTP_X": "1", "CONTENT_TYPE": "t"}
    assert request_path.header_entries(type("Sub", (dict,), {})(data)) == headers
    assert request_path.header_entries(Environ(data)) == headers  # type: ignore[arg-type]


@native
@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_uuid4_text_is_the_uuid_module_s_text(bits: int) -> None:
    from moesif_core._request_path import uuid4_text

    assert uuid4_text(lambda n: bits) == str(uuid.UUID(int=bits, version=4))


@native
def test_uuid4_text_passes_on_what_getrandbits_raises_or_returns_wrong() -> None:
    from moesif_core._request_path import uuid4_text

    def broken(n: int) -> int:
        raise RuntimeError("no entropy")

    with pytest.raises(RuntimeError):
        uuid4_text(broken)
    with pytest.raises(TypeError):
        uuid4_text(lambda n: "not an int")  # type: ignore[arg-type, return-value]


def test_moesif_pure_python_keeps_the_extension_out() -> None:
    code = (
        "from moesif_core import headers, request_path as r; import uuid; t = r.new_transaction_id(); "
        "print(r.NATIVE, headers.NATIVE, r.header_entries({'HTTP_A': 'b', 'c': 'd'}), uuid.UUID(t).version)"
    )
    env = {**os.environ, "MOESIF_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "{'HTTP_A':", "'b'}", "4"]


def test_untrack_takes_an_object_out_of_the_gcs_view_and_leaves_the_rest_alone() -> None:
    container: list[Any] = [1]
    request_path.untrack(container)
    assert gc.is_tracked(container) is not request_path.NATIVE
    request_path.untrack(container)  # twice is harmless
    for atomic in (1, "text", b"bytes", None):
        request_path.untrack(atomic)  # objects the GC never tracks
    assert container == [1]


# ---------------------------------------------------------------- records made from an environ

ENVIRON_KEYS = [
    "REQUEST_METHOD",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "HTTP_X_MOESIF_TRANSACTION_ID",
    "HTTP_USER_AGENT",
    "wsgi.input",
]
environ_values = st.one_of(
    st.text(max_size=8),
    st.just(""),
    st.just(":"),
    st.text(min_size=120, max_size=140),
    st.integers(),
    st.none(),
    st.binary(max_size=3),
)


def record_fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in type(record).__slots__}


@native
@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from(ENVIRON_KEYS), environ_values), st.floats(0, 2e9), st.booleans())
def test_a_native_record_is_the_python_record(environ: dict[str, Any], now: float, with_id: bool) -> None:
    from moesif_core import record as record_module

    maker = record_module.native_record_from_environ
    assert maker is not None
    made = maker(environ, now, with_id)
    if made is None:
        return
    expected = record_fields(record_module._record_from_environ(environ, now, with_id))
    got = record_fields(made)
    incoming = environ.get("HTTP_X_MOESIF_TRANSACTION_ID")
    if with_id and not (incoming and len(incoming) <= 128):  # a new random id on each side
        assert uuid.UUID(got.pop("transaction_id")).version == 4
        expected.pop("transaction_id")
    assert got == expected
    assert type(made) is record_module.RawExchange


@native
def test_the_usual_environ_is_made_natively_and_odd_values_are_handed_back() -> None:
    from moesif_core import record as record_module

    maker = record_module.native_record_from_environ
    assert maker is not None
    usual = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "",
        "SERVER_NAME": "h",
        "SERVER_PORT": "",
        "HTTP_X": "1",
        "wsgi.input": object(),
    }
    made = maker(usual, 1.5, True)
    assert (made.host, made.path, made.request_headers) == ("h", "/", {"HTTP_X": "1"})
    assert maker({**usual, "PATH_INFO": 7}, 1.5, True) is None
    assert maker({**usual, "HTTP_HOST": b"h"}, 1.5, True) is None
    assert maker(dict(usual), 1, True) is None  # an int time: the Python version
    assert record_module.record_from_environ({**usual, "PATH_INFO": 7}, 1.5, False).path == 7


def test_no_native_maker_for_a_prototype_with_a_default_every_record_would_share() -> None:
    from moesif_core.record import RawExchange

    shared = type("Shared", (), {"__slots__": RawExchange.__slots__})
    usual = RawExchange()

    def prototype(**changes: Any) -> Any:
        made = shared()
        for name in RawExchange.__slots__:
            setattr(made, name, changes.get(name, getattr(usual, name)))
        return made

    if request_path.NATIVE:
        assert request_path.native_record_maker(prototype(), 1024) is not None
    assert request_path.native_record_maker(prototype(request_headers=[]), 1024) is None
    assert request_path.native_record_maker(prototype(metadata={}), 1024) is None


# ---------------------------------------------------------------- a record handed to the queue

weighed_values = st.one_of(
    st.none(),
    st.binary(max_size=50),
    st.binary(max_size=50).map(bytearray),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=5),
    st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=5),
    st.lists(st.tuples(st.binary(max_size=3), st.binary(max_size=3)), max_size=5).map(tuple),
    st.text(max_size=5),
    st.integers(),
)


@native
@given(request_body=weighed_values, response_body=weighed_values, request_headers=weighed_values, response_headers=weighed_values)
def test_hand_over_weighs_a_record_as_estimated_size_does(
    request_body: Any, response_body: Any, request_headers: Any, response_headers: Any
) -> None:
    from moesif_core import record as record_module

    record = record_module.RawExchange()
    record.request_body, record.response_body = request_body, response_body
    record.request_headers, record.response_headers = request_headers, response_headers
    try:
        expected: Any = record.estimated_size()
    except TypeError as exc:  # len() of an int, or of None where a header list belongs
        expected = type(exc)
    assert gc.is_tracked(record)
    try:
        got: Any = record_module.hand_over(record)
    except TypeError as exc:
        got = type(exc)
    assert got == expected
    assert not gc.is_tracked(record)


@native
def test_hand_over_asks_a_record_of_another_class_itself() -> None:
    from moesif_core import record as record_module

    class Heavier(record_module.RawExchange):
        __slots__ = ()

        def estimated_size(self) -> int:
            return 7

    assert record_module.hand_over(Heavier()) == 7
    assert record_module.hand_over(record_module.RawExchange()) == record_module.RawExchange().estimated_size() == 1024


# ---------------------------------------------------------------- records made from an ASGI scope

header_names = st.sampled_from(
    [b"host", b"content-length", b"transfer-encoding", b"x-moesif-transaction-id", b"x-other", b"Host"]
)
header_values = st.one_of(st.binary(max_size=6), st.just(b"0"), st.just(b""), st.binary(min_size=120, max_size=140))
header_items = st.one_of(
    st.tuples(header_names, header_values),
    st.tuples(header_names, header_values).map(list),  # the spec's pairs may be any two-item iterable
    st.tuples(header_names, st.text(max_size=3)),
)
scope_values = {
    "method": st.one_of(st.sampled_from(["GET", "POST"]), st.none(), st.integers()),
    "scheme": st.one_of(st.sampled_from(["http", "https"]), st.none()),
    "headers": st.one_of(st.lists(header_items, max_size=6), st.lists(header_items, max_size=3).map(tuple), st.none()),
    "root_path": st.one_of(st.sampled_from(["", "/api", "/api/"]), st.none(), st.text(max_size=4)),
    "path": st.one_of(st.sampled_from(["", "/", "/api", "/api/x", "/x"]), st.text(max_size=6), st.none()),
    "query_string": st.one_of(st.binary(max_size=6), st.none(), st.text(max_size=2)),
    "client": st.one_of(st.none(), st.tuples(st.text(max_size=4), st.integers(0, 9)), st.just(()), st.just(["a", 1])),
    "server": st.one_of(st.none(), st.tuples(st.text(max_size=4), st.one_of(st.none(), st.integers(0, 9)))),
}
USUAL_SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "scheme": "http",
    "root_path": "",
    "path": "/",
    "query_string": b"",
    "client": ("127.0.0.1", 5000),
    "server": ("127.0.0.1", 8000),
}
# The usual scope with some fields changed or left out, and a header list that mostly has a host.
mount_points = st.sampled_from(["", "/api", "/api/", "/a"])
scopes = st.builds(
    lambda root, rest, changes, dropped, host, headers: {
        **{k: v for k, v in USUAL_SCOPE.items() if k not in dropped},
        "root_path": root,
        "path": root + rest,  # newer servers: the mount point in path too
        "headers": [(b"host", host), *headers] if host is not None else headers,
        **changes,
    },
    mount_points,
    st.sampled_from(["", "/", "x", "/x/y", "é"]),
    st.lists(st.sampled_from(sorted(scope_values)), max_size=2, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({key: scope_values[key] for key in keys})
    ),
    st.sets(st.sampled_from(sorted(USUAL_SCOPE)), max_size=2),
    st.one_of(st.just(b"h:1"), header_values, st.none()),
    st.lists(st.tuples(header_names, header_values), max_size=5),
)


@native
@settings(max_examples=800, deadline=None)
@given(scopes, st.floats(0, 2e9), st.booleans())
def test_a_native_scope_record_is_the_python_record(scope: dict[str, Any], now: float, with_id: bool) -> None:
    from moesif_core import record as record_module

    maker = record_module.native_record_from_scope
    assert maker is not None
    before = dict(scope)
    made = maker(scope, now, with_id)
    assert scope == before  # the C version only reads
    try:
        expected_record, expected_body = record_module._record_from_scope(dict(scope), now, with_id)
    except Exception:  # an odd scope the Python version cannot read either: C must have handed it back
        assert made is None
        return
    if made is None:
        return
    record, has_body = made
    expected = record_fields(expected_record)
    got = record_fields(record)
    incoming = next((v for k, v in reversed(scope.get("headers") or []) if k == b"x-moesif-transaction-id"), None)
    if with_id and not (incoming and len(incoming) <= 128):  # a new random id on each side
        assert uuid.UUID(got.pop("transaction_id")).version == 4
        expected.pop("transaction_id")
    assert got == expected
    assert has_body is expected_body
    assert type(record) is record_module.RawExchange
    assert record.request_headers is scope["headers"]  # the server's list, not a copy


@native
def test_the_usual_scope_is_made_natively_and_odd_ones_are_handed_back() -> None:
    from moesif_core import record as record_module

    maker = record_module.native_record_from_scope
    assert maker is not None
    usual = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "root_path": "/api",
        "path": "/api/items",
        "query_string": b"a=1",
        "headers": [(b"host", b"h:8000"), (b"content-length", b"2"), (b"x-moesif-transaction-id", b"t1")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    made = maker(usual, 1.5, True)
    assert made is not None
    record, has_body = made
    assert (record.host, record.path, record.root_path, record.query_string, record.client_addr) == (
        "h:8000",
        "/items",
        "/api",
        "a=1",
        "127.0.0.1",
    )
    assert (record.transaction_id, record.request_header_style, has_body) == ("t1", "asgi", True)
    assert maker({**usual, "headers": [(b"content-length", b"0")]}, 1.5, True) is None  # the host from "server"
    assert maker({**usual, "headers": iter([])}, 1.5, True) is None
    assert maker({**usual, "path": None}, 1.5, True) is None
    assert maker(usual, 1, True) is None  # an int time: the Python version
    odd = {**usual, "headers": iter([(b"content-length", b"0")])}
    record, has_body = record_module.record_from_scope(odd, 1.5, False)
    assert (record.host, has_body, odd["headers"]) == ("127.0.0.1:8000", False, [(b"content-length", b"0")])
