"""A chat: a ConnectionManager keeps a set of sockets per room and broadcasts to it.

Connect to ``/chat/{room}?user=NAME``. Everyone in the room (the newcomer included) gets
``{"type": "join", "user": NAME}``; each text message is broadcast as
``{"type": "message", "user": NAME, "text": ...}``; leaving broadcasts ``{"type": "leave", ...}``.
"""

from __future__ import annotations

from typing import Any

from brillo import status
from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected


class ConnectionManager:
    """Room name -> the set of sockets in it."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[WebSocket]] = {}

    async def connect(self, room: str, websocket: WebSocket) -> None:
        """Accept the socket and add it to ``room``."""
        await websocket.accept()
        self.rooms.setdefault(room, set()).add(websocket)

    def disconnect(self, room: str, websocket: WebSocket) -> None:
        """Remove the socket; forget the room once it is empty."""
        members = self.rooms.get(room)
        if members is None:
            return
        members.discard(websocket)
        if not members:
            del self.rooms[room]

    async def broadcast(self, room: str, message: dict[str, Any]) -> None:
        """Send ``message`` to everyone in ``room``; drop sockets that have gone away."""
        for websocket in list(self.rooms.get(room, ())):
            try:
                await websocket.send_json(message)
            except (WebSocketDisconnect, WebSocketDisconnected):  # it left mid-broadcast
                self.disconnect(room, websocket)


def create_app() -> Brillo:
    """A chat app with its own ConnectionManager (``app.state.manager``)."""
    manager = ConnectionManager()

    async def chat(websocket: WebSocket) -> None:
        room: str = websocket.path_params["room"]
        user = websocket.query_params.get("user", "").strip()
        if not user:
            await websocket.close(status.WS_1008_POLICY_VIOLATION, "Missing ?user= name")
            return
        await manager.connect(room, websocket)
        await manager.broadcast(room, {"type": "join", "user": user})
        try:
            while True:
                text = await websocket.receive_text()
                await manager.broadcast(room, {"type": "message", "user": user, "text": text})
        except WebSocketDisconnect:
            pass
        finally:
            manager.disconnect(room, websocket)
        await manager.broadcast(room, {"type": "leave", "user": user})

    application = Brillo(routes=[WebSocketRoute("/chat/{room}", chat)])
    application.state.manager = manager
    return application


app = create_app()
