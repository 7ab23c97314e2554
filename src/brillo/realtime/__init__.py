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

On top of the hub, :class:`Channels` runs brillo's channel protocol: typed events over one
WebSocket, many rooms per socket, replies, presence and resume (docs/channels.md), with a
browser client (``brillo-channels.js``), a Python client (:mod:`brillo.realtime.client`) and
test helpers (:mod:`brillo.realtime.testing`).

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
from brillo.realtime.channels import (
    Channel,
    ChannelError,
    Channels,
    Context,
    Identity,
    JoinRefused,
)
from brillo.realtime.hub import Connection, Hub, Membership, Recovery, SocketLike

__all__ = [
    "Backend",
    "BackendError",
    "Channel",
    "ChannelError",
    "Channels",
    "Connection",
    "Context",
    "Hub",
    "Identity",
    "JoinRefused",
    "Membership",
    "Position",
    "PresenceEntry",
    "Recovery",
    "SocketLike",
    "create_backend",
    "register_backend",
]
