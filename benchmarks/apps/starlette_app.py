"""The benchmark endpoints written as idiomatic Starlette 1.10 code.

Starlette is installed only in .venv-bench for comparison; brillo never depends on it. The fan-out
endpoint is the classic connection-manager pattern: a dict of sets, and a loop that awaits
``send_json`` for every member in turn.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


class ConnectionManager:
    def __init__(self) -> None:
        self.rooms: dict[str, set[WebSocket]] = {}

    def connect(self, room: str, websocket: WebSocket) -> None:
        self.rooms.setdefault(room, set()).add(websocket)

    def disconnect(self, room: str, websocket: WebSocket) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.discard(websocket)
            if not members:
                del self.rooms[room]

    async def broadcast(self, room: str, data: Any) -> None:
        for member in list(self.rooms.get(room, ())):
            try:
                await member.send_json(data)
            except Exception:
                self.disconnect(room, member)


manager = ConnectionManager()


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


async def ws_fanout(websocket: WebSocket) -> None:
    room = websocket.query_params.get("room", "bench")
    await websocket.accept()
    manager.connect(room, websocket)
    try:
        while True:
            data = await websocket.receive_json()
            await manager.broadcast(room, data)
    except WebSocketDisconnect:
        pass
    finally:
        manager.disconnect(room, websocket)


app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json_endpoint),
        WebSocketRoute("/ws/echo", ws_echo),
        WebSocketRoute("/ws/json", ws_json),
        WebSocketRoute("/ws/fanout", ws_fanout),
    ]
)
