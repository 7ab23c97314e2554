"""Hub.attach / detach / send: a connection the hub keeps between its rooms (asyncio and trio)."""

from __future__ import annotations

import pytest

from brillo.realtime import Hub
from tests.support.realtime import Peer

pytestmark = pytest.mark.anyio


async def test_an_attached_connection_outlives_its_rooms_and_keeps_order() -> None:
    async with Hub("memory://") as hub:
        peer = Peer()
        await peer.accept()
        connection = await hub.attach(peer.websocket, user="ada", meta={"n": 1})
        assert hub.connection(peer.websocket) is connection
        assert hub.send(peer.websocket, {"hello": 1})
        await hub.enter(peer.websocket, "room")
        await hub.publish("room", "in the room")
        await hub.leave(peer.websocket, "room")
        # Leaving its last room does not drop it (nor what is queued for it).
        assert hub.connection(peer.websocket) is connection
        assert hub.send(connection, "after")
        assert await peer.wait_frames(3) == ['{"hello":1}', "in the room", "after"]
        assert hub.stats()["connections"] == 1
        await hub.detach(peer.websocket)
        assert hub.connection(peer.websocket) is None
        assert hub.stats()["connections"] == 0
        assert not hub.send(peer.websocket, "nobody hears this")
        assert peer.closed is None  # detach leaves the socket to its owner
        await hub.detach(peer.websocket)  # idempotent


async def test_detach_leaves_every_room_with_presence_leave_events() -> None:
    async with Hub("memory://", presence_events=True) as hub:
        watcher, peer = Peer(), Peer()
        await watcher.accept()
        await peer.accept()
        await hub.enter(watcher.websocket, "a")
        await hub.attach(peer.websocket, user="bob")
        await hub.enter(peer.websocket, "a")
        await hub.enter(peer.websocket, "b")
        await hub.detach(peer.websocket)
        assert hub.members("b") == []
        assert "bob" not in [c.user for c in hub.members("a")]
        await watcher.wait(
            lambda p: any(m.get("event") == "leave" and m["user"] == "bob" for m in p.json())
        )
        assert "bob" not in await hub.presence("a")
        assert "bob" not in await hub.presence("b")
