"""Close reasons over a real server: uvicorn (both WebSocket implementations) and a real client.

A reason longer than a close frame holds (123 bytes of UTF-8) reaches the client cut on a
character boundary, with the code the app chose, whichever way the app closed: ``close()``,
a ``WebSocketException`` or a client error. (Before, ``close()`` raised ValueError and the
client saw 1011; the error handlers cut at 120 bytes and added "...".)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from brillo.applications import Brillo
from brillo.exceptions import WebSocketException
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import UnsupportedDataError, WebSocket

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.parametrize("ws_impl", ["websockets-sansio", "wsproto"]),
]

TIMEOUT = 10
LONG = "ré€" * 40  # 240 bytes of UTF-8
CUT = "ré€" * 20 + "ré"  # 123 bytes; the next "€" would make 126


async def close_with_reason(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    await websocket.close(4000, LONG)


async def raise_ws_exception(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise WebSocketException(4001, LONG)


async def raise_client_error(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise UnsupportedDataError(LONG)


@pytest.fixture
def server(ws_impl: str) -> Iterator[LiveServer]:
    app = Brillo(
        routes=[
            WebSocketRoute("/close", close_with_reason),
            WebSocketRoute("/ws-exception", raise_ws_exception),
            WebSocketRoute("/client-error", raise_client_error),
        ]
    )
    with LiveServer(app, ws=ws_impl, log_level="critical") as live:
        yield live


async def closed_with(url: str) -> tuple[int, str]:
    async with asyncio.timeout(TIMEOUT), connect(url) as client:
        await client.send("go")
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await client.recv()
    assert info.value.rcvd is not None, "the server sent no close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_close_with_a_long_reason(server: LiveServer) -> None:
    assert len(CUT.encode()) == 123
    assert LONG.startswith(CUT)
    assert await closed_with(server.ws_url + "/close") == (4000, CUT)


async def test_websocket_exception_with_a_long_reason(server: LiveServer) -> None:
    assert await closed_with(server.ws_url + "/ws-exception") == (4001, CUT)


async def test_client_error_with_a_long_message(server: LiveServer) -> None:
    code, reason = await closed_with(server.ws_url + "/client-error")
    assert code == 1003
    # str() of the KeyError subclass is quoted: "'ré€ré€...": the same rule applies to it.
    text = str(UnsupportedDataError(LONG))
    assert text.startswith(reason)
    assert 120 <= len(reason.encode()) <= 123
    assert len(text[: len(reason) + 1].encode()) > 123
