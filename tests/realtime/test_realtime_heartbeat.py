"""The hub's application-level heartbeat: pings, touch, heartbeat timeouts; asyncio and trio.

The over-the-wire proof (a client process stopped with SIGSTOP under real uvicorn) is in
tests/integration/realtime/test_realtime_liveness_wire.py.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from brillo.realtime import Hub
from brillo.realtime._heartbeat import Heartbeat
from brillo.realtime.prometheus import render
from tests.support.realtime import Peer

pytestmark = pytest.mark.anyio

PING = {"type": "ping"}


async def test_members_get_pings_and_touched_connections_stay() -> None:
    async with Hub("memory://", heartbeat_interval=0.05, heartbeat_timeout=0.4) as hub:
        alive, outside = Peer(), Peer()
        await alive.accept()
        await outside.accept()
        async with hub.join(alive.websocket, "room"):
            # answer every ping, for longer than the timeout
            with anyio.fail_after(5):
                for count in range(1, 15):
                    await alive.wait(lambda p, n=count: p.json().count(PING) >= n)
                    hub.touch(alive.websocket)
            assert alive.closed is None
            assert hub.members("room")[0].socket is alive.websocket
            assert hub.stats()["heartbeat"]["pings"] >= 14
            assert hub.stats()["heartbeat"]["timeouts"] == 0
        assert outside.sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]


async def test_a_silent_connection_is_closed_with_1001_and_leaves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "brillo.realtime")
    async with Hub(
        "memory://", heartbeat_interval=0.05, heartbeat_timeout=0.3, presence_events=True
    ) as hub:
        silent, watcher = Peer(), Peer()
        await silent.accept()
        await watcher.accept()
        async with (
            hub.join(watcher.websocket, "room", user="watcher"),
            hub.join(silent.websocket, "room", user="silent"),
        ):
            started = anyio.current_time()
            # the watcher answers; the silent one never does
            with anyio.fail_after(5):
                while silent.closed is None:
                    await watcher.wait(lambda p, n=len(watcher.sent): len(p.sent) > n)
                    hub.touch(watcher.websocket)
            elapsed = anyio.current_time() - started
            assert silent.closed == {
                "type": "websocket.close",
                "code": 1001,
                "reason": "heartbeat timeout",
            }
            assert 0.3 <= elapsed < 2.0
            # it left the room: presence is gone and others heard it leave
            with anyio.fail_after(5):
                while "silent" in await hub.presence("room"):
                    await anyio.sleep(0.01)
            await watcher.wait(
                lambda p: any(
                    m.get("type") == "presence" and m["event"] == "leave" for m in p.json()
                )
            )
            assert [c.user for c in hub.members("room")] == ["watcher"]
            assert watcher.closed is None
            stats = hub.stats()
            assert stats["heartbeat"]["timeouts"] == 1
            assert "brillo_realtime_heartbeat_timeouts_total 1" in render(hub)
    assert [r for r in caplog.records if "heartbeat timeout" in r.getMessage()]


async def test_the_heartbeat_drops_what_was_queued_for_a_dead_client() -> None:
    async with Hub("memory://", heartbeat_interval=0.05, heartbeat_timeout=0.2) as hub:
        stuck = Peer()
        await stuck.accept()
        async with hub.join(stuck.websocket, "room"):
            stuck.gate = anyio.Event()  # its sends never complete: the network path is gone
            await hub.publish("room", "one")
            await hub.publish("room", "two")
            with anyio.fail_after(5):
                while hub.members("room"):
                    await anyio.sleep(0.01)
            # closed without waiting for the stuck send (not the write timeout's 1013)
            assert hub.stats()["heartbeat"]["timeouts"] == 1
            stuck.gate.set()
            await stuck.wait(lambda p: p.closed is not None)
            assert stuck.closed is not None
            assert stuck.closed["code"] == 1001


async def test_timeout_without_pings_and_no_heartbeat_by_default() -> None:
    async with Hub("memory://", heartbeat_timeout=0.2) as hub:
        peer = Peer()
        await peer.accept()
        async with hub.join(peer.websocket, "room"):
            await peer.wait(lambda p: p.closed is not None)
            assert peer.json() == []  # no pings were sent, only the close
    async with Hub("memory://") as hub:
        peer = Peer()
        await peer.accept()
        async with hub.join(peer.websocket, "room"):
            hub.touch(peer.websocket)  # a no-op without a heartbeat
            await anyio.sleep(0.2)
            assert peer.sent[1:] == []
            assert hub.stats()["heartbeat"] == {"pings": 0, "timeouts": 0}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval must be a positive number"):
        Hub("memory://", heartbeat_interval=0)
    with pytest.raises(ValueError, match="heartbeat_timeout must be a positive number"):
        Hub("memory://", heartbeat_interval=1, heartbeat_timeout=float("nan"))
    assert Heartbeat(10, None).timeout == 20
    assert Heartbeat(None, 8).step == 2
