"""The PostgreSQL backend when things break: a lost LISTEN connection, a server restarted in the
middle of a stream, a worker killed with SIGKILL. Real clusters, real processes.

The invariant checked: a member sees every message of its room exactly once, in order (the
positions it receives are consecutive), and a client that comes back with its last position gets
exactly what it missed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable

import anyio
import asyncpg
import pytest

from brillo.realtime import Hub, Position
from brillo.realtime.backends.base import BackendError, Envelope, PresenceEntry
from brillo.realtime.backends.postgres import PostgresBackend
from tests.support.backend_contract import connected
from tests.support.pg_server import PostgresServer
from tests.support.realtime import Peer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

WAIT = 20.0


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


def offsets(peer: Peer, room: str = "room") -> list[int]:
    """The positions of the room messages a peer received (envelope hub), in order."""
    out = []
    for message in peer.json():
        if message.get("type") == "message" and message["room"] == room:
            out.append(Position.parse(message["position"]).offset)
    return out


async def test_the_listener_catches_up_after_losing_its_connection(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Messages published while a process's listener is cut off reach its members afterwards,
    in order, once each: read back from the table."""
    caplog.set_level(logging.INFO, logger="brillo.realtime")
    admin = await asyncpg.connect(postgres_url)
    await admin.execute("CREATE ROLE cut_off LOGIN SUPERUSER")
    cut_url = postgres_url.replace("brillo@", "cut_off@", 1)
    publisher = PostgresBackend(postgres_url)
    await connected(publisher)
    try:
        backend = PostgresBackend(cut_url, reconnect_max=0.2)
        async with Hub(backend=backend, envelope=True) as hub:
            peer = Peer()
            await peer.accept()
            async with hub.join(peer.websocket, "room"):
                for i in range(3):
                    await publisher.publish("room", Envelope(json.dumps(i)), history=True)
                await peer.wait_frames(3)
                await admin.execute("ALTER ROLE cut_off NOLOGIN")
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = 'cut_off'"
                )
                with anyio.fail_after(WAIT):  # its connections are gone for sure
                    while await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'cut_off'"
                    ):
                        await anyio.sleep(0.02)
                for i in range(3, 8):  # nobody in that process listens now
                    await publisher.publish("room", Envelope(json.dumps(i)), history=True)
                await eventually(
                    lambda: any(
                        "lost the PostgreSQL LISTEN" in r.getMessage() for r in caplog.records
                    )
                )
                await admin.execute("ALTER ROLE cut_off LOGIN")
                for i in range(8, 10):
                    await publisher.publish("room", Envelope(json.dumps(i)), history=True)
                await peer.wait(lambda p: len(p.frames) >= 10, timeout=WAIT)
                await anyio.sleep(0.2)  # time for a duplicate to show, if there were one
                assert offsets(peer) == list(range(1, 11))
                assert [m["data"] for m in peer.json()] == list(range(10))
    finally:
        await publisher.close()
        await admin.close()
    caught_up = [
        int(m.split()[4])
        for r in caplog.records
        if (m := r.getMessage()).startswith("realtime: caught up on ")
    ]
    assert caught_up  # read back from the table: 3..7, and 8..9 when they beat the reconnect
    assert 5 <= sum(caught_up) <= 7


