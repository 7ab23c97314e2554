"""A client that stops reading, over real uvicorn: the others keep their pace, memory stays bounded.

The publisher is paced by the fast clients (a new burst only after they all received the previous
one), so the test never depends on timing: it runs until the stalled client's queue is full and
drops are counted, then checks that no fast client missed or reordered anything.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

QUEUE = 16
PAYLOAD = "x" * 65536
BURST = 10

hub = Hub(queue_size=QUEUE, write_timeout=60.0)


async def member(websocket: WebSocket) -> None:
    await websocket.accept()
    async with hub.join(websocket, "room"):
        async for _ in websocket.iter_text():
            pass


async def control(websocket: WebSocket) -> None:
    """Publishes a burst per request and answers with the hub's stats."""
    await websocket.accept()
    sequence = 0
    async for _ in websocket.iter_text():
        for _ in range(BURST):
            await hub.publish("room", f"{sequence}:{PAYLOAD}")
            sequence += 1
        await websocket.send_text(json.dumps(hub.stats()))


app = Brillo(
    routes=[WebSocketRoute("/member", member), WebSocketRoute("/control", control)],
    lifespan=hub.lifespan,
)


def stalled_client(server: LiveServer) -> socket.socket:
    """A WebSocket client that completes the handshake, then never reads another byte.

    Its receive buffer is made small so that the server's writes block soon.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /member HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)  # byte by byte: read nothing past the handshake response
        if not chunk:
            raise AssertionError(f"handshake failed: {response!r}")
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


async def test_stalled_client_does_not_delay_others(server: LiveServer) -> None:
    async with (
        asyncio.timeout(60),
        connect(server.ws_url + "/member") as a,
        connect(server.ws_url + "/member") as b,
        connect(server.ws_url + "/control") as ctl,
    ):
        stalled = stalled_client(server)
        fast = [a, b]
        received = [0, 0]
        stats: dict[str, object] = {}
        with stalled:
            while len(hub.members("room")) < 3:
                await asyncio.sleep(0.01)  # joins happen in the server thread; bounded poll
            for _ in range(400):
                await ctl.send("burst")
                for index, client in enumerate(fast):
                    for _ in range(BURST):
                        frame = await client.recv()
                        assert isinstance(frame, str)
                        sequence, _, payload = frame.partition(":")
                        assert int(sequence) == received[index]  # nothing missed or reordered
                        assert payload == PAYLOAD
                        received[index] += 1
                stats = json.loads(await ctl.recv())
                room = stats["rooms"]["room"]  # type: ignore[index]
                if room["dropped"] > 0:
                    break
            else:
                pytest.fail(f"the stalled client never filled its queue: {stats}")
            room = stats["rooms"]["room"]  # type: ignore[index]
            assert room["members"] == 3
            # bounded: the stalled client holds at most QUEUE messages; the fast ones at most the
            # burst just published (the stats were taken before their writers ran)
            assert room["queued"] <= QUEUE + 2 * BURST
            assert stats["queued"] == room["queued"]
            assert stats["max_queued"] == QUEUE  # the stalled client's queue: full, not more
            assert received[0] == received[1] > QUEUE
