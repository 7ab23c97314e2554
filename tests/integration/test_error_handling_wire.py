"""Error handling as a real client sees it: a brillo app under real uvicorn, real clients.

WebSocket: an endpoint crash is a 1011 close frame, wrong-kind data 1003, undecodable JSON 1007,
a WebSocketException its own code and reason, an HTTPException before accept the HTTP status
(denial response), a crash before accept HTTP 500. HTTP: 404/405/500 and the debug page.

The `websockets` client is asyncio-only, so these tests run on the asyncio backend; both of
uvicorn's WebSocket implementations are covered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response as WSResponse

from brillo.applications import Brillo
from brillo.endpoints import WebSocketEndpoint
from brillo.exceptions import HTTPException, WebSocketException
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response
from brillo.routing import Route, WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.parametrize("ws_impl", ["websockets-sansio", "wsproto"]),
]

TIMEOUT = 10


async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("endpoint bug")


async def crash_before_accept(websocket: WebSocket) -> None:
    raise RuntimeError("bug before accept")


async def text_only(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_text("echo " + await websocket.receive_text())


async def json_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_json({"got": await websocket.receive_json()})


async def ws_exception(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise WebSocketException(4003, "token expired")


async def ws_exception_before_accept(websocket: WebSocket) -> None:
    raise WebSocketException(1008, "no token")


async def http_exception(websocket: WebSocket) -> None:
    raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})


class StrictJSON(WebSocketEndpoint):
    encoding = "json"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_json(data)


async def boom(request: Request) -> Response:
    raise ValueError("http bug <secret>")


async def home(request: Request) -> Response:
    return PlainTextResponse("home")


def make_app(debug: bool = False) -> Brillo:
    return Brillo(
        debug=debug,
        routes=[
            Route("/", home),
            Route("/boom", boom),
            WebSocketRoute("/crash", crash),
            WebSocketRoute("/crash-early", crash_before_accept),
            WebSocketRoute("/text", text_only),
            WebSocketRoute("/json", json_echo),
            WebSocketRoute("/ws-exception", ws_exception),
            WebSocketRoute("/ws-exception-early", ws_exception_before_accept),
            WebSocketRoute("/http-exception", http_exception),
            WebSocketRoute("/strict", StrictJSON),
        ],
    )


@pytest.fixture
def server(ws_impl: str) -> Iterator[LiveServer]:
    with LiveServer(make_app(), ws=ws_impl, log_level="critical") as live:
        yield live


async def closed_with(url: str, *messages: str | bytes) -> tuple[int, str]:
    """Connect, send ``messages``, and return the close frame's code and reason."""
    async with asyncio.timeout(TIMEOUT), connect(url) as client:
        for message in messages:
            await client.send(message)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await client.recv()
    assert info.value.rcvd is not None, "the server sent no close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def handshake_status(url: str) -> WSResponse:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass  # pragma: no cover
    return info.value.response


async def test_endpoint_crash_is_close_1011(server: LiveServer) -> None:
    code, _ = await closed_with(server.ws_url + "/crash", "go")
    assert code == 1011


async def test_crash_before_accept_is_http_500(server: LiveServer) -> None:
    response = await handshake_status(server.ws_url + "/crash-early")
    assert response.status_code == 500


async def test_wrong_kind_is_close_1003(server: LiveServer) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/text") as client:
        await client.send("hi")
        assert await client.recv() == "echo hi"
        await client.send(b"\x00binary")
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1003
    assert "binary" in info.value.rcvd.reason


async def test_bad_json_is_close_1007(server: LiveServer) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/json") as client:
        await client.send('{"ok": true}')
        assert await client.recv() == '{"got":{"ok":true}}'
        await client.send("{nope")
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1007


async def test_endpoint_class_bad_json_is_close_1003(server: LiveServer) -> None:
    code, _ = await closed_with(server.ws_url + "/strict", "[1, 2")
    assert code == 1003


async def test_websocket_exception_code_and_reason(server: LiveServer) -> None:
    assert await closed_with(server.ws_url + "/ws-exception", "x") == (4003, "token expired")


async def test_websocket_exception_before_accept_is_403(server: LiveServer) -> None:
    response = await handshake_status(server.ws_url + "/ws-exception-early")
    assert response.status_code == 403


async def test_http_exception_before_accept_is_http_status(server: LiveServer) -> None:
    response = await handshake_status(server.ws_url + "/http-exception")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.body == b"log in first"


async def test_other_connections_survive_a_crash(server: LiveServer) -> None:
    async with asyncio.timeout(TIMEOUT), connect(server.ws_url + "/text") as healthy:
        assert (await closed_with(server.ws_url + "/crash", "go"))[0] == 1011
        assert (await closed_with(server.ws_url + "/json", "{bad"))[0] == 1007
        await healthy.send("still here")
        assert await healthy.recv() == "echo still here"


async def test_http_errors_over_the_wire(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        assert (await client.get("/")).text == "home"
        missing = await client.get("/missing")
        assert (missing.status_code, missing.text) == (404, "Not Found")
        wrong = await client.post("/")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, HEAD"
        error = await client.get("/boom", headers={"accept": "text/html", "connection": "close"})
        assert (error.status_code, error.text) == (500, "Internal Server Error")
        assert "secret" not in error.text


async def test_debug_page_over_the_wire(ws_impl: str) -> None:
    async with (
        LiveServer(make_app(debug=True), ws=ws_impl, log_level="critical") as live,
        httpx.AsyncClient(base_url=live.url, timeout=TIMEOUT) as client,
    ):
        # uvicorn drops the connection after logging an app exception: don't reuse it.
        page = await client.get("/boom", headers={"accept": "text/html", "connection": "close"})
        text = await client.get("/boom", headers={"accept": "*/*", "connection": "close"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "http bug &lt;secret&gt;" in page.text
    assert text.headers["content-type"].startswith("text/plain")
    assert "ValueError: http bug <secret>" in text.text


async def test_failing_lifespan_startup_stops_the_server(ws_impl: str) -> None:
    import contextlib
    from collections.abc import AsyncIterator

    from brillo.testing import ServerStartupError

    @contextlib.asynccontextmanager
    async def lifespan(app: Brillo) -> AsyncIterator[None]:
        raise ConnectionRefusedError("database is down")
        yield  # pragma: no cover

    server = LiveServer(Brillo(lifespan=lifespan), ws=ws_impl, lifespan="on", log_level="critical")
    with pytest.raises(ServerStartupError, match="database is down"):
        async with server:
            pass  # pragma: no cover
