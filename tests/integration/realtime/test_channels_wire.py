"""Channels over the wire: the Python client (brillo.realtime.client) against real uvicorn,
in one process and in two that share a real redis-server, one of them killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from brillo.realtime.client import ChannelClient, ChannelClientError
from brillo.testing import LiveProcess

ROOT = Path(__file__).resolve().parents[3]
TARGET = "examples.realtime.channels_chat:create_app"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the client is built on the websockets library's asyncio client


def start(live_process: Callable[..., LiveProcess], url: str = "memory://") -> LiveProcess:
    env = dict(os.environ, BRILLO_REALTIME_URL=url, BRILLO_PRESENCE_TTL="2")
    return live_process(TARGET, factory=True, env=env, cwd=ROOT)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)  # polls state fed by the client's reader; bounded
    assert condition(), what


async def test_join_push_events_presence_and_errors(
    live_process: Callable[..., LiveProcess],
) -> None:
    server = start(live_process)
    states: list[str] = []
    async with (
        ChannelClient(server.ws_url + "/ws?user=ada", on_state=states.append) as ada,
        ChannelClient(server.ws_url + "/ws?user=bob") as bob,
    ):
        lobby = await ada.join("room:lobby")
        assert lobby.reply == {"room": "lobby", "user": "ada"}
        bob_lobby = await bob.join("room:lobby")
        reply = await lobby.push("say", {"text": "hello"})
        event = await bob_lobby.next_event("said", timeout=5)
        assert event.payload == {"user": "ada", "text": "hello"}
        assert event.position == reply["position"]
        await wait_for(lambda: set(lobby.presence) == {"ada", "bob"}, "both present")
        with pytest.raises(ChannelClientError) as info:
            await lobby.push("say", {"text": ""})
        assert info.value.code == "invalid_payload"
        with pytest.raises(ChannelClientError) as info:
            await ada.join("room:secret")
        assert (info.value.code, info.value.message) == (
            "forbidden",
            "room:secret is invitation-only",
        )
        assert await lobby.cast("say", {"text": "no reply wanted"})
        assert (await bob_lobby.next_event("said", timeout=5)).payload["text"] == "no reply wanted"
        await bob_lobby.leave()
        await wait_for(lambda: set(lobby.presence) == {"ada"}, "bob gone")
    assert states[:2] == ["connecting", "open"]
    assert states[-1] == "closed"


async def test_a_client_refused_with_1008_does_not_reconnect(
    live_process: Callable[..., LiveProcess],
) -> None:
    server = start(live_process)
    client = ChannelClient(server.ws_url + "/ws", min_delay=0.01)  # no user: identify refuses
    await client.connect()
    await wait_for(lambda: client.state == "closed", "given up")
    assert client.close_code == 1008
    await client.close()


async def test_kill_a_server_and_resume_without_loss_or_duplicate(
    live_process: Callable[..., LiveProcess], redis_url: str
) -> None:
    first, second = start(live_process, redis_url), start(live_process, redis_url)
    async with (
        ChannelClient(first.ws_url + "/ws?user=ada", min_delay=0.05, max_delay=0.5) as ada,
        ChannelClient(second.ws_url + "/ws?user=bob") as bob,
    ):
        ada_room = await ada.join("room:crash")
        bob_room = await bob.join("room:crash")
        # Presence spans the two processes.
        await wait_for(lambda: set(ada_room.presence) == {"ada", "bob"}, "ada sees bob")
        await wait_for(lambda: set(bob_room.presence) == {"ada", "bob"}, "bob sees ada")
        for n in range(3):
            await bob_room.push("say", {"text": f"before {n}"})
        seen = [(await ada_room.next_event("said", timeout=5)).payload["text"] for _ in range(3)]
        assert seen == ["before 0", "before 1", "before 2"]

        first.kill()  # SIGKILL: ada's server vanishes without a goodbye
        await wait_for(lambda: not ada.connected, "ada notices")
        for n in range(20):
            await bob_room.push("say", {"text": f"missed {n}"})
        # ada's presence entry expires (its process stopped heartbeating) and bob hears of it.
        await wait_for(lambda: set(bob_room.presence) == {"bob"}, "ada expires", timeout=15)

        first.start()  # same port: ada's client reconnects, rejoins from its last position
        got = [(await ada_room.next_event("said", timeout=15)).payload["text"] for _ in range(20)]
        assert got == [f"missed {n}" for n in range(20)]
        await bob_room.push("say", {"text": "live again"})
        assert (await ada_room.next_event("said", timeout=5)).payload["text"] == "live again"
        assert ada_room._events.empty()  # nothing twice
        await wait_for(lambda: set(bob_room.presence) == {"ada", "bob"}, "ada is back")
