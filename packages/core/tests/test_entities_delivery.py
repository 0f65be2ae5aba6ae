"""User, company and subscription updates reaching the local collector: queued, batched, retried, or sent now."""

from __future__ import annotations

from typing import Any

import pytest

from moesif_core.client import MoesifClient
from moesif_core.entity_delivery import DeliveryResult
from moesif_core.outgoing import current_capture
from moesif_core.wsgi import MoesifMiddleware


def fast(collector: Any, **extra: Any) -> dict[str, Any]:
    """Settings with retries that do not make a test wait."""
    return collector.settings(RETRY_BACKOFF=0.01, RETRY_BACKOFF_MAX=0.05, **extra)


def test_queued_updates_arrive_singly_and_batched(moesif_collector: Any) -> None:
    with MoesifClient(fast(moesif_collector)) as client:
        assert client.update_user({"user_id": "u1", "metadata": {"plan": "pro"}}) is True
        assert client.update_users_batch([{"user_id": "u2"}, {"user_id": "u3", "company_id": "c1"}]) is True
        assert client.update_company({"company_id": "c1", "company_domain": "acme.com"}) is True
        assert client.update_companies_batch([{"company_id": "c2"}, {"company_id": "c3"}]) is True
        assert client.update_subscription({"subscription_id": "s1", "company_id": "c1", "status": "active"}) is True
        assert client.update_users_batch([]) is True
        assert client.flush(5)
    users = moesif_collector.wait_for_users(3)
    assert sorted(u["user_id"] for u in users) == ["u1", "u2", "u3"]
    assert next(u for u in users if u["user_id"] == "u1")["metadata"] == {"plan": "pro"}
    assert sorted(c["company_id"] for c in moesif_collector.wait_for_companies(3)) == ["c1", "c2", "c3"]
    assert [s["subscription_id"] for s in moesif_collector.wait_for_subscriptions(1)] == ["s1"]
    paths = sorted(r.path for r in moesif_collector.requests if r.method == "POST")
    assert paths == ["/v1/companies", "/v1/companies/batch", "/v1/subscriptions", "/v1/users", "/v1/users/batch"]


def test_a_queued_update_is_retried_after_a_503(moesif_collector: Any) -> None:
    moesif_collector.fail_next(1, 503)
    with MoesifClient(fast(moesif_collector)) as client:
        client.update_company({"company_id": "c1"})
        assert client.flush(5)
        assert client.stats()["retried"] == 1
        assert client.stats()["entities_sent"] == 1
    [company] = moesif_collector.wait_for_companies(1)
    assert company["company_id"] == "c1"
    assert [r.status for r in moesif_collector.requests if r.path == "/v1/companies"] == [503, 201]


def test_wait_true_sends_now_and_returns_the_result(moesif_collector: Any) -> None:
    client = MoesifClient(fast(moesif_collector))
    result = client.update_user({"user_id": "u1"}, wait=True)
    assert result == DeliveryResult(ok=True, status=201, attempts=1)
    assert [u["user_id"] for u in moesif_collector.users()] == ["u1"]  # stored before the answer

    moesif_collector.fail_next(1, 503)
    result = client.update_companies_batch([{"company_id": "c1"}, {"company_id": "c2"}], wait=True)
    assert result.ok and result.attempts == 2 and result.status == 201
    assert len(moesif_collector.companies()) == 2

    moesif_collector.fail_next(1, 400, body=b"bad profile")
    result = client.update_user({"user_id": "u2"}, wait=True)
    assert not result
    assert result.status == 400 and result.attempts == 1
    assert result.error == "HTTP 400: bad profile"
    client.close()


def test_wait_true_reports_a_wrong_application_id_and_an_unreachable_collector(moesif_collector: Any, unused_port: int) -> None:
    wrong = MoesifClient(fast(moesif_collector, APPLICATION_ID="not-the-right-one"))
    result = wrong.update_user({"user_id": "u1"}, wait=True)
    assert result.status in (401, 403)
    assert "APPLICATION_ID is wrong" in (result.error or "")

    down = MoesifClient(fast(moesif_collector, BASE_URI=f"http://127.0.0.1:{unused_port}", MAX_RETRIES=2))
    result = down.update_user({"user_id": "u1"}, wait=True)
    assert not result.ok and result.status is None and result.attempts == 3
    assert "gave up after 2 retries" in (result.error or "")


async def test_async_variants_send_without_blocking_the_loop(moesif_collector: Any) -> None:
    client = MoesifClient(fast(moesif_collector))
    moesif_collector.fail_next(1, 503)
    result = await client.aupdate_user({"user_id": "u1"})
    assert result.ok and result.attempts == 2
    assert (await client.aupdate_companies_batch([{"company_id": "c1"}])).ok
    assert (await client.aupdate_subscriptions_batch([{"subscription_id": "s1", "company_id": "c1"}])).ok
    assert [u["user_id"] for u in moesif_collector.users()] == ["u1"]
    with pytest.raises(ValueError, match="user_id"):
        await client.aupdate_user({"id": "u1"})
    client.close()


def test_validation_errors_raise_in_the_caller_and_nothing_is_sent(moesif_collector: Any) -> None:
    client = MoesifClient(fast(moesif_collector))
    with pytest.raises(ValueError, match="non-empty 'user_id'"):
        client.update_user({"email": "a@b.c"})
    with pytest.raises(ValueError, match=r"companies\[0\]"):
        client.update_companies_batch([{"company_domain": "acme.com"}])
    with pytest.raises(TypeError, match="use update_user"):
        client.update_users_batch({"user_id": "u1"})
    assert client.flush(5)
    assert client.stats()["queued"] == 0
    client.close()


def test_a_middleware_object_has_the_same_methods(moesif_collector: Any) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    middleware = MoesifMiddleware(app, fast(moesif_collector))
    assert middleware.update_user({"user_id": "from-middleware"})
    assert middleware.update_company({"company_id": "co"}, wait=True).ok
    assert [u["user_id"] for u in moesif_collector.wait_for_users(1)] == ["from-middleware"]
    middleware.close()


def test_a_client_with_capture_outgoing_on_captures_until_closed(moesif_collector: Any) -> None:
    client = MoesifClient(fast(moesif_collector, CAPTURE_OUTGOING_REQUESTS=True))
    capture = current_capture()
    assert capture is not None and capture.agent is client.agent
    client.close()
    assert current_capture() is None


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
