"""Calls made with ``httpx`` (sync and async clients) become Outgoing events; the caller sees no difference."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from moesif_core.outgoing import start_capture

from .conftest import STREAM_CHUNK, STREAM_CHUNKS


def capture_for(collector: Any, **extra: Any) -> Any:
    return start_capture(collector.settings(**extra))


def test_a_sync_client_call_is_an_outgoing_event(moesif_collector: Any, upstream: str) -> None:
    seen: list[Any] = []

    def identify(req: Any, res: Any) -> str:
        seen.append((req, res))
        return str(res.json()["user"])

    capture_for(moesif_collector, IDENTIFY_USER_OUTGOING=identify)
    with httpx.Client() as client:
        response = client.post(f"{upstream}/echo?x=1", json={"item": "pen"})
    assert response.status_code == 201
    assert response.json() == {"item": "pen"}
    [event] = moesif_collector.wait_for_events(1)
    assert event["direction"] == "Outgoing"
    assert event["request"]["verb"] == "POST"
    assert event["request"]["uri"] == f"{upstream}/echo?x=1"
    assert event["request"]["body"] == {"item": "pen"}
    assert event["response"]["body"] == {"item": "pen"}
    assert event["response"]["status"] == 201
    [(req, res)] = seen
    assert res is response
    assert req is response.request
    assert event["user_id"] is None  # {"item": "pen"} has no "user": the callback raised, the call went on


async def test_an_async_client_call_is_an_outgoing_event(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector, IDENTIFY_USER_OUTGOING=lambda req, res: res.json()["user"])
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{upstream}/json")
    assert response.json() == {"path": "/json", "user": "u-42"}
    [event] = moesif_collector.wait_for_events(1)
    assert event["user_id"] == "u-42"
    assert event["response"]["body"] == {"path": "/json", "user": "u-42"}


@pytest.mark.parametrize("status", [404, 503])
def test_error_statuses_are_captured_and_returned_unchanged(moesif_collector: Any, upstream: str, status: int) -> None:
    capture_for(moesif_collector)
    response = httpx.get(f"{upstream}/status/{status}")
    assert response.status_code == status
    assert response.json() == {"error": f"status {status}"}
    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == status


def test_a_connection_error_is_an_event_and_the_same_exception_reaches_the_caller(
    moesif_collector: Any, refused_url: str
) -> None:
    with pytest.raises(httpx.ConnectError) as uncaptured:
        httpx.get(refused_url)
    capture_for(moesif_collector)
    with pytest.raises(httpx.ConnectError) as captured:
        httpx.get(refused_url)
    assert str(captured.value) == str(uncaptured.value)
    assert captured.value.request.url == refused_url
    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == 0
    assert event["metadata"]["_moesif"]["error"].startswith("httpx.ConnectError")


async def test_an_async_connection_error_is_captured_and_reraised(moesif_collector: Any, refused_url: str) -> None:
    capture_for(moesif_collector)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(refused_url)
    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == 0


def test_a_streamed_download_streams_and_is_logged_when_exhausted(moesif_collector: Any, upstream: str) -> None:
    capture = capture_for(moesif_collector, LOG_BODY_MAX_BYTES=1000)
    with httpx.Client() as client, client.stream("GET", f"{upstream}/stream") as response:
        chunks = response.iter_bytes()
        first = next(chunks)
        assert capture.agent.stats()["queued"] == 0  # nothing submitted until the stream ends
        body = first + b"".join(chunks)
    assert body == STREAM_CHUNK * STREAM_CHUNKS
    [event] = moesif_collector.wait_for_events(1)
    assert event["metadata"]["_moesif"]["response_body_truncated"] is True
    assert event["metadata"]["_moesif"]["response_body_size"] == len(STREAM_CHUNK) * STREAM_CHUNKS


async def test_an_async_streamed_download_streams_and_is_logged(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector)
    async with httpx.AsyncClient() as client, client.stream("GET", f"{upstream}/stream") as response:
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body == STREAM_CHUNK * STREAM_CHUNKS
    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["status"] == 200
    assert event["metadata"]["_moesif"]["response_body_size"] == len(STREAM_CHUNK) * STREAM_CHUNKS


def test_a_gzip_response_is_logged_decoded_and_returned_unchanged(moesif_collector: Any, upstream: str) -> None:
    plain = httpx.get(f"{upstream}/gzip")
    capture_for(moesif_collector)
    response = httpx.get(f"{upstream}/gzip")
    assert response.content == plain.content == b'{"zipped": true}'
    assert response.headers["content-encoding"] == "gzip"
    [event] = moesif_collector.wait_for_events(1)
    assert event["response"]["body"] == {"zipped": True}


def test_redirect_hops_are_separate_events(moesif_collector: Any, upstream: str) -> None:
    capture_for(moesif_collector)
    response = httpx.get(f"{upstream}/redirect", follow_redirects=True)
    assert response.json()["path"] == "/json?from=redirect"
    events = moesif_collector.wait_for_events(2)
    assert sorted(e["response"]["status"] for e in events) == [200, 302]


def test_skip_outgoing_drops_the_call(moesif_collector: Any, upstream: str) -> None:
    capture = capture_for(moesif_collector, SKIP_OUTGOING=lambda req, res: res.status_code == 404)
    assert httpx.get(f"{upstream}/status/404").status_code == 404
    httpx.get(f"{upstream}/kept")
    assert capture.agent.flush(5)
    assert [e["response"]["status"] for e in moesif_collector.events()] == [200]
    assert capture.agent.stats()["skipped"] == 1


def test_transports_that_are_not_the_network_are_not_captured(moesif_collector: Any) -> None:
    capture = capture_for(moesif_collector)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"mock": True}))
    with httpx.Client(transport=transport) as client:
        assert client.get("http://mock.invalid/x").json() == {"mock": True}
    assert capture.agent.flush(5)
    assert capture.agent.stats()["queued"] == 0
