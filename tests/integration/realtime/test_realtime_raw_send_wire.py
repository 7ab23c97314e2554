"""Fan-out calls uvicorn's own send under brillo's WebSocket; what the server refuses is redone
through ``WebSocket.send``, so a member the app closed itself, or whose client left, is dropped
quietly with the WebSocket in the state its own send would have left it in."""

from __future__ import annotations

import logging
import threading

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket, WebSocketState
from tests.support.wire import recv_json

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


def make_app(hub: Hub, states: list[WebSocketState], left: threading.Event) -> Brillo:
    async def closer(websocket: WebSocket) -> None:
        """Joins, closes the socket itself, and stays in the room until the hub dropped it."""
        await websocket.accept()
        async with hub.join(websocket, "room"):
            await websocket.send_json({"joined": True})
            await websocket.close(4000)
            with anyio.fail_after(10):  # until the hub sent to it, and dropped it
                while not left.is_set():
                    await anyio.sleep(0.01)
            states.append(websocket.application_state)

    async def publisher(websocket: WebSocket) -> None:
        await websocket.accept()
        async with hub.join(websocket, "room"):
            async for text in websocket.iter_text():
                await hub.publish("room", text)

    return Brillo(
        routes=[WebSocketRoute("/closer", closer), WebSocketRoute("/publisher", publisher)],
        lifespan=hub.lifespan,
    )


@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto"])
async def test_a_member_the_app_closed_is_dropped_quietly(
    ws: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="brillo.realtime")
    hub = Hub()
    states: list[WebSocketState] = []
    left = threading.Event()  # set by the test, waited for in the server's thread
    async with (
        LiveServer(make_app(hub, states, left), ws=ws) as server,
        connect(server.ws_url + "/closer") as closed,
        connect(server.ws_url + "/publisher") as publisher,
    ):
        assert await recv_json(closed) == {"joined": True}
        with pytest.raises(ConnectionClosed):
            with anyio.fail_after(10):
                await closed.recv()  # the app's close (4000)
        await publisher.send("after the close")
        assert await publisher.recv() == "after the close"
        with anyio.fail_after(10):
            while not any("is gone" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.01)
        left.set()
        with anyio.fail_after(10):
            while not states:
                await anyio.sleep(0.01)
    assert states == [WebSocketState.DISCONNECTED]
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []
    gone = [r.getMessage() for r in caplog.records if "is gone" in r.getMessage()]
    assert len(gone) == 1
    assert "WebSocketDisconnected" in gone[0]
