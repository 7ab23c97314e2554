"""No request or connection may leave a reference cycle behind.

Servers keep the scope on a per-request object whose bound ``send``/``receive`` they hand to the
app; anything brillo stores in the scope that holds those callables closes a cycle that only the
garbage collector can free, and its pauses show up as tail latency under load. The fake server
below has exactly that shape, and each test checks that a collection finds nothing to free.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from brillo.applications import Brillo
from brillo.exceptions import HTTPException
from brillo.requests import Request
from brillo.responses import JSONResponse, PlainTextResponse
from brillo.routing import Route, WebSocketRoute
from brillo.types import ASGIApp, Message
from brillo.websockets import WebSocket
from tests.support.asgi import http_scope, ws_scope


class Cycle:
    """One request as a server holds it: the scope, and bound methods over this object."""

    def __init__(self, scope: dict[str, Any], incoming: list[Message]) -> None:
        self.scope = scope
        self.incoming = incoming
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def run(self, app: ASGIApp) -> None:
        await app(self.scope, self.receive, self.send)


def http(path: str) -> Cycle:
    scope = http_scope(
        path, server=("127.0.0.1", 80), client=("127.0.0.1", 1), spec_version="2.4", state={}
    )
    return Cycle(scope, [{"type": "http.request", "body": b"", "more_body": False}])


def websocket(path: str) -> Cycle:
    scope = ws_scope(
        path, server=("127.0.0.1", 80), client=("127.0.0.1", 1), spec_version="2.4", state={}
    )
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    return Cycle(scope, incoming)


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello")


async def as_json(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


async def teapot(request: Request) -> PlainTextResponse:
    raise HTTPException(418)


async def crash(request: Request) -> PlainTextResponse:
    raise ValueError("boom")


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


async def handled(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse("handled", status_code=500)


APP = Brillo(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", as_json),
        Route("/teapot", teapot),
        Route("/crash", crash),
        WebSocketRoute("/ws", echo),
    ],
    exception_handlers={ValueError: handled},
    max_body_size=1024,
)


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/plaintext", "/json", "/teapot", "/crash", "/missing"])
async def test_http_requests_leave_no_cycles(no_gc: None, path: str) -> None:
    for _ in range(20):
        cycle = http(path)
        await cycle.run(APP)
        assert cycle.sent[0]["type"] == "http.response.start"
    del cycle
    assert gc.collect() == 0


@pytest.mark.anyio
async def test_websocket_connections_leave_no_cycles(no_gc: None) -> None:
    for _ in range(20):
        cycle = websocket("/ws")
        await cycle.run(APP)
        assert cycle.sent[1] == {"type": "websocket.send", "text": "hi"}
    del cycle
    assert gc.collect() == 0
