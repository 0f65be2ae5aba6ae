"""A FastAPI app reporting to Moesif (or the local collector): ``uvicorn app:app --app-dir examples``.

Reads MOESIF_APPLICATION_ID and MOESIF_BASE_URI (e.g. http://127.0.0.1:8088 for the local collector).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from fastapi_moesif import MoesifCall, MoesifMiddleware, identify_with, moesif_call

app = FastAPI()
app.add_middleware(MoesifMiddleware)  # settings from the MOESIF_* environment variables


def get_current_user(request: Request) -> dict[str, str]:
    return {"id": request.headers.get("x-user", "anonymous"), "org": "acme"}


current_user = identify_with(get_current_user, user_id=lambda user: user["id"], company_id=lambda user: user["org"])


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, Any]:
    return {"id": item_id, "name": "widget"}


@app.post("/items")
async def create(request: Request) -> dict[str, Any]:
    return {"created": await request.json()}


@app.get("/me")
async def me(
    user: Annotated[dict[str, str], Depends(current_user)], moesif: Annotated[MoesifCall, Depends(moesif_call)]
) -> dict[str, str]:
    moesif.add_metadata({"plan": "gold"})
    return user


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("example failure")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: {i}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream")
