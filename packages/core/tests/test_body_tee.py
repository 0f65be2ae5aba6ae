"""BodyTee: what it keeps of a body and what it writes on the record."""

from __future__ import annotations

from moesif_core.body_tee import BodyTee
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
