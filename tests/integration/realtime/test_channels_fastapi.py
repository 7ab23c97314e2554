"""brillo.realtime channels inside a real FastAPI app (real Starlette) over real uvicorn.

FastAPI is a test-only dependency; its WebSocket fits the hub's SocketLike contract and what
Channels.serve needs. The app runs in a child process (tests/integration/realtime/
_fastapi_channels_app.py): this pytest process never imports starlette.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from brillo.realtime.client import ChannelClient
from brillo.testing import LiveProcess

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory://", "redis"])
def server(request: pytest.FixtureRequest, live_process: Callable[..., LiveProcess]) -> LiveProcess:
    url = request.param
    if url == "redis":
        url = request.getfixturevalue("redis_url")
    env = dict(os.environ, PYTHONPATH=str(ROOT), BRILLO_REALTIME_URL=url)
    target = "tests.integration.realtime._fastapi_channels_app:app"
    return live_process(target, cwd=ROOT, env=env, lifespan="on")


async def test_channels_presence_and_history_in_a_fastapi_app(server: LiveProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        modules = (await http.get("/modules")).json()
        assert f"{os.sep}brillo{os.sep}" not in modules["starlette"]  # the real Starlette
        assert "brillo.realtime.channels" in modules["brillo"]
        assert "brillo.applications" not in modules["brillo"]  # brillo's core is not needed
        script = await http.get("/brillo-channels.js")
        assert script.status_code == 200
        assert "export class Socket" in script.text
        doc = (await http.get("/asyncapi.json")).json()
        assert doc["servers"]["default"]["pathname"] == "/ws"

        async with (
            ChannelClient(server.ws_url + "/ws?user=ada") as ada,
            ChannelClient(server.ws_url + "/ws?user=bob") as bob,
        ):
            ada_room = await ada.join("room:1")
            bob_room = await bob.join("room:1")
            async with asyncio.timeout(10):
                while set(ada_room.presence) != {"ada", "bob"}:
                    await asyncio.sleep(0.02)  # fed by ada's reader; bounded
            assert ada_room.presence["bob"][0]["meta"] == {"name": "Bob"}
            assert set((await http.get("/presence/1")).json()) == {"ada", "bob"}
            first = await ada_room.push("say", {"text": "one"})
            assert (await bob_room.next_event("said")).payload == {"user": "ada", "text": "one"}
            await bob_room.leave()
            await ada_room.push("say", {"text": "two"})
            await http.post("/announce/1", json={"text": "three"})
            # Heartbeats (every 200 ms) are answered by the client: ada stays connected
            # through many of them (a silent client is closed after 400 ms).
            async with asyncio.timeout(10):
                while (await http.get("/heartbeat")).json()["pings"] < 8:
                    await asyncio.sleep(0.05)  # polls the server's counter; bounded
            assert (await http.get("/heartbeat")).json()["timeouts"] == 0
            assert ada.connected
            assert (await ada_room.push("say", {"text": "four"}))["position"]

        # A new connection resumes from a position and gets exactly what came after it.
        async with ChannelClient(server.ws_url + "/ws?user=carol") as carol:
            room = await carol.join("room:1", since=first["position"])
            texts = [(await room.next_event("said")).payload["text"] for _ in range(3)]
            assert texts == ["two", "three", "four"]
            assert room._events.empty()
        assert (await http.get("/presence/1")).json() == {}
