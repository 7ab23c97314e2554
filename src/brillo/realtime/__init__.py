"""brillo.realtime: rooms, fan-out, presence and history for WebSocket apps.

``Hub("memory://")`` runs in one process; ``Hub("redis://127.0.0.1:6379/0")`` shares rooms,
presence and history between every process that points at the same Redis database::

    hub = Hub("memory://")

    async def chat(websocket):
        await websocket.accept()
        async with hub.join(websocket, "lobby", user="ada"):
            async for text in websocket.iter_text():
                await hub.publish("lobby", text)

    app = Brillo(routes=[WebSocketRoute("/ws", chat)], lifespan=hub.lifespan)

The core of brillo never imports this package.
"""

from __future__ import annotations

from brillo.realtime.backends import (
    Backend,
    BackendError,
    Position,
    PresenceEntry,
    create_backend,
    register_backend,
)
from brillo.realtime.hub import Connection, Hub, Membership, Recovery, SocketLike

__all__ = [
    "Backend",
    "BackendError",
    "Connection",
    "Hub",
    "Membership",
    "Position",
    "PresenceEntry",
    "Recovery",
    "SocketLike",
    "create_backend",
    "register_backend",
]
