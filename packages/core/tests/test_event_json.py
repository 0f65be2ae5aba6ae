"""The native event writer gives exactly the Python builder's bytes, or hands over.

``moesif_core._event_json`` writes the JSON of the usual event and says None for anything else;
the properties hold every event it writes to the bytes the Python builder gives for the same
record (``EventBuilder._build_safely``), over records with odd types, header lists of every
shape (repeats, mixed case, proxies, tokens, non-ASCII), bodies JSON or not, and several
settings. The examples below pin that the usual events are written natively at all, so the
fast path cannot quietly stop applying.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from moesif_core import event_json
from moesif_core.event_builder import EventBuilder
from moesif_core.record import RawExchange
from moesif_core.settings import Settings
from moesif_core.testing import make_jwt

native = pytest.mark.skipif(not event_json.NATIVE, reason="moesif_core._event_json is not built here")


def test_the_native_writer_is_built_where_the_project_expects_it() -> None:
    if os.environ.get("MOESIF_EXPECT_NATIVE"):
        assert event_json.NATIVE


def builder(**extra: Any) -> EventBuilder:
    return EventBuilder(Settings.resolve({"APPLICATION_ID": "test-app-id", **extra}, environ={}))


BUILDERS = {
    "default": builder(),
    "api-version": builder(API_VERSION='v2 "beta"'),
    "masks": builder(REQUEST_HEADER_MASKS=["X-Forwarded-For", "X-Secret"], RESPONSE_HEADER_MASKS=["ETag"]),
    "custom-identity": builder(AUTHORIZATION_HEADER_NAME="X-User-Token, Authorization", AUTHORIZATION_USER_ID_FIELD="uid"),
    "no-default-masks": builder(MASK_DEFAULT_CREDENTIALS=False),
}


def python_json(built: EventBuilder, record: RawExchange) -> bytes | None:
    result = built._build_safely(record, serialise=True)
    return None if result is None else result[1]


def check(built: EventBuilder, record: RawExchange) -> bytes | None:
    writer = built._native_json
    assert writer is not None
    got = writer.event(record)
    if got is not None:
        assert got == python_json(built, record)
        orjson.loads(got)
    return got


def usual_record(**fields: Any) -> RawExchange:
    record = RawExchange()
    record.request_time = 1795321112.2284915
    record.response_time = 1795321112.2385547
    record.method = "POST"
    record.host = "api.example.com"
    record.path = "/orders"
    record.query_string = "page=2"
    record.request_headers = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/orders",
        "HTTP_HOST": "api.example.com",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "13",
        "HTTP_USER_AGENT": "client/1.0",
        "wsgi.url_scheme": "https",
    }
    record.request_header_style = "environ"
    record.request_body = b'{"qty": 1.5}'
    record.status = 201
    record.response_headers = [("Content-Type", "application/json"), ("Content-Length", "9")]
    record.response_header_style = "pairs"
    record.response_body = b'{"id": 7}'
    record.client_addr = "10.1.2.3"
    record.transaction_id = "a6682df0-eaaf-4440-aee4-53cc0a19f9c6"
    record.route = "/orders"
    for name, value in fields.items():
        setattr(record, name, value)
    return record


@native
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"request_body": None, "response_body": b"", "route": None, "transaction_id": None},
        {
            "request_headers": [(b"host", b"api.example.com"), (b"content-type", b"application/json"), (b"x-name", b"caf\xe9")],
            "request_header_style": "asgi",
        },
        {"request_headers": {**usual_record().request_headers, "HTTP_AUTHORIZATION": f"Bearer {make_jwt({'sub': 'u-1'})}"}},
        {"request_headers": {**usual_record().request_headers, "HTTP_X_FORWARDED_FOR": "unknown, 203.0.113.7:5000"}},
        {"request_headers": {**usual_record().request_headers, "HTTP_COOKIE": "session=1"}, "user_id": "u-2"},
        {"response_headers": [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Vary", "Accept")]},
        {"host": "\u00e9.example", "path": '/"quoted"\\'},
        {"direction": "Outgoing", "full_url": "https://third.party/v1?x=1", "session_token": "s-1", "blocked_by": "rule"},
    ],
)
def test_the_usual_events_are_written_natively(fields: dict[str, Any]) -> None:
    for name, built in BUILDERS.items():
        if name == "masks" and "HTTP_X_FORWARDED_FOR" in fields.get("request_headers", {}):
            continue  # a masked proxy header is the Python builder's
        assert check(built, usual_record(**fields)) is not None, name


@native
@pytest.mark.parametrize(
    "fields",
    [
        {"metadata": {"plan": "pro"}},
        {"request_body_truncated": True},
        {"response_headers": [("Content-Encoding", "gzip"), ("Content-Type", "application/json")]},
        {"request_body": b"name=ada&password=x"},
        {"request_body": b'{"password": "x"}'},
        {"user_id": 42},
        {"status": 1000},
        {"status": True},
        {"request_time": -1.0},
        {"request_time": float("nan")},
        {"request_time": 1795321112},
        {"path": "/\udcff"},
        {"path": "/caf\u00e9"},
        {"direction": "Sideways"},
        {"request_headers": [("Host", "x")], "request_header_style": "environ"},
    ],
)
def test_what_the_native_writer_leaves_to_the_python_builder(fields: dict[str, Any]) -> None:
    built = BUILDERS["default"]
    assert check(built, usual_record(**fields)) is None
    assert python_json(built, usual_record(**fields)) is not None


@native
def test_masked_names_of_every_length_are_masked_natively() -> None:
    # The writer compares a header's name only with the masked names as long as it (names of 64
    # characters or more share one group): one name in each group, and one of a length no
    # other name has.
    long_name = "X-" + "Long" * 16
    built = builder(REQUEST_HEADER_MASKS=[long_name, "X-Q"], RESPONSE_HEADER_MASKS=["ETag"])
    headers = {
        **usual_record().request_headers,
        "HTTP_" + long_name.upper().replace("-", "_"): "secret-1",
        "HTTP_X_Q": "secret-2",
        "HTTP_X_" + "LONG" * 16 + "ER": "kept",
    }
    response = [("ETag", "secret-3"), ("Content-Type", "application/json")]
    got = check(built, usual_record(request_headers=headers, response_headers=response))
    assert got is not None
    event = orjson.loads(got)
    assert event["request"]["headers"][long_name.lower()] == "*****"
    assert event["request"]["headers"]["x-q"] == "*****"
    assert event["request"]["headers"]["x-" + "long" * 16 + "er"] == "kept"
    assert event["response"]["headers"]["etag"] == "*****"


@native
def test_a_masked_proxy_header_is_left_to_the_python_builder() -> None:
    headers = {**usual_record().request_headers, "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert check(BUILDERS["masks"], usual_record(request_headers=headers)) is None


def test_settings_whose_events_the_python_builder_must_see_have_no_writer() -> None:
    assert builder(DEBUG=True)._native_json is None
    assert builder(MASK_EVENT_MODEL=lambda event: event)._native_json is None


# ---------------------------------------------------------------- properties

text = st.text(max_size=12)
odd = st.one_of(st.none(), st.integers(-3, 3), st.binary(max_size=4), st.booleans())
token = st.sampled_from(
    [
        f"Bearer {make_jwt({'sub': 'u-1', 'uid': 'x-9'})}",
        f"Bearer {make_jwt({'uid': 7})}",
        "Basic YWRhOnNlY3JldA==",
        "Bearer not.a.jwt",
        "",
    ]
)
address = st.sampled_from(["203.0.113.7", "unknown, 198.51.100.2:80", 'for="[2001:db8::1]:4711"', "", "garbage"])
HEADER_NAMES = [
    "Content-Type",
    "content-type",
    "Authorization",
    "X-User-Token",
    "X-Forwarded-For",
    "Forwarded",
    "X-Real-IP",
    "Cookie",
    "X-Secret",
    "ETag",
    "Content-Encoding",
    "X-Moesif-Transaction-Id",
    "Set-Cookie",
    "X-Caf\u00e9",
    'X-"Odd"',
    "",
]
header_names = st.sampled_from(HEADER_NAMES)


def header_value(name: str) -> st.SearchStrategy[Any]:
    if name.lower() in ("authorization", "x-user-token"):
        return token
    if "forward" in name.lower() or name.lower() == "x-real-ip":
        return address
    if name.lower() == "content-encoding":
        return st.sampled_from(["", "gzip", "identity"])
    return st.one_of(text, st.just("application/json"))


pair = header_names.flatmap(lambda name: st.tuples(st.just(name), header_value(name)))
pairs = st.lists(pair, max_size=6)
environ_key = {name: "HTTP_" + name.upper().replace("-", "_") for name in HEADER_NAMES}


def as_environ(items: list[tuple[str, Any]]) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "wsgi.url_scheme": "http", "HTTP_": "nothing"}
    for name, value in items:
        key = "CONTENT_TYPE" if name.lower() == "content-type" and len(environ) % 2 else environ_key[name]
        environ[key] = value
    return environ


def as_asgi(items: list[tuple[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1", "replace").lower(), str(value).encode("latin-1", "replace")) for name, value in items]


header_lists = st.one_of(
    st.tuples(pairs.map(as_environ), st.just("environ")),
    st.tuples(pairs.map(as_environ), st.just("environ")),
    st.tuples(pairs.map(as_asgi), st.just("asgi")),
    st.tuples(pairs, st.just("pairs")),
    st.tuples(pairs.map(as_asgi), st.just("asgi")),
    st.tuples(pairs.map(tuple), st.sampled_from(["pairs", "wsgi"])),
    st.tuples(st.one_of(st.none(), st.just(()), st.just({})), st.sampled_from(["pairs", "environ", "asgi"])),
    st.tuples(pairs, st.one_of(st.none(), st.just("environ"))),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "password", "qty", "é"]), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    st.none(),
    st.just(b""),
    json_values.map(lambda value: json.dumps(value).encode()),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")),
    st.binary(max_size=16),
    st.just(b'\xef\xbb\xbf{"a": 1}'),
    st.just(bytearray(b"{}")),
)
times = st.one_of(st.floats(0, 2e11), st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 2**40))


# Per field: what a usual record holds, and what else a record may hold.
FIELDS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "direction": ("Incoming", st.sampled_from(["Outgoing", "Sideways"])),
    "request_time": (1795321112.2284915, times),
    "response_time": (1795321112.2385547, times),
    "method": ("GET", st.one_of(text, odd)),
    "scheme": ("https", st.one_of(text, odd)),
    "host": ("127.0.0.1:8000", st.one_of(text, odd)),
    "root_path": ("", text),
    "path": ("/items/1", st.one_of(text, odd)),
    "query_string": ("", st.one_of(text, odd)),
    "full_url": (None, st.one_of(st.just(""), text, odd)),
    "client_addr": ("10.0.0.1", st.one_of(st.just(""), odd)),
    "request_body_truncated": (False, st.just(True)),
    "response_body_truncated": (False, st.just(True)),
    "status": (200, st.one_of(st.integers(-2, 1002), odd)),
    "weight": (1, st.one_of(st.integers(0, 5), st.just(2**63), odd)),
    "user_id": (None, st.one_of(st.just("u-cb"), st.just(""), odd)),
    "company_id": (None, st.one_of(st.just("c-cb"), odd)),
    "session_token": (None, st.one_of(st.just(""), text, odd)),
    "blocked_by": (None, st.one_of(st.just(""), text, odd)),
    "transaction_id": ("t-1", st.one_of(st.none(), st.just(""), text, odd)),
    "route": ("/items/{id}", st.one_of(st.none(), st.just(""), text, odd)),
    "metadata": (None, st.just({"a": 1})),
}


@st.composite
def records(draw: st.DrawFn) -> RawExchange:
    """A usual record with a few fields changed: mostly events the native writer takes."""
    record = RawExchange()
    changed = draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=3))
    for name, (usual, other) in FIELDS.items():
        setattr(record, name, draw(other) if name in changed else usual)
    record.request_headers, record.request_header_style = draw(header_lists)
    record.response_headers, record.response_header_style = draw(header_lists)
    record.request_body = draw(bodies)
    record.response_body = draw(bodies)
    return record


@native
@hypothesis_settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.sampled_from(sorted(BUILDERS)))
def test_every_native_event_is_the_python_builders(record: RawExchange, name: str) -> None:
    check(BUILDERS[name], record)


def check_batch(built: EventBuilder, batch: list[RawExchange], limit: int) -> None:
    """``events`` gives, in order, each record's own event joined into pieces, or the record back."""
    writer = built._native_json
    assert writer is not None
    singles = [writer.event(record) for record in batch]
    out = writer.events(batch, limit)
    at = 0
    previous: list[bytes] | None = None  # the events of the piece just before, when one was
    for item in out:
        if type(item) is not tuple:
            assert item is batch[at]
            assert singles[at] is None
            at += 1
            previous = None
            continue
        data, count = item
        events = singles[at : at + count]
        assert count >= 1 and len(events) == count and None not in events
        assert data == b",".join(e for e in events if e is not None)
        size = 2 + sum(len(e) + 1 for e in events if e is not None)
        assert count == 1 or size <= limit
        if previous is not None:  # a piece ends before an event only when that event would not fit
            assert events[0] is not None
            assert 2 + sum(len(e) + 1 for e in previous) + len(events[0]) + 1 > limit
        previous = [e for e in events if e is not None]
        at += count
    assert at == len(batch)
    pieces, failed = built.build_json_batch(batch, limit)
    one_by_one = [built.build_json(record) for record in batch]
    # Without their times: the Python builder stamps a record that has none with the time it runs.
    assert untimed(b",".join(data for data, _ in pieces)) == untimed(b",".join(e for e in one_by_one if e is not None))
    assert sum(count for _, count in pieces) == len(batch) - failed
    assert failed == one_by_one.count(None)


