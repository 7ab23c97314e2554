"""RedisBackend against a real redis-server: the shared contract, plus what spans processes.

redis-py's asyncio client is asyncio-only, so these tests run on asyncio only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import redis

from brillo.realtime import Hub
from brillo.realtime.backends.base import BackendError, Envelope, PresenceEntry
from brillo.realtime.backends.redis import RedisBackend
from tests.support.backend_contract import BackendContract, connected
from tests.support.realtime import Peer
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


class TestRedisContract(BackendContract):
    @pytest.fixture
    def make_backend(self, redis_url: str) -> Callable[..., RedisBackend]:
        def make(**options: Any) -> RedisBackend:
            return RedisBackend(redis_url, **options)

        return make


async def test_two_processes_share_messages_presence_and_history(redis_url: str) -> None:
    one, two = RedisBackend(redis_url), RedisBackend(redis_url)
    got_one, _ = await connected(one)
    got_two, presence_two = await connected(two)
    try:
        await one.subscribe("room")
        await two.subscribe("room")
        await one.presence_join("room", PresenceEntry("a.1", "ada", {"name": "Ada"}))
        position = await two.publish("room", Envelope("hello"), history=True)
        assert [d.payload for d in await got_one.wait(1)] == ["hello"]
        assert [d.payload for d in await got_two.wait(1)] == ["hello"]
        listed = await two.presence("room")
        assert [(e.connection, e.user, e.meta) for e in listed] == [("a.1", "ada", {"name": "Ada"})]
        event = (await presence_two.wait(1))[0]
        assert (event.event, event.entry.user) == ("join", "ada")
        assert (await one.history("room")).position == position
    finally:
        await one.close()
        await two.close()


async def test_members_of_a_dead_process_expire(redis_url: str) -> None:
    dead = RedisBackend(redis_url, presence_ttl=0.6)
    alive = RedisBackend(redis_url, presence_ttl=0.6)
    await connected(dead)
    _, events = await connected(alive)
    try:
        await alive.subscribe("room")
        await alive.presence_join("room", PresenceEntry("b.1", "bob", {}))
        await dead.presence_join("room", PresenceEntry("a.1", "ada", {}))
        await dead.close()  # stops heartbeating without leaving, like kill -9
        got = await events.wait(3, timeout=10)
        leave = got[2]
        assert (leave.event, leave.entry.connection, leave.expired) == ("leave", "a.1", True)
        assert [e.connection for e in await alive.presence("room")] == ["b.1"]
    finally:
        await alive.close()


async def test_flush_changes_the_epoch(redis_server: RedisServer, redis_url: str) -> None:
    backend = RedisBackend(redis_url)
    await connected(backend)
    try:
        before = await backend.publish("r", Envelope("x"), history=True)
        redis_server.flush()
        after = await backend.publish("r", Envelope("y"), history=True)
        assert before is not None
        assert after is not None
        assert after.epoch != before.epoch
        assert after.offset == 1
    finally:
        await backend.close()


async def test_history_ttl_is_applied(redis_url: str) -> None:
    backend = RedisBackend(redis_url, history_ttl=30)
    await connected(backend)
    try:
        await backend.publish("r", Envelope("x"), history=True)
        with redis.Redis.from_url(redis_url) as client:
            ttl = client.pttl("brillo:rt:h:r")
        assert 0 < ttl <= 30_000
    finally:
        await backend.close()


async def test_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="cannot reach Redis"):
        await RedisBackend("redis://127.0.0.1:1/0").connect(lambda d: None, lambda e: None)


async def test_publishing_resumes_after_redis_restart(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="brillo.realtime")
    backend = RedisBackend(own_redis.url, reconnect_max=0.2)
    deliveries, _ = await connected(backend)
    try:
        await backend.subscribe("room")
        await backend.publish("room", Envelope("before"), history=True)
        await deliveries.wait(1)
        own_redis.stop()
        with pytest.raises(BackendError):
            await backend.publish("room", Envelope("lost"), history=True)
        own_redis.start()
        # keep publishing until the resubscribed reader delivers one again (bounded)
        with anyio.fail_after(15):
            while len(deliveries.items) < 2:
                try:
                    await backend.publish("room", Envelope("after"), history=True)
                except BackendError:
                    pass
                with anyio.move_on_after(0.1):
                    await deliveries.wait(len(deliveries.items) + 1, timeout=1)
        assert deliveries.items[-1].payload == "after"
        messages = [r.getMessage() for r in caplog.records]
        assert any("lost the Redis pub/sub connection" in m for m in messages)
        assert any("reconnected to Redis" in m for m in messages)
    finally:
        await backend.close()


async def test_hubs_in_two_processes_share_rooms(redis_url: str) -> None:
    async with (
        Hub(redis_url, envelope=True, presence_events=True) as one,
        Hub(redis_url, envelope=True, presence_events=True) as two,
    ):
        a, b = Peer(), Peer()
        await a.accept()
        await b.accept()
        async with (
            one.join(a.websocket, "room", user="ada"),
            two.join(b.websocket, "room", user="bob"),
        ):
            await a.wait(lambda p: any('"user":"bob"' in t for t in p.texts))
            position = await two.publish("room", {"text": "hi"}, exclude=b.websocket)
            await one.send_to_user("bob", {"direct": True})
            await a.wait(lambda p: any('"data":{"text":"hi"}' in t for t in p.texts))
            await b.wait(lambda p: '{"direct":true}' in p.texts)
            assert not any('"text":"hi"' in t for t in b.texts)  # excluded across processes
            assert sorted(await one.presence("room")) == ["ada", "bob"]
            assert position is not None
            # a third client recovers from Redis history through the other process
            c = Peer()
            await c.accept()
            since = f"{position.epoch}:{position.offset - 1}"
            async with one.join(c.websocket, "room", since=since) as membership:
                assert membership.recovery is not None
                assert not membership.recovery.resync_required
                await c.wait(lambda p: any('"data":{"text":"hi"}' in t for t in p.texts))


async def test_a_burst_of_joins_waits_for_a_connection_instead_of_failing(
    own_redis: RedisServer,
) -> None:
    # every client reconnecting at once after a deploy: 300 joins in flight on one process.
    # redis-py's default pool refused everything past 100 commands in flight ("Too many
    # connections": the joins failed and the sockets closed with 1011)
    peers = [Peer() for _ in range(300)]
    async with Hub(backend=RedisBackend(own_redis.url, max_connections=8)) as hub:
        for peer in peers:
            await peer.accept()
        joined: list[object] = []

        async def join(peer: Peer) -> None:
            await hub.enter(peer.websocket, "burst")
            joined.append(peer)

        async with anyio.create_task_group() as group:
            for peer in peers:
                group.start_soon(join, peer)
        assert len(joined) == len(peers)
        assert len(await hub.presence("burst")) == len(peers)
        # the process never held more than its pool (plus a second client: this test's own)
        with redis.Redis(port=own_redis.port) as probe:
            assert len(probe.client_list()) <= 8 + 1
        await hub.publish("burst", "hi")
        for peer in peers:
            await peer.wait(lambda p: "hi" in p.texts)
        for peer in peers:
            await hub.leave(peer.websocket, "burst")


async def test_the_pool_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        RedisBackend("redis://127.0.0.1:1/0", max_connections=1)
    with pytest.raises(ValueError, match="pool_timeout"):
        RedisBackend("redis://127.0.0.1:1/0", pool_timeout=0)


async def test_hub_publish_while_redis_is_down_is_a_clear_error(own_redis: RedisServer) -> None:
    async with Hub(own_redis.url) as hub:
        own_redis.stop()
        with pytest.raises(BackendError, match="Redis"):
            await hub.publish("room", "x")


async def test_hub_recovers_after_redis_restart(own_redis: RedisServer) -> None:
    backend = RedisBackend(own_redis.url, presence_ttl=0.6, reconnect_max=0.2)
    async with Hub(backend=backend) as hub:
        peer = Peer()
        await peer.accept()
        async with hub.join(peer.websocket, "room", user="ada"):
            await hub.publish("room", "before")
            await peer.wait_frames(1)
            own_redis.stop()
            own_redis.start()  # empty: no persistence
            with anyio.fail_after(15):
                while "after" not in peer.frames:
                    try:
                        await hub.publish("room", "after")
                    except BackendError:
                        pass
                    with anyio.move_on_after(0.1):
                        await peer.wait(lambda p: "after" in p.frames)
                # the heartbeat puts the member back into the (flushed) presence set
                while "ada" not in await hub.presence("room"):
                    await anyio.sleep(0.05)
