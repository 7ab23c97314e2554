"""Hub.drain: what was queued, then the farewell, then 1001, in batches within the deadline.

The same drain under a real server, on SIGTERM, with 1,000 clients:
tests/integration/test_serve.py.
"""

from __future__ import annotations

import anyio
import pytest

from brillo.realtime import Hub
from tests.support.realtime import Peer

pytestmark = pytest.mark.anyio

CLOSE = {"type": "websocket.close", "code": 1001, "reason": "server shutting down"}


async def test_drain_flushes_says_goodbye_and_closes_in_batches() -> None:
    async with Hub("memory://", shutdown_message={"type": "bye"}) as hub:
        peers = [Peer() for _ in range(5)]
        for peer in peers:
            await peer.accept()
            await hub.enter(peer.websocket, "room")
        for n in range(3):
            await hub.publish("room", {"n": n})
        assert await hub.drain(5.0, batch_size=2) == 5
        for peer in peers:
            assert peer.json() == [{"n": 0}, {"n": 1}, {"n": 2}, {"type": "bye"}]
            assert peer.closed == CLOSE
        assert hub.members("room") == []
        assert hub.running  # the hub itself keeps running
        assert await hub.drain(1.0) == 0


async def test_a_stuck_client_does_not_hold_back_the_others_past_the_deadline() -> None:
    async with Hub("memory://", shutdown_message="bye", write_timeout=60) as hub:
        stuck, *others = [Peer() for _ in range(4)]
        for peer in (stuck, *others):
            await peer.accept()
            await hub.enter(peer.websocket, "room")
        stuck.gate = anyio.Event()  # its sends never complete
        await hub.publish("room", "hello")
        with anyio.fail_after(5):
            await stuck.blocked.wait()
        started = anyio.current_time()
        # one per batch: the stuck one first, the others after its share of the time
        await hub.drain(0.6, batch_size=1)
        assert anyio.current_time() - started < 3.0
        for peer in others:
            assert peer.texts == ["hello", "bye"]
            assert peer.closed == CLOSE
        stuck.gate.set()


async def test_connections_that_join_during_the_drain_are_closed_too() -> None:
    async with Hub("memory://") as hub:
        first, late = Peer(), Peer()
        await first.accept()
        await late.accept()
        await hub.enter(first.websocket, "room")
        first.gate = anyio.Event()  # keeps the first batch busy while the late one joins
        await hub.publish("room", "x")
        with anyio.fail_after(5):
            await first.blocked.wait()
        async with anyio.create_task_group() as group:
            group.start_soon(hub.drain, 5.0)
            await anyio.wait_all_tasks_blocked()  # the drain waits on the first batch
            await hub.enter(late.websocket, "room")
            first.gate.set()
        assert first.closed == CLOSE
        assert late.closed == CLOSE
