"""BaseHTTPMiddleware over the wire: real uvicorn on 127.0.0.1, a plain HTTP client.

Reading the request body in ``dispatch`` *after* ``call_next`` used to wait for a message the
server never sends (the body was already read by the app, and uvicorn only answers a pending
``receive`` with ``http.disconnect`` once the response is complete, which the middleware was
holding back): the client got no response at all.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import anyio
import pytest

from brillo.applications import Brillo
from brillo.middleware import Middleware
from brillo.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response, StreamingResponse
from brillo.routing import Route
from brillo.testing import LiveServer

TIMEOUT = 5.0


async def echo(request: Request) -> Response:
    return PlainTextResponse(b"app read " + await request.body())


async def ignore_body(request: Request) -> Response:
    return PlainTextResponse("app ignored the body")


class BodyAfterCallNext(BaseHTTPMiddleware):
    """Reads the body after the app has run; ``?first=1`` reads (and caches) it before too."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.query_params.get("first"):
            await request.body()
        response = await call_next(request)
        try:
            body = await request.body()
        except RuntimeError as exc:
            response.headers["X-Dispatch"] = f"error: {exc}"
        else:
            response.headers["X-Dispatch"] = f"read {body.decode()}"
        return response


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    app = Brillo(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/ignore", ignore_body, methods=["POST"]),
        ],
        middleware=[Middleware(BodyAfterCallNext)],
    )
    return live_server(app)


def post(server: LiveServer, path: str, body: bytes) -> tuple[int, str | None, bytes]:
    parts = urlsplit(server.url)
    # The timeout makes a hang fail the test instead of blocking it.
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        return response.status, response.getheader("x-dispatch"), response.read()
    finally:
        conn.close()


def test_body_read_after_call_next_does_not_hang(server: LiveServer) -> None:
    # The app read the body: dispatch is told so at once, instead of waiting forever.
    status, dispatch, body = post(server, "/echo", b"payload")
    assert (status, body) == (200, b"app read payload")
    assert dispatch == "error: Stream consumed"


def test_body_cached_before_call_next_is_read_again_after(server: LiveServer) -> None:
    status, dispatch, body = post(server, "/echo?first=1", b"payload")
    assert (status, body, dispatch) == (200, b"app read payload", "read payload")


def test_body_the_app_left_is_read_by_dispatch_after_call_next(server: LiveServer) -> None:
    status, dispatch, body = post(server, "/ignore", b"payload")
    assert (status, body, dispatch) == (200, b"app ignored the body", "read payload")


def test_connection_is_reused_after_each_case(server: LiveServer) -> None:
    """Keep-alive: the three cases back to back on one connection, none left half-read."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        for path, expected in [
            ("/echo", "error: Stream consumed"),
            ("/echo?first=1", "read abc"),
            ("/ignore", "read abc"),
        ]:
            conn.request("POST", path, body=b"abc")
            response = conn.getresponse()
            response.read()
            assert (response.status, response.getheader("x-dispatch")) == (200, expected)
    finally:
        conn.close()


@pytest.mark.parametrize("server_name", ["uvicorn", "hypercorn"])
def test_client_leaving_mid_stream_stops_the_app(
    live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture, server_name: str
) -> None:
    """The client hangs up while a streamed body passes through: the app's stream is stopped."""
    stopped = threading.Event()

    async def endless(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick\n" * 100
                    await anyio.sleep(0.01)
            finally:
                stopped.set()

        return StreamingResponse(chunks(), media_type="text/plain")

    class Passthrough(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            return await call_next(request)

    server = live_server(
        Brillo(routes=[Route("/endless", endless)], middleware=[Middleware(Passthrough)]),
        server=server_name,
    )
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), TIMEOUT) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert stopped.wait(TIMEOUT)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


@pytest.mark.parametrize("server_name", ["uvicorn", "hypercorn"])
def test_dispatch_own_stream_stops_when_the_client_leaves(
    live_server: Callable[..., LiveServer], server_name: str
) -> None:
    """dispatch drops the app's response for an endless stream of its own: the client leaving
    still stops that stream (the app, blocked sending its response, reads nothing)."""
    stopped = threading.Event()

    async def page(request: Request) -> Response:
        return PlainTextResponse("the app's response, never sent")

    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: tick\n\n" * 50
                await anyio.sleep(0.01)
        finally:
            stopped.set()

    class OwnStream(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            await call_next(request)
            return StreamingResponse(events(), media_type="text/event-stream")

    server = live_server(
        Brillo(routes=[Route("/events", page)], middleware=[Middleware(OwnStream)]),
        server=server_name,
    )
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), TIMEOUT) as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert stopped.wait(TIMEOUT)
