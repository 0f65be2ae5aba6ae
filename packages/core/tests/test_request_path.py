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
keys = st.one_of(st.text(max_size=12), st.builds(OddKey))


@native
@given(st.dictionaries(keys, values, max_size=40))
def test_str_entries_is_the_comprehension(environ: dict[Any, Any]) -> None:
    expected = {k: v for k, v in environ.items() if type(v) is str}
    got = request_path.str_entries(environ)
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
def test_str_entries_of_a_dict_subclass_and_of_another_mapping() -> None:
    data = {"PATH_INFO": "/a", "wsgi.input": object(), "HTTP_HOST": StrSubclass("h"), "HTTP_X": "1"}
    assert request_path.str_entries(type("Sub", (dict,), {})(data)) == {"PATH_INFO": "/a", "HTTP_X": "1"}
    assert request_path.str_entries(Environ(data)) == {"PATH_INFO": "/a", "HTTP_X": "1"}  # type: ignore[arg-type]


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
        "print(r.NATIVE, headers.NATIVE, r.str_entries({'a': 'b', 'c': 1}), uuid.UUID(t).version)"
    )
    env = {**os.environ, "MOESIF_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "{'a':", "'b'}", "4"]


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

    maker = record_module._native_record
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

    maker = record_module._native_record
    assert maker is not None
    usual = {"REQUEST_METHOD": "GET", "PATH_INFO": "", "SERVER_NAME": "h", "SERVER_PORT": "", "wsgi.input": object()}
    made = maker(usual, 1.5, True)
    assert (made.host, made.path, made.request_headers) == ("h", "/", {k: v for k, v in usual.items() if type(v) is str})
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
        assert request_path.native_record_maker(prototype()) is not None
    assert request_path.native_record_maker(prototype(request_headers=[])) is None
    assert request_path.native_record_maker(prototype(metadata={})) is None
