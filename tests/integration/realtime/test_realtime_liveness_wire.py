"""Liveness over the wire: a client process stopped with SIGSTOP is found within the deadline.

A stopped process's kernel still acknowledges TCP, so the connection looks healthy to the
server; the servers here send no protocol pings (uvicorn with ``ws_ping_interval=None``,
hypercorn by default). Only brillo's deadlines can notice: the hub's heartbeat (pings the
client no longer answers) or a route's idle timeout. Either way the connection is closed, it
leaves its room, and a watcher (in the same process, or in another one sharing Redis) sees its
presence go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from brillo.applications import Brillo
from brillo.middleware.websocket_protection import WebSocketLimits, protection_stats
from brillo.realtime import Hub
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket, WebSocketDisconnect

CLIENT = Path(__file__).resolve().parent / "_stoppable_client.py"
TIMEOUT = 15.0
DEADLINE = 1.0  # the heartbeat timeout, or the route's idle timeout


def make_app(hub: Hub) -> Brillo:
    async def member(websocket: WebSocket) -> None:
        await websocket.accept()
        user = websocket.query_params["user"]
        async with hub.join(websocket, "room", user=user) as membership:
            membership.send({"type": "joined"})
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await websocket.receive_text()
                    hub.touch(websocket)

    return Brillo(
        routes=[
            WebSocketRoute("/member", member),
            WebSocketRoute("/idle", member, limits=WebSocketLimits(idle_timeout=DEADLINE)),
        ],
        lifespan=hub.lifespan,
    )


@contextlib.asynccontextmanager
async def watcher(url: str) -> AsyncIterator[list[Any]]:
    """A member that answers pings and collects presence events."""
    events: list[Any] = []
    async with connect(url + "/member?user=watcher", ping_interval=None) as client:

        async def read(client: ClientConnection) -> None:
            async for raw in client:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await client.send('{"type":"pong"}')
                elif message.get("type") == "presence":
                    events.append((time.monotonic(), message["event"], message["user"]))

        task = asyncio.create_task(read(client))
        try:
            yield events
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def scenario(watch_url: str, member_url: str) -> float:
    """Start the client process, stop it; return seconds from SIGSTOP to its leave event."""
    async with watcher(watch_url) as events:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(CLIENT), member_url, stdout=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(TIMEOUT):
                assert (await process.stdout.readline()).strip() == b"ready"  # type: ignore[union-attr]
                while not any(e[1:] == ("join", "stopped") for e in events):
                    await asyncio.sleep(0.01)
            await asyncio.sleep(3 * 0.25)  # a few pings answered: it is alive and well
            assert not any(e[1:] == ("leave", "stopped") for e in events)
            stopped = time.monotonic()
            process.send_signal(signal.SIGSTOP)
            async with asyncio.timeout(TIMEOUT):
                while not any(e[1:] == ("leave", "stopped") for e in events):
                    await asyncio.sleep(0.01)
            left: float = next(e[0] for e in events if e[1:] == ("leave", "stopped"))
            return left - stopped
        finally:
            process.send_signal(signal.SIGCONT)
            process.kill()
            await process.wait()


def serve(live_server: Callable[..., LiveServer], server: str, hub: Hub) -> LiveServer:
    if server == "uvicorn":  # no protocol pings: they would find the stopped client too
        return live_server(make_app(hub), ws="websockets-sansio", ws_ping_interval=None)
    return live_server(make_app(hub), server="hypercorn")


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_the_heartbeat_finds_a_stopped_client(
    live_server: Callable[..., LiveServer], server: str
) -> None:
    hub = Hub(heartbeat_interval=0.25, heartbeat_timeout=DEADLINE, presence_events=True)
    running = serve(live_server, server, hub)
    url = running.ws_url
    elapsed = asyncio.run(scenario(url, url + "/member?user=stopped"))
    # within the deadline (plus a check step and scheduling on a busy machine), and not long
    # before it (the last pong may have come up to a ping interval before the stop)
    assert DEADLINE / 2 <= elapsed <= DEADLINE + 3.0, elapsed
    assert hub.stats()["heartbeat"]["timeouts"] == 1


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_an_idle_timeout_finds_a_stopped_client(
    live_server: Callable[..., LiveServer], server: str
) -> None:
    # the hub pings (the client's pongs keep the route's receive busy) but waits long itself
    hub = Hub(heartbeat_interval=0.25, heartbeat_timeout=60, presence_events=True)
    running = serve(live_server, server, hub)
    url = running.ws_url
    before = protection_stats.idle_timeout
    elapsed = asyncio.run(scenario(url, url + "/idle?user=stopped"))
    assert DEADLINE / 2 <= elapsed <= DEADLINE + 3.0, elapsed
    assert protection_stats.idle_timeout == before + 1
    assert hub.stats()["heartbeat"]["timeouts"] == 0


def test_presence_goes_in_the_other_process_too(
    live_server: Callable[..., LiveServer], redis_url: str
) -> None:
    """Two processes share Redis: the client stops on one, the watcher is on the other."""
    options: dict[str, Any] = {
        "heartbeat_interval": 0.25,
        "heartbeat_timeout": DEADLINE,
        "presence_events": True,
    }
    first = Hub(redis_url, **options)
    second = Hub(redis_url, **options)
    one = serve(live_server, "uvicorn", first)
    two = serve(live_server, "uvicorn", second)
    elapsed = asyncio.run(scenario(two.ws_url, one.ws_url + "/member?user=stopped"))
    assert DEADLINE / 2 <= elapsed <= DEADLINE + 3.0, elapsed
    assert first.stats()["heartbeat"]["timeouts"] == 1
