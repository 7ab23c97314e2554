"""Hub on the memory backend, with real brillo WebSocket objects over hand-written ASGI ends.

Runs on asyncio and trio.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from brillo.realtime import Hub, Position
from brillo.realtime.backends.base import HistoryResult
from brillo.realtime.backends.memory import MemoryBackend
from tests.support.realtime import TIMEOUT, Peer

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[Hub]:
    async with Hub("memory://", **options) as hub:
        yield hub


async def peers(count: int) -> list[Peer]:
    out = [Peer() for _ in range(count)]
    for peer in out:
        await peer.accept()
    return out


async def test_publish_reaches_every_member_encoded_once() -> None:
    async with running() as hub:
        a, b, c = await peers(3)
        async with hub.join(a.websocket, "room"), hub.join(b.websocket, "room"):
            async with hub.join(c.websocket, "room"):
                await hub.publish("room", {"n": 1, "text": "héllo"})
                await hub.publish("room", "plain")
                await hub.publish("room", b"\x01\x02")
                for peer in (a, b, c):
                    assert await peer.wait_frames(3) == [
                        '{"n":1,"text":"héllo"}',
                        "plain",
                        b"\x01\x02",
                    ]
                # one ASGI message object shared by every recipient: encoded exactly once
                assert a.sent[1] is b.sent[1] is c.sent[1]
            assert hub.members("room") == [hub.connection(a.websocket), hub.connection(b.websocket)]
        assert hub.members("room") == []
        assert hub.stats()["connections"] == 0


async def test_exclude_and_per_room_order() -> None:
    async with running() as hub:
        a, b = await peers(2)
        async with hub.join(a.websocket, "r"), hub.join(b.websocket, "r") as mb:
            for i in range(100):
                await hub.publish("r", str(i), exclude=a.websocket if i % 2 else None)
            await mb.publish("from b", include_self=False)
            await hub.publish("r", "end")
            frames_b = await b.wait_frames(101)
            assert frames_b == [str(i) for i in range(100)] + ["end"]
            frames_a = await a.wait_frames(52)
            assert frames_a == [str(i) for i in range(0, 100, 2)] + ["from b", "end"]


async def test_many_rooms_and_many_connections_per_user() -> None:
    async with running() as hub:
        phone, laptop, other = await peers(3)
        async with hub.join(phone.websocket, "a", user="ada"), hub.join(phone.websocket, "b"):
            async with (
                hub.join(laptop.websocket, "a", user="ada"),
                hub.join(other.websocket, "b", user="bob"),
            ):
                conn = hub.connection(phone.websocket)
                assert conn is not None
                assert conn.rooms == {"a", "b"}
                assert conn.user == "ada"
                await hub.send_to_user("ada", {"dm": True})
                await hub.publish("b", "to b")
                assert await phone.wait_frames(2) == ['{"dm":true}', "to b"]
                assert await laptop.wait_frames(1) == ['{"dm":true}']
                assert await other.wait_frames(1) == ["to b"]
                presence = await hub.presence("a")
                assert sorted(presence) == ["ada"]
                assert len(presence["ada"]) == 2
            assert conn.rooms == {"a", "b"}
        assert conn.rooms == frozenset()
        assert hub.stats()["users"] == 0


async def test_user_mismatch_on_one_connection_is_rejected() -> None:
    async with running() as hub:
        (a,) = await peers(1)
        async with hub.join(a.websocket, "x", user="ada"):
            with pytest.raises(ValueError, match="already joined as user 'ada'"):
                async with hub.join(a.websocket, "y", user="bob"):
                    pass


async def test_slow_consumer_does_not_delay_others_and_memory_stays_bounded() -> None:
    async with running(queue_size=8) as hub:
        slow, *fast = await peers(4)
        slow.gate = anyio.Event()
        async with hub.join(slow.websocket, "room"):
            for peer in fast:
                await hub.enter(peer.websocket, "room")
            for i in range(200):
                await hub.publish("room", str(i))
            for peer in fast:
                assert await peer.wait_frames(200) == [str(i) for i in range(200)]
            with anyio.fail_after(TIMEOUT):
                await slow.blocked.wait()
            conn = hub.connection(slow.websocket)
            assert conn is not None
            assert conn.queued == 8  # bounded
            stats = hub.stats()
            assert stats["rooms"]["room"]["dropped"] == 200 - 8 - 1  # one is in flight
            assert stats["rooms"]["room"]["queued"] == 8
            assert stats["dropped"] == 191
            assert stats["max_queued"] == 8
            slow.gate.set()
            frames = await slow.wait_frames(9)
            # the in-flight message, then the newest 8 (oldest dropped)
            assert frames == ["0"] + [str(i) for i in range(192, 200)]
            for peer in fast:
                await hub.leave(peer.websocket, "room")
        assert hub.stats()["rooms"] == {}


async def test_overflow_close_policy_closes_with_1013() -> None:
    async with running(queue_size=4, overflow="close") as hub:
        slow, fast = await peers(2)
        slow.gate = anyio.Event()
        async with hub.join(slow.websocket, "room"), hub.join(fast.websocket, "room"):
            for i in range(10):
                await hub.publish("room", str(i))
            await slow.wait(lambda p: p.closed is not None)
            assert slow.closed == {
                "type": "websocket.close",
                "code": 1013,
                "reason": "slow consumer: outbound queue full",
            }
            assert await fast.wait_frames(10) == [str(i) for i in range(10)]
            assert hub.members("room") == [hub.connection(fast.websocket)]


# Waiting for a real deadline makes anyio's trio test runner (guest mode) park a helper thread
# that outlives the test and trips the thread-leak check; the logic is backend-neutral anyio.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_stuck_writer_is_dropped_after_write_timeout() -> None:
    async with running(write_timeout=0.05) as hub:
        stuck, ok = await peers(2)
        stuck.gate = anyio.Event()
        async with hub.join(stuck.websocket, "room"), hub.join(ok.websocket, "room"):
            await hub.publish("room", "x")
            await stuck.wait(lambda p: p.closed is not None)
            assert stuck.closed is not None
            assert stuck.closed["code"] == 1013
            assert hub.members("room") == [hub.connection(ok.websocket)]
            await hub.publish("room", "y")
            assert await ok.wait_frames(2) == ["x", "y"]


async def test_broken_members_are_removed_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="brillo.realtime")
    async with running() as hub:
        gone, closed, alive = await peers(3)
        async with hub.join(alive.websocket, "room"):
            await hub.enter(gone.websocket, "room")
            await hub.enter(closed.websocket, "room")
            gone.broken = True  # the server raises OSError: peer vanished
            await closed.websocket.close()  # the app closed it: send raises RuntimeError
            await hub.publish("room", "one")
            await hub.publish("room", "two")
            assert await alive.wait_frames(2) == ["one", "two"]
            with anyio.fail_after(TIMEOUT):
                while len(hub.members("room")) > 1:
                    await anyio.sleep(0)  # writers run their cleanup; no timing involved
            assert hub.members("room") == [hub.connection(alive.websocket)]
            # leaving afterwards is a harmless no-op
            await hub.leave(gone.websocket, "room")
            await hub.leave(closed.websocket, "room")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]


async def test_membership_is_removed_when_the_handler_fails() -> None:
    async with running() as hub:
        (a,) = await peers(1)
        with pytest.raises(KeyError):
            async with hub.join(a.websocket, "room"):
                raise KeyError("boom")
        assert hub.members("room") == []
        assert await hub.presence("room") == {}
        with anyio.CancelScope() as scope:
            async with hub.join(a.websocket, "room"):
                scope.cancel()
                await anyio.sleep_forever()
        assert hub.members("room") == []


async def test_presence_events_and_metadata() -> None:
    async with running(presence_events=True) as hub:
        a, b = await peers(2)
        async with hub.join(a.websocket, "room", user="ada", meta={"name": "Ada"}):
            async with hub.join(b.websocket, "room", user="bob"):
                presence = await hub.presence("room")
                assert presence["ada"][0].meta == {"name": "Ada"}
                assert sorted(presence) == ["ada", "bob"]
            events = [json.loads(f) for f in await a.wait_frames(3)]
        assert [(e["type"], e["event"], e["user"]) for e in events] == [
            ("presence", "join", "ada"),
            ("presence", "join", "bob"),
            ("presence", "leave", "bob"),
        ]
        assert events[0]["meta"] == {"name": "Ada"}
        assert events[0]["expired"] is False


async def test_recovery_gets_exactly_what_was_missed() -> None:
    async with running(envelope=True) as hub:
        positions = [await hub.publish("doc", {"i": i}) for i in range(5)]
        assert [p.offset for p in positions if p] == [1, 2, 3, 4, 5]
        (a,) = await peers(1)
        async with hub.join(a.websocket, "doc", since=str(positions[1])) as membership:
            assert membership.recovery is not None
            assert not membership.recovery.resync_required
            assert [p.offset for p, _ in membership.recovery.messages] == [3, 4, 5]
            await hub.publish("doc", {"i": 5})
            frames = [json.loads(f) for f in await a.wait_frames(4)]
        assert [f["data"]["i"] for f in frames] == [2, 3, 4, 5]
        assert [Position.parse(f["position"]).offset for f in frames] == [3, 4, 5, 6]
        assert {f["type"] for f in frames} == {"message"}
        assert {f["room"] for f in frames} == {"doc"}


async def test_recovery_requires_resync_when_history_is_gone() -> None:
    async with running(envelope=True, history_size=3) as hub:
        first = await hub.publish("doc", 1)
        for i in range(5):
            await hub.publish("doc", i)
        assert first is not None
        a, b, c = await peers(3)
        async with hub.join(a.websocket, "doc", since=first) as too_old:
            assert too_old.recovery is not None
            assert too_old.recovery.resync_required
            notice = json.loads((await a.wait_frames(1))[0])
        async with hub.join(b.websocket, "doc", since=Position("other-epoch", 2)) as wrong:
            assert wrong.recovery is not None
            assert wrong.recovery.resync_required
        async with hub.join(c.websocket, "doc", since=Position(first.epoch, 6)) as current:
            assert current.recovery is not None
            assert not current.recovery.resync_required
            assert current.recovery.messages == []
        assert notice == {"type": "resync", "room": "doc", "position": f"{first.epoch}:6"}


class _PausingBackend(MemoryBackend):
    """A memory backend whose history read waits until released (to publish meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = anyio.Event()
        self.release = anyio.Event()

    async def history(self, topic: str, after: int = 0) -> HistoryResult:
        self.reading.set()
        await self.release.wait()
        return await super().history(topic, after)


async def test_recovery_has_no_gap_and_no_duplicate_with_concurrent_publishes() -> None:
    backend = _PausingBackend()
    async with Hub(backend=backend) as hub:
        since = await hub.publish("r", "m1")
        await hub.publish("r", "m2")
        (a,) = await peers(1)
        result: list[Any] = []

        async def join() -> None:
            membership = await hub.enter(a.websocket, "r", since=since)
            result.append(membership)

        async with anyio.create_task_group() as tg:
            tg.start_soon(join)
            with anyio.fail_after(TIMEOUT):
                await backend.reading.wait()
            await hub.publish("r", "m3")  # live during recovery, and in the history read after
            backend.release.set()
        await hub.publish("r", "m4")
        assert await a.wait_frames(3) == ["m2", "m3", "m4"]
        await hub.leave(a.websocket, "r")


async def test_shutdown_flushes_and_closes_with_1001() -> None:
    a, b = await peers(2)
    async with Hub(shutdown_message={"type": "bye"}) as hub:
        await hub.enter(a.websocket, "room")
        await hub.enter(b.websocket, "other")
        await hub.publish("room", "last words")
    for peer in (a, b):
        assert peer.closed is not None
        assert peer.closed["code"] == 1001
    assert a.frames == ["last words", '{"type":"bye"}']
    assert b.frames == ['{"type":"bye"}']
    assert hub.stats()["connections"] == 0


async def test_stats_counts() -> None:
    async with running() as hub:
        a, b = await peers(2)
        async with hub.join(a.websocket, "room"), hub.join(b.websocket, "room"):
            for _ in range(3):
                await hub.publish("room", "x")
            await a.wait_frames(3)
            await b.wait_frames(3)
            stats = hub.stats()
        assert stats["rooms"]["room"] == {
            "members": 2,
            "queued": 0,
            "dropped": 0,
            "published": 3,
            "delivered": 6,
        }
        assert stats["published"] == 3
        assert stats["delivered"] == 6
        assert stats["connections"] == 2


async def test_clear_errors() -> None:
    hub = Hub()
    (a,) = await peers(1)
    with pytest.raises(RuntimeError, match="Hub is not running"):
        await hub.enter(a.websocket, "room")
    with pytest.raises(RuntimeError, match="Hub is not running"):
        await hub.publish("room", "x")
    with pytest.raises(RuntimeError, match="Hub is not running"):
        await hub.send_to_user("ada", "x")
    async with hub:
        with pytest.raises(ValueError, match="invalid room name"):
            await hub.enter(a.websocket, "@user")
        with pytest.raises(ValueError, match="invalid room name"):
            await hub.enter(a.websocket, "")
        with pytest.raises(TypeError, match="JSON-serialisable"):
            await hub.publish("room", object())
        with pytest.raises(TypeError, match="meta must be JSON-serialisable"):
            await hub.enter(a.websocket, "room", meta={"x": object()})
        assert hub.stats()["connections"] == 0
        with pytest.raises(ValueError, match="invalid position"):
            await hub.enter(a.websocket, "room", since="nonsense")
        with pytest.raises(RuntimeError, match="already running"):
            await hub.__aenter__()
    async with Hub(envelope=True) as env_hub:
        with pytest.raises(TypeError, match="JSON data only"):
            await env_hub.publish("room", b"raw")
    with pytest.raises(ValueError, match="overflow"):
        Hub(overflow="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_size"):
        Hub(queue_size=0)


async def test_lifespan_helpers() -> None:
    hub = Hub()

    @asynccontextmanager
    async def mine(app: Any) -> AsyncIterator[dict[str, Any]]:
        assert hub.running
        yield {"answer": 42}

    seen: list[bool] = []
    async with hub.wrap_lifespan(mine)(None) as state:
        assert state == {"answer": 42}
        seen.append(hub.running)
    seen.append(hub.running)
    async with hub.lifespan(None):
        seen.append(hub.running)
    seen.append(hub.running)
    assert seen == [True, False, True, False]


async def test_history_replays_excluded_messages_and_send_keeps_order() -> None:
    backend = _PausingBackend()
    async with Hub(backend=backend) as hub:
        since = await hub.publish("r", "m1")
        (a,) = await peers(1)
        memberships: list[Any] = []

        async def join() -> None:
            memberships.append(await hub.enter(a.websocket, "r", since=since))

        async with anyio.create_task_group() as tg:
            tg.start_soon(join)
            with anyio.fail_after(TIMEOUT):
                await backend.reading.wait()
            connection = hub.connection(a.websocket)
            assert connection is not None
            # excluded from live delivery, but history has it and recovery replays it once
            await hub.publish("r", "m2", exclude=connection)
            backend.release.set()
        await hub.publish("r", "m3", exclude=connection)
        memberships[0].send("direct")
        await hub.publish("r", "m4")
        assert await a.wait_frames(3) == ["m2", "direct", "m4"]
        await hub.leave(a.websocket, "r")
