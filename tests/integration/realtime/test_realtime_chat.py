"""The chat example over the wire: real uvicorn, real `websockets` clients.

One process with the embedded hub (LiveServer), and two uvicorn processes sharing a real Redis
(LiveProcess), one of which is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from brillo.testing import LiveProcess, LiveServer
from examples.realtime import chat
from tests.support.redis_server import RedisServer
from tests.support.wire import http_get_json, http_get_text, recv_json, recv_until

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


def is_join(user: str) -> object:
    return lambda m: m.get("type") == "presence" and m["event"] == "join" and m["user"] == user


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(chat.app) as live:
        yield live


async def test_chat_presence_and_direct_messages(server: LiveServer) -> None:
    base = server.ws_url + "/ws/lobby"
    async with (
        connect(base + "?user=ada&name=Ada") as ada,
        connect(base + "?user=bob") as bob,
    ):
        await recv_until(ada, is_join("bob"))
        await recv_until(bob, is_join("bob"))
        await ada.send('{"text": "hello"}')
        for client in (ada, bob):
            said = await recv_until(client, lambda m: m.get("type") == "chat")
            assert said == {"type": "chat", "user": "ada", "text": "hello"}
        await bob.send('{"to": "ada", "text": "psst"}')
        assert await recv_json(ada) == {"type": "direct", "from": "bob", "text": "psst"}
        presence = await http_get_json(server.url, "/rooms/lobby/presence")
        assert sorted(presence) == ["ada", "bob"]
        assert presence["ada"]["meta"] == {"name": "Ada"}
        content_type, metrics = await http_get_text(server.url, "/metrics")
        assert content_type.startswith("text/plain; version=0.0.4")
        assert 'brillo_realtime_room_members{room="lobby"} 2' in metrics
        await bob.close()
        left = await recv_until(ada, lambda m: m.get("type") == "presence")
        assert (left["event"], left["user"], left["expired"]) == ("leave", "bob", False)
    assert chat.hub.members("lobby") == []


async def test_bad_client_input_gets_a_close_code(server: LiveServer) -> None:
    async with connect(server.ws_url + "/ws/r?user=x") as client:
        await client.send("not json")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await client.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1007
    async with connect(server.ws_url + "/ws/r?user=y") as client:
        await client.send('{"no": "text"}')
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await client.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
    async with connect(server.ws_url + "/ws/r?user=z") as client:
        await client.send(b"\x00binary")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await client.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
    assert chat.hub.members("r") == []


def start_chat(redis_url: str, ttl: float) -> LiveProcess:
    env = dict(os.environ, BRILLO_REALTIME_URL=redis_url, BRILLO_PRESENCE_TTL=str(ttl))
    process = LiveProcess("examples.realtime.chat:app", env=env, cwd=ROOT)
    process.start()
    return process


async def test_two_processes_one_room_and_kill_9(redis_server: RedisServer, redis_url: str) -> None:
    ttl = 1.0
    one = start_chat(redis_url, ttl)
    try:
        two = start_chat(redis_url, ttl)
        try:
            async with (
                connect(one.ws_url + "/ws/team?user=ada") as ada,
                connect(two.ws_url + "/ws/team?user=bob") as bob,
            ):
                await recv_until(ada, is_join("bob"))
                await ada.send('{"text": "from process one"}')
                said = await recv_until(bob, lambda m: m.get("type") == "chat")
                assert said["text"] == "from process one"
                await bob.send('{"text": "from process two"}')
                said = await recv_until(ada, lambda m: m.get("user") == "bob")
                assert said == {"type": "chat", "user": "bob", "text": "from process two"}
                await bob.send('{"to": "ada", "text": "across processes"}')
                direct = await recv_until(ada, lambda m: m.get("type") == "direct")
                assert direct["text"] == "across processes"
                for process in (one, two):
                    listed = await http_get_json(process.url, "/rooms/team/presence")
                    assert sorted(listed) == ["ada", "bob"]
                one.kill()  # SIGKILL: ada's process never leaves
                left = await recv_until(
                    bob,
                    lambda m: m.get("type") == "presence" and m["event"] == "leave",
                    timeout=ttl * 10,
                )
                assert (left["user"], left["expired"]) == ("ada", True)
                listed = await http_get_json(two.url, "/rooms/team/presence")
                assert sorted(listed) == ["bob"]
        finally:
            two.stop()
    finally:
        one.stop()


async def test_server_shutdown_closes_members_and_empties_the_hub() -> None:
    # uvicorn closes open WebSockets itself (1012) before the lifespan shutdown stops the hub;
    # the hub must then end with no connection left and without hanging.
    async with LiveServer(chat.app) as server:
        client = await connect(server.ws_url + "/ws/bye?user=a")
        await recv_until(client, is_join("a"))
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            await client.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code in (1001, 1012)
    await client.close()
    assert chat.hub.stats()["connections"] == 0
    assert not chat.hub.running
