from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from _mw_helpers import (
    call_http,
    call_ws,
    hello_app,
    http_scope,
    ws_scope,
)
from brillo.background import BackgroundTask
from brillo.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response, StreamingResponse
from brillo.types import Message


class AddHeader(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["X-Middleware"] = "yes"
        return response


async def echo_body(scope: Any, receive: Any, send: Any) -> None:
    body = await Request(scope, receive).body()
    await PlainTextResponse(b"got " + body)(scope, receive, send)


@pytest.mark.anyio
async def test_dispatch_modifies_response() -> None:
    result = await call_http(AddHeader(hello_app), http_scope())
    assert (result.status, result.body) == (200, b"hello")
    assert result.header("x-middleware") == "yes"


@pytest.mark.anyio
async def test_dispatch_argument() -> None:
    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path == "/short":
            return PlainTextResponse("short-circuit", status_code=418)
        return await call_next(request)

    app = BaseHTTPMiddleware(hello_app, dispatch=dispatch)
    assert (await call_http(app, http_scope("/short"))).status == 418
    assert (await call_http(app, http_scope("/"))).body == b"hello"


@pytest.mark.anyio
async def test_streaming_passes_through_unbuffered() -> None:
    """Each chunk reaches the client before the app produces the next one."""
    events: list[str] = []
    sent_chunk = anyio.Event()
    progress: list[anyio.Event] = [anyio.Event() for _ in range(3)]

    async def gen() -> AsyncIterator[bytes]:
        for i in range(3):
            events.append(f"produce {i}")
            yield f"chunk{i}".encode()
            with anyio.fail_after(5):
                await progress[i].wait()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(gen())(scope, receive, send)

    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            events.append(f"client {message['body'].decode()}")
            index = int(message["body"].decode()[-1])
            progress[index].set()
            sent_chunk.set()

    done = anyio.Event()

    async def receive() -> Message:
        await done.wait()
        return {"type": "http.disconnect"}

    with anyio.fail_after(5):
        await AddHeader(app)(http_scope(), receive, send)
    done.set()
    assert events == [
        "produce 0",
        "client chunk0",
        "produce 1",
        "client chunk1",
        "produce 2",
        "client chunk2",
    ]
    start = messages[0]
    assert (b"x-middleware", b"yes") in start["headers"]


@pytest.mark.anyio
async def test_body_read_in_dispatch_reaches_endpoint() -> None:
    seen: list[bytes] = []

    class ReadBody(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            seen.append(await request.body())
            return await call_next(request)

    scope = http_scope("/", "POST")
    result = await call_http(ReadBody(echo_body), scope, [b"abc", b"def"])
    assert seen == [b"abcdef"]
    assert result.body == b"got abcdef"


@pytest.mark.anyio
async def test_partial_stream_in_dispatch_then_endpoint_reads_rest() -> None:
    class ReadFirstChunk(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            async with aclosing(request.stream()) as stream:
                async for chunk in stream:
                    assert chunk == b"abc"
                    break
            return await call_next(request)

    result = await call_http(ReadFirstChunk(echo_body), http_scope("/", "POST"), [b"abc", b"de"])
    assert result.body == b"got abcde"


@pytest.mark.anyio
async def test_body_unread_in_dispatch() -> None:
    result = await call_http(AddHeader(echo_body), http_scope("/", "POST"), [b"x", b"y"])
    assert result.body == b"got xy"


@pytest.mark.anyio
async def test_background_task_runs() -> None:
    ran: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = PlainTextResponse("ok", background=BackgroundTask(ran.append, "bg"))
        await response(scope, receive, send)

    result = await call_http(AddHeader(app), http_scope())
    assert result.body == b"ok"
    assert ran == ["bg"]


@pytest.mark.anyio
async def test_exception_before_response_raised_from_call_next() -> None:
    caught: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("boom")

    class Catch(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            try:
                return await call_next(request)
            except ValueError as exc:
                caught.append(exc)
                return PlainTextResponse("handled", status_code=500)

    result = await call_http(Catch(app), http_scope())
    assert (result.status, result.body) == (500, b"handled")
    assert [str(e) for e in caught] == ["boom"]
    with pytest.raises(ValueError, match="boom"):
        await call_http(AddHeader(app), http_scope())


@pytest.mark.anyio
async def test_exception_while_streaming_is_reraised() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b"part"
        raise RuntimeError("mid-stream")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(gen())(scope, receive, send)

    with pytest.raises(RuntimeError, match="mid-stream"):
        await call_http(AddHeader(app), http_scope())


@pytest.mark.anyio
async def test_dispatch_error_propagates() -> None:
    class Broken(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            await call_next(request)
            raise KeyError("dispatch")

    with pytest.raises(KeyError, match="dispatch"):
        await call_http(Broken(hello_app), http_scope())


@pytest.mark.anyio
async def test_no_response_returned() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    with pytest.raises(RuntimeError, match="No response returned"):
        await call_http(AddHeader(app), http_scope())


@pytest.mark.anyio
async def test_replaced_response_stops_app_cleanly() -> None:
    """Dispatch discards the streaming response; the app's pending send must not hang."""
    finished = anyio.Event()

    async def gen() -> AsyncIterator[bytes]:
        try:
            for _ in range(1000):
                yield b"x" * 10
        finally:
            finished.set()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(gen())(scope, receive, send)

    class Replace(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            await call_next(request)
            return PlainTextResponse("replaced")

    result = await call_http(Replace(app), http_scope())
    assert result.body == b"replaced"
    assert finished.is_set()


@pytest.mark.anyio
async def test_client_disconnect_propagates_to_app() -> None:
    """The client leaves mid-stream: the app's own StreamingResponse sees the disconnect."""
    stopped = anyio.Event()
    first_chunk = anyio.Event()

    async def gen() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick"
                await anyio.sleep(0)
        finally:
            stopped.set()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await StreamingResponse(gen())(scope, receive, send)

    async def receive() -> Message:
        await first_chunk.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            first_chunk.set()

    with anyio.fail_after(5):
        await AddHeader(app)(http_scope(), receive, send)
    assert stopped.is_set()


@pytest.mark.anyio
async def test_websocket_and_lifespan_untouched() -> None:
    calls: list[str] = []

    class Record(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            calls.append("dispatch")
            return await call_next(request)

    sent = await call_ws(Record(hello_app), ws_scope())
    assert sent[1] == {"type": "websocket.send", "text": "hello"}
    assert calls == []


def test_with_app_and_test_client() -> None:
    from brillo.applications import Brillo
    from brillo.exceptions import HTTPException
    from brillo.middleware import Middleware
    from brillo.routing import Route, WebSocketRoute
    from brillo.testclient import TestClient
    from brillo.websockets import WebSocket

    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def teapot(request: Request) -> Response:
        raise HTTPException(418, "teapot")

    async def echo(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("ws ok")
        await websocket.close()

    class ReadJSON(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            if request.method == "POST":
                assert await request.json() == {"a": 1}
            return await call_next(request)

    app = Brillo(
        routes=[
            Route("/", ok),
            Route("/teapot", teapot),
            Route("/echo", echo, methods=["POST"]),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[Middleware(AddHeader), Middleware(ReadJSON)],
    )
    with TestClient(app) as client:
        response = client.get("/")
        assert (response.text, response.headers["x-middleware"]) == ("ok", "yes")
        response = client.get("/teapot")
        assert (response.status_code, response.headers["x-middleware"]) == (418, "yes")
        assert client.post("/echo", json={"a": 1}).text == '{"a":1}'
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_text() == "ws ok"