def untimed(joined: bytes) -> list[Any]:
    events = orjson.loads(b"[" + joined + b"]")
    for event in events:
        event["request"].pop("time")
        event["response"].pop("time")
    return events  # type: ignore[no-any-return]


@native
@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), max_size=8), st.sampled_from(sorted(BUILDERS)), st.sampled_from([1, 900, 1800, 4000, 10**9]))
def test_a_batch_is_each_records_event_in_order_in_pieces_within_the_limit(
    batch: list[RawExchange], name: str, limit: int
) -> None:
    check_batch(BUILDERS[name], batch, limit)


@native
def test_a_batch_of_usual_events_is_one_piece() -> None:
    built = builder()
    batch = [usual_record(), usual_record(path="/b"), usual_record(path="/c")]
    assert [count for _, count in built._native_json.events(batch, 10**9)] == [3]  # type: ignore[union-attr]
    check_batch(built, batch, 10**9)


@native
def test_a_piece_takes_events_up_to_the_limit_exactly() -> None:
    built = builder()
    batch = [usual_record(path="/a"), usual_record(path="/b"), usual_record(path="/c")]
    writer = built._native_json
    assert writer is not None
    first, second, _ = (len(writer.event(record) or b"") for record in batch)
    exactly = 2 + first + 1 + second + 1  # the sender's count of a batch of the first two
    assert [count for _, count in writer.events(batch, exactly)] == [2, 1]
    assert [count for _, count in writer.events(batch, exactly - 1)] == [1, 1, 1]
    check_batch(built, batch, exactly)


