"""BodyTee: what it keeps of a body and what it writes on the record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from moesif_core.body_tee import BodyTee, keep_whole_response
from moesif_core.record import RawExchange


def written(tee: BodyTee) -> tuple[object, object, object, object, object, object]:
    record = RawExchange()
    tee.to_request(record)
    tee.to_response(record)
    return (
        record.request_body,
        record.request_body_size,
        record.request_body_truncated,
        record.response_body,
        record.response_body_size,
        record.response_body_truncated,
    )


def test_no_body_is_none_not_empty_bytes() -> None:
    assert written(BodyTee(10)) == (None, 0, False, None, 0, False)


def test_one_chunk_is_kept_as_it_came() -> None:
    tee = BodyTee(10)
    chunk = b"abc"
    tee.add(chunk)
    record = RawExchange()
    tee.to_response(record)
    assert record.response_body is chunk
    assert written(tee) == (b"abc", 3, False, b"abc", 3, False)


def test_chunks_are_joined_up_to_the_cap_and_the_rest_counted() -> None:
    tee = BodyTee(5)
    for chunk in (b"abc", bytearray(b"def"), memoryview(b"ghi")):
        tee.add(chunk)
    assert written(tee) == (b"abcde", 9, True, b"abcde", 9, True)


def test_odd_chunks_never_raise() -> None:
    tee = BodyTee(5)
    tee.add(None)
    tee.add(b"ab")
    assert written(tee)[:3] == (b"ab", 2, False)


def response_fields(record: RawExchange) -> tuple[object, object, object]:
    return record.response_body, record.response_body_size, record.response_body_truncated


odd_chunks = st.one_of(
    st.binary(max_size=40),
    st.binary(max_size=40).map(bytearray),
    st.binary(max_size=40).map(memoryview),
    st.text(max_size=5),
    st.none(),
    st.integers(),
    st.lists(st.integers(0, 255), max_size=5),
)


@given(chunk=odd_chunks, cap=st.integers(-1, 50))
def test_a_whole_body_is_written_as_a_tee_of_it_alone_writes_it(chunk: object, cap: int) -> None:
    # The request path skips the tee for a body known whole; the event must not tell the difference.
    tee = BodyTee(cap)
    tee.add(chunk)
    teed = RawExchange()
    tee.to_response(teed)
    whole = RawExchange()
    keep_whole_response(whole, chunk, cap)
    assert response_fields(whole) == response_fields(teed)
    assert type(whole.response_body) is type(teed.response_body)


def test_a_whole_bytes_body_under_the_cap_is_not_copied() -> None:
    body = b'{"id": 7}'
    record = RawExchange()
    keep_whole_response(record, body, 100)
    assert record.response_body is body