async def test_a_server_restart_mid_stream_loses_nothing_and_duplicates_nothing(
    own_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="brillo.realtime")
    url = own_postgres.url()
    publisher = PostgresBackend(url, reconnect_max=0.2)
    await connected(publisher)
    acked: list[int] = []
    try:
        hub = Hub(backend=PostgresBackend(url, reconnect_max=0.3), envelope=True)
        async with hub:
            live, resumer = Peer(), Peer()
            await live.accept()
            await resumer.accept()
            async with hub.join(live.websocket, "room"):

                async def stream(count: int) -> None:
                    """Publish until ``count`` messages were acknowledged (retrying failures)."""
                    while len(acked) < count:
                        try:
                            position = await publisher.publish(
                                "room", Envelope(json.dumps(len(acked))), history=True
                            )
                        except BackendError:
                            await anyio.sleep(0.02)
                            continue
                        assert position is not None
                        acked.append(position.offset)
                        await anyio.sleep(0.005)

                membership = await hub.enter(resumer.websocket, "room")
                await stream(20)
                await live.wait(lambda p: len(offsets(p)) >= 20, timeout=WAIT)
                await resumer.wait(lambda p: len(offsets(p)) >= 20, timeout=WAIT)
                await hub.leave(membership.connection, "room")  # the client goes away ...
                last_seen = offsets(resumer)[-1]
                epoch = Position.parse(resumer.json()[-1]["position"]).epoch

                async with anyio.create_task_group() as group:
                    group.start_soon(stream, 60)
                    await eventually(lambda: len(acked) >= 30)
                    await anyio.to_thread.run_sync(own_postgres.stop)
                    await anyio.sleep(0.3)
                    await anyio.to_thread.run_sync(own_postgres.start)
                await live.wait(lambda p: len(offsets(p)) >= 60 and offsets(p)[-1] >= acked[-1])
                await anyio.sleep(0.3)  # time for a duplicate to show, if there were one

                got = offsets(live)
                assert got == list(range(1, got[-1] + 1))  # every position once, in order
                assert set(acked) <= set(got)

                # ... and comes back with its position: exactly what it missed, then live
                back = Peer()
                await back.accept()
                async with hub.join(back.websocket, "room", since=f"{epoch}:{last_seen}") as m:
                    assert m.recovery is not None
                    assert not m.recovery.resync_required
                    await publisher.publish("room", Envelope('"last"'), history=True)
                    await back.wait(lambda p: '"last"' in "".join(p.texts))
                    assert offsets(back) == list(range(last_seen + 1, got[-1] + 2))
    finally:
        await publisher.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost the PostgreSQL LISTEN connection" in m for m in messages)
    assert any("reconnected to PostgreSQL" in m for m in messages)


WORKER = """
import asyncio, sys
from brillo.realtime.backends.postgres import PostgresBackend
from brillo.realtime.backends.base import PresenceEntry

async def main():
    backend = PostgresBackend(sys.argv[1], presence_ttl=float(sys.argv[2]))
    await backend.connect(lambda d: None, lambda e: None)
    await backend.presence_join("room", PresenceEntry("w.1", "walt", {"pid": 1}))
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_killed_workers_presence_expires(postgres_url: str) -> None:
    ttl = 0.9
    alive = PostgresBackend(postgres_url, presence_ttl=ttl)
    _, events = await connected(alive)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, postgres_url, str(ttl)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        await alive.subscribe("room")
        await alive.presence_join("room", PresenceEntry("a.1", "ada", {}))
        assert worker.stdout is not None
        line = await anyio.to_thread.run_sync(worker.stdout.readline)
        assert line == b"ready\n"
        listed = sorted(e.connection for e in await alive.presence("room"))
        assert listed == ["a.1", "w.1"]
        await anyio.sleep(ttl * 1.5)  # the worker's heartbeat keeps it present past its ttl
        assert sorted(e.connection for e in await alive.presence("room")) == ["a.1", "w.1"]
        worker.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(worker.wait)
        await eventually(lambda: any(e.event == "leave" for e in events.items), timeout=WAIT)
        leave = next(e for e in events.items if e.event == "leave")
        assert (leave.entry.connection, leave.entry.user, leave.expired) == ("w.1", "walt", True)
        assert leave.entry.meta == {"pid": 1}
        assert [e.connection for e in await alive.presence("room")] == ["a.1"]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
        await alive.close()


async def test_presence_comes_back_after_the_table_lost_it(postgres_url: str) -> None:
    """A crash empties the unlogged presence table: the heartbeat adds this process's entries
    back and announces them."""
    backend = PostgresBackend(postgres_url, presence_ttl=0.6)
    _, events = await connected(backend)
    admin = await asyncpg.connect(postgres_url)
    try:
        await backend.subscribe("room")
        await backend.presence_join("room", PresenceEntry("a.1", "ada", {}))
        await events.wait(1)
        await admin.execute("TRUNCATE brillo_rt_presence")
        assert await backend.presence("room") == []
        await events.wait(2, timeout=WAIT)
        assert (events.items[1].event, events.items[1].entry.connection) == ("join", "a.1")
        assert [e.connection for e in await backend.presence("room")] == ["a.1"]
    finally:
        await admin.close()
        await backend.close()
