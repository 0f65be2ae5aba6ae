"""Calls made with ``requests`` become Outgoing events at the local collector; the caller sees no difference."""

from __future__ import annotations

import gc
import pickle
from typing import Any

import pytest
import requests

from moesif_core.outgoing import start_capture

from .conftest import STREAM_CHUNK, STREAM_CHUNKS


def capture_for(collector: Any, **extra: Any) -> Any:
    return start_capture(collector.settings(**extra))


def test_a_json_call_is_an_outgoing_event_with_both_bodies(moesif_collector: Any, upstream: str) -> None:
    capture = capture_for(moesif_collector)
    response = requests.post(f"{upstream}/orders?src=app", json={"item": "pen"}, headers={"Authorization": "Bearer sk_live_1"})
    assert response.status_code == 201
    assert response.json() == {"item": "pen"}

    [event] = moesif_collector.wait_for_events(1)
    assert event["direction"] == "Outgoing"
    assert event["request"]["verb"] == "POST"
    assert event["request"]["uri"] == f"{upstream}/orders?src=app"
    assert event["request"]["body"] == {"item": "pen"}
    assert event["request"]["transfer_encoding"] == "json"
    assert event["request"]["headers"]["authorization"] != "Bearer sk_live_1"  # masked by default
    assert event["response"]["status"] == 201
    assert event["response"]["body"] == {"item": "pen"}
    assert event["response"]["headers"]["x-upstream"] == "yes"
    assert capture.agent.flush(5)
    assert capture.agent.stats()["sent"] == 1


@pytest.mark.parametrize("status", [404, 500])
def test_error_statuses_are_captured_and_returned_unchanged(moesif_collector: Any, upstream: str, status: int) -> None:
    capture_for(moesif_collector)
    response = requests.get(f"{upstream}/status/{status}")
    assert response.status_code == status
    assert response.json() == {"error": f"status {status}"}
    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == status
    assert event["response"]["body"] == {"error": f"status {status}"}


def test_a_connection_error_is_an_event_and_the_same_exception_reaches_the_caller(
    moesif_collector: Any, refused_url: str
) -> None:
    with pytest.raises(requests.ConnectionError) as uncaptured:
        requests.get(refused_url)
    capture_for(moesif_collector)
    with pytest.raises(requests.ConnectionError) as captured:
        requests.get(refused_url)
    assert type(captured.value) is type(uncaptured.value)
    assert str(captured.value) == str(uncaptured.value)

    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == 0
    assert event["request"]["uri"] == refused_url
    assert event["metadata"]["_moesif"]["error"].startswith("requests.exceptions.ConnectionError")


def test_a_streamed_download_streams_and_is_logged_when_exhausted(moesif_collector: Any, upstream: str) -> None:
    capture = capture_for(moesif_collector, LOG_BODY_MAX_BYTES=1000)
    with requests.get(f"{upstream}/stream", stream=True) as response:
        chunks = response.iter_content(chunk_size=len(STREAM_CHUNK))
        first = next(chunks)
        assert first == STREAM_CHUNK
        assert capture.agent.stats()["queued"] == 0  # nothing submitted until the stream ends
        rest = b"".join(chunks)
    assert first + rest == STREAM_CHUNK * STREAM_CHUNKS

    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == 200
    assert event["metadata"]["_moesif"]["response_body_truncated"] is True
    assert event["metadata"]["_moesif"]["response_body_size"] == len(STREAM_CHUNK) * STREAM_CHUNKS


def test_a_stream_closed_early_logs_what_was_read(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector)
    with requests.get(f"{upstream}/stream", stream=True) as response:
        assert next(response.iter_content(chunk_size=100)) == STREAM_CHUNK[:100]
    [event] = moesif_collector.wait_for_events(1)
    assert event["metadata"]["_moesif"]["response_body_truncated"] is True


def test_a_stream_dropped_without_close_is_logged_when_collected(moesif_collector: Any, upstream: str) -> None:
    seen: list[Any] = []
    capture_for(moesif_collector, GET_METADATA_OUTGOING=lambda req, res: seen.append(res) or {"res_none": res is None})
    response = requests.get(f"{upstream}/stream", stream=True)
    next(response.iter_content(chunk_size=10))
    del response
    gc.collect()
    [event] = moesif_collector.wait_for_events(1)
    assert event["metadata"]["res_none"] is True
    assert seen == [None]


