"""Routes identifying the call through moesif_call and identify_with, picked up by the middleware."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request

from fastapi_moesif import MoesifCall, MoesifMiddleware, identify_with, moesif_call

SETTINGS = {"APPLICATION_ID": "test-app", "BASE_URI": "http://127.0.0.1:9"}

Moesif = Annotated[MoesifCall, Depends(moesif_call)]

USERS = {"token-a": {"id": 7, "org": "acme", "plan": "gold"}}


def get_current_user(request: Request) -> dict[str, Any]:
    """The app's own auth dependency, as an app would write it.

    It reads the header from the request rather than through ``Header()``: FastAPI 0.100's
    ``Header()`` breaks under the pydantic 2 releases the compat env installs.
    """
    user = USERS.get(request.headers.get("authorization", "").removeprefix("Bearer "))
    if user is None:
        raise HTTPException(status_code=401, detail="who are you")
    return user


async def get_current_user_async(request: Request) -> dict[str, Any]:
    await asyncio.sleep(0)
    return get_current_user(request)


async def org_of(user: dict[str, Any]) -> str:
    await asyncio.sleep(0)
    return str(user["org"])


current_user = identify_with(
    get_current_user, user_id=lambda u: u["id"], company_id=org_of, metadata=lambda u: {"plan": u["plan"]}
)
current_user_async = identify_with(get_current_user_async, user_id=lambda u: u["id"])
broken_extractor = identify_with(get_current_user, user_id=lambda u: u["missing"], company_id=lambda u: u["org"])


def build_app(recorder: Any, wired: bool = True, **settings: Any) -> FastAPI:
    app = FastAPI()
    if wired:
        app.add_middleware(MoesifMiddleware, settings={**SETTINGS, **settings}, agent=recorder)

    @app.get("/orders/{order_id}")
    async def order(order_id: int, moesif: Moesif) -> dict[str, Any]:
        moesif.user_id = "u-1"
        moesif.company_id = "c-1"
        moesif.session_token = "s-1"
        moesif.add_metadata({"order": order_id})
        return {"order": order_id, "captured": moesif.captured}

    @app.get("/health")
    def health(moesif: Moesif) -> str:
        moesif.skip()
        return "ok"

    @app.get("/me")
    async def me(user: Annotated[dict[str, Any], Depends(current_user)]) -> dict[str, Any]:
        return user

    @app.get("/me-async")
    async def me_async(user: Annotated[dict[str, Any], Depends(current_user_async)]) -> dict[str, Any]:
        return user

    @app.get("/me-broken")
    def me_broken(user: Annotated[dict[str, Any], Depends(broken_extractor)]) -> dict[str, Any]:
        return user

    return app


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


async def test_route_sets_user_company_session_and_metadata(recorder: Any) -> None:
    async with client(build_app(recorder, GET_METADATA=lambda request, response: {"from": "callback"})) as c:
        response = await c.get("/orders/5")
    assert response.json() == {"order": 5, "captured": True}
    [record] = recorder.records
    assert (record.user_id, record.company_id, record.session_token) == ("u-1", "c-1", "s-1")
    assert record.metadata == {"from": "callback", "order": 5}


async def test_dependency_wins_over_the_identify_callbacks(recorder: Any) -> None:
    app = build_app(recorder, IDENTIFY_USER=lambda request, response: "from-callback")
    async with client(app) as c:
        await c.get("/orders/1")
    assert recorder.records[0].user_id == "u-1"


async def test_route_can_skip_the_call(recorder: Any) -> None:
    async with client(build_app(recorder)) as c:
        assert (await c.get("/health")).text == '"ok"'
    assert recorder.records == []
    assert recorder.counts == {"skipped": 1}


async def test_identify_with_wraps_the_apps_own_auth_dependency(recorder: Any) -> None:
    async with client(build_app(recorder)) as c:
        me = await c.get("/me", headers={"Authorization": "Bearer token-a"})
        me_async = await c.get("/me-async", headers={"Authorization": "Bearer token-a"})
        denied = await c.get("/me", headers={"Authorization": "Bearer nope"})
    assert me.json() == me_async.json() == USERS["token-a"]
    assert denied.status_code == 401
    first, second, third = recorder.records
    assert (first.user_id, first.company_id, first.metadata, first.route) == ("7", "acme", {"plan": "gold"}, "/me")
    assert (second.user_id, second.company_id) == ("7", None)
    assert (third.status, third.user_id) == (401, None)  # the app's dependency refused: nothing to identify


async def test_a_raising_extractor_costs_its_part_not_the_route(recorder: Any, caplog: Any) -> None:
    async with client(build_app(recorder)) as c:
        response = await c.get("/me-broken", headers={"Authorization": "Bearer token-a"})
    assert response.status_code == 200
    [record] = recorder.records
    assert (record.user_id, record.company_id) == (None, "acme")
    assert "user_id extractor raised KeyError" in caplog.text


async def test_without_the_middleware_the_dependencies_do_nothing(recorder: Any, caplog: Any) -> None:
    async with client(build_app(recorder, wired=False)) as c:
        order = await c.get("/orders/2")
        me = await c.get("/me", headers={"Authorization": "Bearer token-a"})
    assert order.json() == {"order": 2, "captured": False}
    assert me.json() == USERS["token-a"]
    assert "no MoesifMiddleware wraps this app" in caplog.text