@native
def test_a_batch_is_written_with_the_gil_released() -> None:
    """Another thread runs while a batch is written: its counter moves only during the call.

    With a long switch interval the main thread keeps the GIL from reading the counter to the
    call and back, so every step the counter takes in between was taken while ``events`` had
    released the GIL.
    """
    import threading
    import time

    built = builder()
    body = b'{"items": [' + b",".join(b'{"id": %d, "name": "item"}' % i for i in range(20000)) + b"]}"
    batch = [usual_record(response_body=body) for _ in range(16)]
    steps = 0
    stop = False

    def count() -> None:
        nonlocal steps
        while not stop:
            steps += 1

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=count)
    sys.setswitchinterval(0.2)
    try:
        thread.start()
        time.sleep(0.05)  # the counter runs, then waits for the GIL the main thread takes back
        before = steps
        out = built._native_json.events(batch, 10**9)  # type: ignore[union-attr]
        during = steps - before
    finally:
        stop = True
        thread.join()
        sys.setswitchinterval(interval)
    assert [count for _, count in out] == [16]
    assert during > 0


def test_moesif_pure_python_keeps_the_writer_out_and_events_are_still_built() -> None:
    code = (
        "from moesif_core import event_json; from moesif_core.event_builder import EventBuilder; "
        "from moesif_core.record import RawExchange; from moesif_core.settings import Settings; "
        "b = EventBuilder(Settings.resolve({'APPLICATION_ID': 'a'}, environ={})); "
        "print(event_json.NATIVE, b._native_json, b.build_json(RawExchange())[:12].decode())"
    )
    env = {**os.environ, "MOESIF_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "None", '{"request":{']
