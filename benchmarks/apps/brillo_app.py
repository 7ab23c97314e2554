"""The benchmark endpoints written against brillo (same code shape as ``starlette_app``).

Fan-out uses ``brillo.realtime.Hub`` (``memory://``, or the URL in ``BRILLO_BENCH_HUB`` for the
multi-process runs); if that module is not importable yet the app falls back to the same
connection-manager loop as the Starlette variant and says so in ``FANOUT_IMPL``.
"""

from __future__ import annotations

import os
from typing import Any

from brillo.applications import Brillo
from brillo.requests import Request
from brillo.responses import JSONResponse, PlainTextResponse
from brillo.routing import Route, WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect

try:
    from brillo.realtime import Hub
except ImportError:  # realtime not landed yet
    Hub = None  # type: ignore[assignment,misc]

FANOUT_IMPL = "hub" if Hub is not None else "connection-manager"


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def json_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, world!"})


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(text)
    except WebSocketDisconnect:
        pass


async def ws_json(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_json()
            if data.get("type") == "ping":
                await websocket.send_json({"type": "pong"})
            elif data.get("type") == "message":
                await websocket.send_json(data)
    except WebSocketDisconnect:
        pass


if Hub is not None:
    # the multi-process runs share a Redis or PostgreSQL hub between the workers
    hub = Hub(os.environ.get("BRILLO_BENCH_HUB", "memory://"))

    async def ws_fanout(websocket: WebSocket) -> None:
        room = websocket.query_params.get("room", "bench")
        await websocket.accept()
        async with hub.join(websocket, room):
            try:
                while True:
                    data = await websocket.receive_json()
                    await hub.publish(room, data)
            except WebSocketDisconnect:
                pass

    lifespan: Any = hub.lifespan

else:
    rooms: dict[str, set[WebSocket]] = {}

    async def ws_fanout(websocket: WebSocket) -> None:
        room = websocket.query_params.get("room", "bench")
        await websocket.accept()
        members = rooms.setdefault(room, set())
        members.add(websocket)
        try:
            while True:
                data = await websocket.receive_json()
                for member in list(members):
                    try:
                        await member.send_json(data)
                    except Exception:
                        members.discard(member)
        except WebSocketDisconnect:
            pass
        finally:
            members.discard(websocket)

    lifespan = None


app = Brillo(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json_endpoint),
        WebSocketRoute("/ws/echo", ws_echo),
        WebSocketRoute("/ws/json", ws_json),
        WebSocketRoute("/ws/fanout", ws_fanout),
    ],
    lifespan=lifespan,
)
