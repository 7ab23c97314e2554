"""brillo's WebSocket over the wire: a raw ASGI app under real uvicorn, a real `websockets` client.

No routing: the app below dispatches on ``scope["path"]`` and wraps the connection in
:class:`brillo.websockets.WebSocket` directly. Both current uvicorn WebSocket implementations
are covered (websockets-sansio and wsproto; the legacy one is deprecated). What the app observes
is handed back to the test through thread-safe futures (the server runs in its own thread and
event loop), and every wait is bounded.

The client library is asyncio-only, so these tests run on the asyncio backend only; the app side
always runs on uvicorn's asyncio loop anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from brillo.responses import PlainTextResponse
from brillo.testing import LiveServer
from brillo.types import Receive, Scope, Send
from brillo.websockets import WebSocket, WebSocketDisconnect

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.parametrize("ws_impl", ["websockets-sansio", "wsproto"]),
]

TIMEOUT = 10


class Observed:
    """Values the app reports from the server thread, keyed by name, awaited by the test."""

    def __init__(self) -> None:
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}

    def _future(self, key: str) -> concurrent.futures.Future[Any]:
        return self._futures.setdefault(key, concurrent.futures.Future())

    def report(self, key: str, value: Any) -> None:
        self._future(key).set_result(value)

    async def get(self, key: str) -> Any:
        return await asyncio.wait_for(asyncio.wrap_future(self._future(key)), TIMEOUT)


def make_app(observed: Observed) -> Callable[[Scope, Receive, Send], Any]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        ws = WebSocket(scope, receive, send)
        path = scope["path"]
        if path == "/echo":
            await ws.accept()
            await ws.send_text((await ws.receive_text()).upper())
            await ws.send_bytes((await ws.receive_bytes())[::-1])
            await ws.send_json({"got": await ws.receive_json()})
            await ws.send_json({"got": await ws.receive_json(mode="binary")}, mode="binary")
            async for message in ws.iter_text():
                await ws.send_text(message)
            observed.report("iter_done", ws.client_state.name)
        elif path == "/subprotocol":
            observed.report("offered", scope["subprotocols"])
            await ws.accept(subprotocol=scope["subprotocols"][-1], headers=[(b"x-brillo", b"yes")])
            await ws.close()
        elif path == "/close":
            await ws.accept()
            await ws.close(4001, "bye now")
        elif path == "/reject":
            await ws.close()
        elif path == "/deny":
            await ws.send_denial_response(PlainTextResponse("members only", status_code=401))
        elif path == "/client-close":
            await ws.accept()
            try:
                await ws.receive_text()
            except WebSocketDisconnect as exc:
                observed.report("disconnect", (exc.code, exc.reason))
        elif path in ("/send-after-client-close", "/send-after-server-close"):
            await ws.accept()
            received = await ws.receive()  # the disconnect, as a message (no exception)
            observed.report("disconnect_message", received["code"])
            try:
                await ws.send_text("anyone there?")
            except WebSocketDisconnect as exc:
                observed.report("send_error", (exc.code, ws.application_state.name))
            else:
                observed.report("send_error", None)
        else:
            await ws.close(1008)

    return app


@pytest.fixture
def observed() -> Observed:
    return Observed()


@pytest.fixture
def server(ws_impl: str, observed: Observed) -> Any:
    with LiveServer(
        make_app(observed), lifespan="off", ws=ws_impl, ws_max_size=1024, log_level="critical"
    ) as live:
        yield live


async def test_text_bytes_json_and_iteration(server: LiveServer, observed: Observed) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/echo") as client:
        await client.send("héllo")
        assert await client.recv() == "HÉLLO"
        await client.send(b"\x01\x02\x03")
        assert await client.recv() == b"\x03\x02\x01"
        await client.send('{"a": [1, "é"]}')
        reply = await client.recv()
        assert reply == '{"got":{"a":[1,"é"]}}'  # compact, non-ASCII kept
        await client.send(b'{"b":null}')
        assert await client.recv() == b'{"got":{"b":null}}'
        for word in ("one", "two"):
            await client.send(word)
            assert await client.recv() == word
    assert await observed.get("iter_done") == "DISCONNECTED"


async def test_subprotocol_and_accept_headers(server: LiveServer, observed: Observed) -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        connect(server.ws_url + "/subprotocol", subprotocols=["alpha", "beta"]) as client,  # type: ignore[list-item]
    ):
        assert client.subprotocol == "beta"
        assert client.response is not None
        assert client.response.headers["x-brillo"] == "yes"
        with pytest.raises(ConnectionClosed):
            await client.recv()
    assert await observed.get("offered") == ["alpha", "beta"]


async def test_close_code_and_reason_reach_the_client(server: LiveServer) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/close") as client:
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye now")


async def test_close_before_accept_is_http_403(server: LiveServer) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url + "/reject"):
                pass
    assert info.value.response.status_code == 403


async def test_denial_response_reaches_the_client(server: LiveServer) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url + "/deny"):
                pass
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"members only"


async def test_client_close_is_seen_by_the_app(server: LiveServer, observed: Observed) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/client-close") as client:
        await client.close(4005, "done here")
    assert await observed.get("disconnect") == (4005, "done here")


async def test_send_after_client_closed_is_disconnect_1006(
    server: LiveServer, observed: Observed
) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/send-after-client-close") as c:
        await c.close(1000)
    assert await observed.get("disconnect_message") == 1000
    assert await observed.get("send_error") == (1006, "DISCONNECTED")


async def test_send_after_server_closed_the_socket_is_disconnect_1006(
    server: LiveServer, observed: Observed
) -> None:
    """uvicorn closes the connection itself (message over ws_max_size, code 1009)."""
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/send-after-server-close") as c:
        await c.send("x" * 4096)
        with pytest.raises(ConnectionClosed) as info:
            await c.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009
    assert await observed.get("disconnect_message") == 1009
    assert await observed.get("send_error") == (1006, "DISCONNECTED")
