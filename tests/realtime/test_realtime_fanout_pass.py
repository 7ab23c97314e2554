"""The fan-out pass: eager sends awaited one after another, a waiting member handed to its writer.

Members whose sockets are safe for eager sends get each message inside ``publish`` itself. When
one member's send has to wait, the pass stops at that member, its writer finishes that send, and
a fresh pass serves the members after it: nobody waits for the slow one, and every member still
gets its messages once, in order.
"""

from __future__ import annotations

import anyio
import pytest

from brillo.realtime import Hub
from brillo.websockets import WebSocketState
from tests.support.realtime import TIMEOUT, Peer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


async def eager_peers(count: int) -> list[Peer]:
    peers = [Peer() for _ in range(count)]
    for peer in peers:
        await peer.accept()
        peer.websocket.eager_send_safe = True  # type: ignore[attr-defined]
    return peers


async def test_a_waiting_member_does_not_stop_the_pass_for_the_others() -> None:
    async with Hub("memory://") as hub:
        first, slow, third, fourth = await eager_peers(4)
        slow.gate = anyio.Event()
        for peer in (first, slow, third, fourth):
            await hub.enter(peer.websocket, "room")
        for i in range(5):
            await hub.publish("room", str(i))
            # delivered inside publish, before any other task ran: no writer was woken for them
            for peer in (first, third, fourth):
                assert peer.frames == [str(n) for n in range(i + 1)]
            assert hub.stats()["queued"] >= 0
        with anyio.fail_after(TIMEOUT):
            await slow.blocked.wait()
        assert slow.frames == []
        stats = hub.stats()
        assert stats["rooms"]["room"]["delivered"] == 15
        assert stats["rooms"]["room"]["queued"] == 4  # behind the send in flight
        slow.gate.set()
        assert await slow.wait_frames(5) == [str(n) for n in range(5)]
        with anyio.fail_after(TIMEOUT):
            while hub.stats()["rooms"]["room"]["delivered"] < 20:
                await anyio.sleep(0.01)
        stats = hub.stats()
        assert (stats["queued"], stats["dropped"]) == (0, 0)
        # once its writer caught up, the slow member takes eager sends again
        slow.gate = None
        await hub.publish("room", "after")
        assert all(p.frames[-1] == "after" for p in (first, slow, third, fourth))
        for peer in (first, slow, third, fourth):
            await hub.leave(peer.websocket, "room")


async def test_several_waiting_members_in_one_pass() -> None:
    async with Hub("memory://") as hub:
        peers = await eager_peers(6)
        gates = {1: anyio.Event(), 3: anyio.Event(), 5: anyio.Event()}
        for index, gate in gates.items():
            peers[index].gate = gate
        for peer in peers:
            await hub.enter(peer.websocket, "room")
        await hub.publish("room", "one")
        await hub.publish("room", "two")
        for index in (0, 2, 4):
            assert peers[index].frames == ["one", "two"]
        for gate in gates.values():
            gate.set()
        for index in gates:
            assert await peers[index].wait_frames(2) == ["one", "two"]
        with anyio.fail_after(TIMEOUT):
            while hub.stats()["rooms"]["room"]["delivered"] < 12:
                await anyio.sleep(0.01)
        assert hub.stats()["queued"] == 0
        for peer in peers:
            await hub.leave(peer.websocket, "room")


async def test_a_member_failing_in_the_pass_is_dropped_and_the_pass_goes_on() -> None:
    async with Hub("memory://") as hub:
        first, broken, third = await eager_peers(3)
        broken.broken = True
        for peer in (first, broken, third):
            await hub.enter(peer.websocket, "room")
        await hub.publish("room", "x")
        assert first.frames == ["x"]
        assert third.frames == ["x"]
        with anyio.fail_after(TIMEOUT):
            while hub.connection(broken.websocket) is not None:
                await anyio.sleep(0.01)
        await hub.publish("room", "y")
        assert first.frames == ["x", "y"]
        assert [c.key for c in hub.members("room")] == [
            hub.connection(p.websocket).key  # type: ignore[union-attr]
            for p in (first, third)
        ]
        for peer in (first, third):
            await hub.leave(peer.websocket, "room")


async def test_a_server_send_that_fails_leaves_the_websocket_as_its_own_send_would() -> None:
    """Fan-out calls the server's send under brillo's WebSocket; a failure is redone through
    ``WebSocket.send``, so the WebSocket learns that its peer is gone (1006)."""
    async with Hub("memory://") as hub:
        alive, vanished = await eager_peers(2)
        for peer in (alive, vanished):
            await hub.enter(peer.websocket, "room")
        vanished.broken = True
        await hub.publish("room", "x")
        with anyio.fail_after(TIMEOUT):
            while hub.connection(vanished.websocket) is not None:
                await anyio.sleep(0.01)
        assert vanished.websocket.application_state is WebSocketState.DISCONNECTED
        assert alive.frames == ["x"]
        await hub.leave(alive.websocket, "room")


async def test_the_writer_also_redoes_a_failed_server_send_through_the_websocket() -> None:
    async with Hub("memory://") as hub:
        (peer,) = await eager_peers(1)
        await hub.enter(peer.websocket, "room")
        peer.gate = anyio.Event()
        for text in ("a", "b", "c"):
            await hub.publish("room", text)  # "a" waits at the gate, "b" and "c" are queued
        with anyio.fail_after(TIMEOUT):
            await peer.blocked.wait()
        peer.broken = True
        peer.gate.set()
        with anyio.fail_after(TIMEOUT):
            while hub.connection(peer.websocket) is not None:
                await anyio.sleep(0.01)
        assert peer.frames == ["a"]
        assert peer.websocket.application_state is WebSocketState.DISCONNECTED