def test_iter_lines_text_and_gzip_are_unchanged(moesif_collector: Any, upstream: str) -> None:
    plain = requests.get(f"{upstream}/gzip")
    capture_for(moesif_collector)
    response = requests.get(f"{upstream}/gzip")
    assert response.content == plain.content == b'{"zipped": true}'
    assert response.text == plain.text
    lines = requests.get(f"{upstream}/json", stream=True)
    assert list(lines.iter_lines(decode_unicode=True)) == ['{"path": "/json", "user": "u-42"}']
    events = moesif_collector.wait_for_events(2)
    assert events[0]["response"]["body"] == {"zipped": True}
    assert events[1]["response"]["body"] == {"path": "/json", "user": "u-42"}


def test_each_redirect_hop_is_its_own_event(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector)
    response = requests.get(f"{upstream}/redirect")
    assert response.json()["path"] == "/json?from=redirect"
    assert [r.status_code for r in response.history] == [302]
    events = moesif_collector.wait_for_events(2)
    assert sorted((e["request"]["uri"].removeprefix(upstream), e["response"]["status"]) for e in events) == [
        ("/json?from=redirect", 200),
        ("/redirect", 302),
    ]


def test_callbacks_get_the_prepared_request_and_the_callers_response(moesif_collector: Any, upstream: str) -> None:
    seen: list[Any] = []

    def identify(req: Any, res: Any) -> str:
        seen.append((req, res))
        return str(res.json()["user"])  # the body is readable in callbacks of non-streamed calls

    capture_for(
        moesif_collector,
        IDENTIFY_USER_OUTGOING=identify,
        IDENTIFY_COMPANY_OUTGOING=lambda req, res: "acme",
        GET_METADATA_OUTGOING=lambda req, res: {"host": req.url.split("/")[2]},
        GET_SESSION_TOKEN_OUTGOING=lambda req, res: "sess-1",
    )
    with requests.Session() as session:
        response = session.get(f"{upstream}/json")
    [event] = moesif_collector.wait_for_events(1)
    [(req, res)] = seen
    assert res is response
    assert isinstance(req, requests.PreparedRequest)
    assert req is response.request
    assert event["user_id"] == "u-42"
    assert event["company_id"] == "acme"
    assert event["session_token"] == "sess-1"
    assert event["metadata"] == {"host": upstream.split("/")[2]}


def test_skip_outgoing_drops_the_call(moesif_collector: Any, upstream: str) -> None:
    capture = capture_for(moesif_collector, SKIP_OUTGOING=lambda req, res: req.url.endswith("/skip-me"))
    assert requests.get(f"{upstream}/skip-me").status_code == 200
    requests.get(f"{upstream}/kept")
    assert capture.agent.flush(5)
    events = moesif_collector.events()
    assert [e["request"]["uri"] for e in events] == [f"{upstream}/kept"]
    assert capture.agent.stats()["skipped"] == 1


def test_log_body_outgoing_false_sends_no_bodies(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector, LOG_BODY_OUTGOING=False)
    assert requests.post(f"{upstream}/echo", data=b"secret").content == b"secret"
    [event] = moesif_collector.wait_for_events(1)
    assert event["request"]["body"] is None
    assert event["response"]["body"] is None


def test_a_raising_callback_or_a_bug_of_ours_never_reaches_the_caller(
    moesif_collector: Any, upstream: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(req: Any, res: Any) -> None:
        raise RuntimeError("callback bug")

    capture_for(moesif_collector, IDENTIFY_USER_OUTGOING=broken)
    assert requests.get(f"{upstream}/json").json()["user"] == "u-42"
    [event] = moesif_collector.wait_for_events(1)
    assert event["user_id"] is None
    assert "IDENTIFY_USER_OUTGOING raised RuntimeError" in caplog.text

    from moesif_core.outgoing import OutgoingCall

    def fail(self: Any) -> None:
        raise RuntimeError("our bug")

    monkeypatch.setattr(OutgoingCall, "_finish", fail)
    assert requests.get(f"{upstream}/json").status_code == 200
    assert "could not record an outgoing call (RuntimeError: our bug)" in caplog.text


def test_a_captured_response_still_pickles_and_keeps_its_type(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector)
    response = requests.get(f"{upstream}/json")
    assert type(response) is requests.Response
    copy = pickle.loads(pickle.dumps(response))
    assert copy.json() == response.json() == {"path": "/json", "user": "u-42"}
    assert "iter_content" not in vars(copy)
