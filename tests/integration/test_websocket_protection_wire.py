"""WebSocket protection over the wire: uvicorn's two current WebSocket implementations (the
deprecated legacy one is covered by tests/integration/test_serve.py) and hypercorn,
a real `websockets` client. What the client sees: 403 and 429 denials, 1009, 1008 and idle
closes with their reasons; and the realtime hub still sends eagerly through the protection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from brillo.applications import Brillo
from brillo.middleware import Middleware
from brillo.middleware.websocket_protection import (
    RateLimit,
    WebSocketLimits,
    WebSocketProtectionMiddleware,
)
from brillo.realtime._sockets import eager_send_safe
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket

pytestmark = pytest.mark.parametrize(
    ("server", "ws"),
    [
        ("uvicorn", "websockets-sansio"),
        ("uvicorn", "wsproto"),
        ("hypercorn", None),
    ],
)

TIMEOUT = 10.0


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


async def eager(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(str(eager_send_safe(websocket)))
    await websocket.receive_text()


def make_app() -> Brillo:
    return Brillo(
        routes=[
            WebSocketRoute("/echo", echo),
            WebSocketRoute("/small", echo, limits=WebSocketLimits(max_message_size=16)),
            WebSocketRoute("/rate", echo, limits=WebSocketLimits(rate=RateLimit(0.1, burst=3))),
            WebSocketRoute("/capped", echo, limits=WebSocketLimits(max_connections_per_client=2)),
            WebSocketRoute("/idle", echo, limits=WebSocketLimits(idle_timeout=0.5)),
            WebSocketRoute("/eager", eager, limits=WebSocketLimits(max_message_size=64)),
            WebSocketRoute("/partners", echo, allow_origins=["http://partner.example", "self"]),
        ],
        middleware=[Middleware(WebSocketProtectionMiddleware, allow_origins=["self"])],
    )


@pytest.fixture
def base(live_server: Callable[..., LiveServer], server: str, ws: str | None) -> tuple[str, str]:
    options: dict[str, Any] = {"server": server}
    if ws is not None:
        options["ws"] = ws
    running = live_server(make_app(), **options)
    return running.ws_url, running.url


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 2))


async def closed_with(client: ClientConnection) -> tuple[int | None, str | None]:
    try:
        async with asyncio.timeout(TIMEOUT):
            async for _ in client:
                pass
    except ConnectionClosed:
        pass
    return client.close_code, client.close_reason


def test_origins(base: tuple[str, str]) -> None:
    ws_url, http_url = base

    async def scenario() -> None:
        for origin in (http_url, None):  # the page's own origin; a non-browser client
            headers = {} if origin is None else {"Origin": origin}
            async with connect(ws_url + "/echo", additional_headers=headers) as client:
                await client.send("hi")
                assert await client.recv() == "hi"
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url + "/echo", additional_headers={"Origin": "http://evil.example"})
        assert refused.value.response.status_code == 403
        # the route adds its own check: both must pass
        async with connect(ws_url + "/partners", additional_headers={"Origin": http_url}):
            pass
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                ws_url + "/partners", additional_headers={"Origin": "http://partner.example"}
            )
        assert refused.value.response.status_code == 403

    run(scenario())


def test_message_size_and_rate(base: tuple[str, str]) -> None:
    ws_url, _ = base

    async def scenario() -> None:
        async with connect(ws_url + "/small") as client:
            await client.send("x" * 16)
            assert await client.recv() == "x" * 16
            await client.send("é" * 9)  # 9 characters, 18 bytes
            assert await closed_with(client) == (1009, "message too big (18 bytes, limit 16)")
        async with connect(ws_url + "/rate") as client:
            # the fourth message is over the burst; nothing is sent after it, so the server never
            # closes a socket with unread data (hypercorn then resets the connection, and a reset
            # can discard echoes the client had not read yet)
            for n in range(4):
                await client.send(str(n))
            echoed = []
            try:
                async for text in client:
                    echoed.append(text)
            except ConnectionClosed:
                pass
            assert echoed == ["0", "1", "2"]
            assert (client.close_code, client.close_reason) == (1008, "rate limit exceeded")

    run(scenario())


def test_connections_per_address(base: tuple[str, str]) -> None:
    ws_url, _ = base

    async def scenario() -> None:
        first = await connect(ws_url + "/capped")
        second = await connect(ws_url + "/capped")
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url + "/capped")
        assert refused.value.response.status_code == 429
        await first.close()
        await first.wait_closed()
        for _ in range(100):  # the server notices the close (bounded)
            try:
                third = await connect(ws_url + "/capped")
                break
            except InvalidStatus:
                await asyncio.sleep(0.05)
        await third.send("back")
        assert await third.recv() == "back"
        await third.close()
        await second.close()

    run(scenario())


def test_idle_clients_are_closed(base: tuple[str, str]) -> None:
    ws_url, _ = base

    async def scenario() -> None:
        async with connect(ws_url + "/idle", ping_interval=None) as client:
            for n in range(4):  # talking keeps it open
                await client.send(str(n))
                assert await client.recv() == str(n)
                await asyncio.sleep(0.2)
            assert await closed_with(client) == (1001, "idle timeout")

    run(scenario())


def test_the_hub_still_sends_eagerly_through_the_protection(
    base: tuple[str, str], server: str
) -> None:
    ws_url, _ = base

    async def scenario() -> str:
        async with connect(ws_url + "/eager") as client:
            answer = await client.recv()
            await client.send("bye")
            return str(answer)

    # uvicorn's sends are known to be safe for eager sends; hypercorn's are not
    assert run(scenario()) == str(server == "uvicorn")
