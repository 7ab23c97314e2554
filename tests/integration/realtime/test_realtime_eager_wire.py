"""Eager sends over real uvicorn: used where the server's send is known to be safe, and a
middleware whose send holds a cancel scope across a wait never hurts the publishing handler."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect

from brillo.applications import Brillo
from brillo.middleware import Middleware
from brillo.realtime import Hub
from brillo.realtime._sockets import eager_send_safe
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.types import ASGIApp, Message, Receive, Scope, Send
from brillo.websockets import WebSocket
from tests.support.wire import recv_json

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


class TimedSends:
    """A middleware that gives every WebSocket send a deadline (a cancel scope across a wait)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def timed_send(message: Message) -> None:
            with anyio.fail_after(10):
                await anyio.sleep(0)
                await send(message)

        await self.app(scope, receive, timed_send)


def make_app(middleware: list[Middleware]) -> Brillo:
    hub = Hub()

    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        async with hub.join(websocket, "room"):
            await websocket.send_json({"eager": eager_send_safe(websocket)})
            async for text in websocket.iter_text():
                with anyio.fail_after(10):  # the handler's own scope, around the publish
                    await hub.publish("room", text)
                await websocket.send_json({"published": text})  # the handler lives on

    return Brillo(
        routes=[WebSocketRoute("/room", room)], middleware=middleware, lifespan=hub.lifespan
    )


async def exchange(url: str) -> tuple[list[Any], list[Any]]:
    """One client publishes "hello": what both see (bounded)."""
    with anyio.fail_after(10):
        return await _exchange(url)


async def _exchange(url: str) -> tuple[list[Any], list[Any]]:
    async with connect(url) as publisher, connect(url) as member:
        flags = [await recv_json(publisher), await recv_json(member)]
        await publisher.send("hello")
        seen_by_member = await member.recv()
        acks: list[str | bytes] = []
        while len(acks) < 2:  # its own copy of the message, and the handler's answer
            acks.append(await publisher.recv())
    return flags, [seen_by_member, *sorted(acks)]


@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto"])
async def test_brillo_websocket_over_uvicorn_is_sent_to_eagerly(ws: str) -> None:
    """uvicorn's current implementations (its deprecated "websockets" one is allowed too)."""
    async with LiveServer(make_app([]), ws=ws) as server:
        flags, frames = await exchange(server.ws_url + "/room")
    assert flags == [{"eager": True}, {"eager": True}]
    assert frames == ["hello", "hello", json.dumps({"published": "hello"}, separators=(",", ":"))]


async def test_a_middleware_holding_a_cancel_scope_in_send_keeps_its_sends_in_the_writer() -> None:
    async with LiveServer(make_app([Middleware(TimedSends)]), ws="websockets-sansio") as server:
        flags, frames = await exchange(server.ws_url + "/room")
    assert flags == [{"eager": False}, {"eager": False}]
    assert frames == ["hello", "hello", json.dumps({"published": "hello"}, separators=(",", ":"))]
