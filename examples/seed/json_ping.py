"""JSON messages: ping/pong, echoed chat messages, and clear errors for bad input.

* ``{"type": "ping"}`` -> ``{"type": "pong"}``
* ``{"type": "message", "text": "..."}`` -> the same message back
* text that is not JSON -> ``{"type": "error", "detail": "Invalid JSON"}`` (the socket stays open)
* anything else JSON -> ``{"type": "error", "detail": "Unknown message type"}``
* a binary frame -> the socket is closed with 1003 (unsupported data)
"""

from __future__ import annotations

import json
from typing import Any

from brillo import status
from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket


def reply_to(data: Any) -> dict[str, Any]:
    """The answer to one decoded JSON message."""
    if isinstance(data, dict):
        kind = data.get("type")
        if kind == "ping":
            return {"type": "pong"}
        if kind == "message" and isinstance(data.get("text"), str):
            return {"type": "message", "text": data["text"]}
    return {"type": "error", "detail": "Unknown message type"}


async def json_ping(websocket: WebSocket) -> None:
    """Answer JSON text frames; refuse binary frames with 1003."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            await websocket.close(
                status.WS_1003_UNSUPPORTED_DATA, "Binary frames are not supported"
            )
            return
        try:
            data = json.loads(text)
        except ValueError:
            await websocket.send_json({"type": "error", "detail": "Invalid JSON"})
            continue
        await websocket.send_json(reply_to(data))


app = Brillo(routes=[WebSocketRoute("/ws", json_ping)])
