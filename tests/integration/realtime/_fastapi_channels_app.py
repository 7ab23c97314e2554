"""A real FastAPI app (real Starlette underneath) that uses brillo.realtime channels.

Run by tests/integration/realtime/test_channels_fastapi.py as
``python -m uvicorn tests.integration.realtime._fastapi_channels_app:app`` in a child process,
so this pytest process never imports starlette. brillo itself does not import it either:
``GET /modules`` lists the brillo modules loaded and which starlette is in use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI, WebSocket

from brillo.realtime import Hub
from brillo.realtime.asyncapi import AsyncAPIEndpoint
from brillo.realtime.channels import Channel, Channels, ClientScript, Context


class Say(msgspec.Struct):
    text: str


hub = Hub(
    os.environ.get("BRILLO_REALTIME_URL", "memory://"),
    envelope=True,
    presence_events=True,
    heartbeat_interval=0.2,
)
room = Channel("room:{id}", replay=5)
room.emits("said", Say)


@room.on("say")
async def say(ctx: Context, payload: Say) -> dict[str, Any]:
    position = await ctx.broadcast("said", {"user": ctx.user, "text": payload.text})
    return {"position": str(position)}


channels = Channels(hub, [room])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with hub:
        yield


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def socket(websocket: WebSocket, user: str) -> None:
    await channels.serve(websocket, user=user, meta={"name": user.title()})


@app.get("/presence/{room_id}")
async def presence(room_id: str) -> dict[str, list[str]]:
    found = await hub.presence(f"room:{room_id}")
    return {user: [e.connection for e in entries] for user, entries in found.items()}


@app.post("/announce/{room_id}")
async def announce(room_id: str, body: dict[str, str]) -> dict[str, str]:
    position = await channels.broadcast(f"room:{room_id}", "said", {"user": "http", **body})
    return {"position": str(position)}


@app.get("/modules")
async def modules() -> dict[str, Any]:
    import starlette

    return {
        "starlette": starlette.__file__,
        "brillo": sorted(m for m in sys.modules if m == "brillo" or m.startswith("brillo.")),
    }


@app.get("/heartbeat")
async def heartbeat() -> dict[str, int]:
    return hub.stats()["heartbeat"]  # type: ignore[no-any-return]


# Both are plain ASGI apps: Starlette routes to them as they are.
# (Starlette's add_route is typed for request handlers only; it mounts ASGI apps as well.)
app.add_route("/brillo-channels.js", ClientScript())  # type: ignore[arg-type]
app.add_route("/asyncapi.json", AsyncAPIEndpoint(channels, ws_path="/ws"))  # type: ignore[arg-type]
