"""Echo: every text frame comes back as text, every binary frame as bytes."""

from __future__ import annotations

from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket


async def echo(websocket: WebSocket) -> None:
    """Accept, then send each message back in the same kind of frame until the client leaves."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message.get("bytes") or b"")


app = Brillo(routes=[WebSocketRoute("/ws", echo)])
