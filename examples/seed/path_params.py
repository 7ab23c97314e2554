"""Typed path parameters, on a function route and on a WebSocketEndpoint class.

``/ws/{user_id:int}`` and ``/ws/room/{room_id:int}/user/{user_id:int}`` (functions), and the same
two paths under ``/endpoint`` served by :class:`ChatEndpoint`. On connect the server sends
``{"type": "hello", "user_id": ..., "room_id": ...}`` (ints, ``room_id`` may be None); each text
message comes back as ``{"user_id": ..., "room_id": ..., "text": ...}``.
"""

from __future__ import annotations

from typing import Any

from brillo.applications import Brillo
from brillo.endpoints import WebSocketEndpoint
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect


def ids(websocket: WebSocket) -> dict[str, Any]:
    """The converted path parameters (the ``int`` convertor already made them ints)."""
    params = websocket.path_params
    return {"user_id": params["user_id"], "room_id": params.get("room_id")}


async def user_socket(websocket: WebSocket) -> None:
    """Greets with the ids, then echoes text tagged with them."""
    await websocket.accept()
    who = ids(websocket)
    await websocket.send_json({"type": "hello", **who})
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({**who, "text": text})
    except WebSocketDisconnect:
        pass


class ChatEndpoint(WebSocketEndpoint):
    """The same behaviour as :func:`user_socket`, as an endpoint class."""

    encoding = "text"

    async def on_connect(self, websocket: WebSocket) -> None:
        """Accept and greet."""
        await websocket.accept()
        await websocket.send_json({"type": "hello", **ids(websocket)})

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Echo the text, tagged with the ids."""
        await websocket.send_json({**ids(websocket), "text": data})


app = Brillo(
    routes=[
        WebSocketRoute("/ws/{user_id:int}", user_socket, name="user"),
        WebSocketRoute("/ws/room/{room_id:int}/user/{user_id:int}", user_socket, name="room_user"),
        WebSocketRoute("/endpoint/ws/{user_id:int}", ChatEndpoint, name="endpoint_user"),
        WebSocketRoute(
            "/endpoint/ws/room/{room_id:int}/user/{user_id:int}",
            ChatEndpoint,
            name="endpoint_room_user",
        ),
    ]
)
