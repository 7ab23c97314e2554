from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from brillo.background import BackgroundTask
from brillo.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from brillo.requests import ClientDisconnect, Request
from brillo.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from brillo.types import Message
from tests.support.asgi import (
    call_http,
    call_ws,
    hello_app,
    http_scope,
    ws_scope,
)


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
    """Chunks dispatch streamed are not kept (stream() never buffers): the app gets the rest."""

    class ReadFirstChunk(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            async with aclosing(request.stream()) as stream:
                async for chunk in stream:
                    assert chunk == b"abc"
                    break
            return await call_next(request)

    result = await call_http(ReadFirstChunk(echo_body), http_scope("/", "POST"), [b"abc", b"de"])
    assert result.body == b"got de"


@pytest.mark.anyio
async def test_stream_consumed_in_dispatch_leaves_the_app_an_empty_body() -> None:
    class StreamAll(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            assert [chunk async for chunk in request.stream()] == [b"ab", b"c", b""]
            return await call_next(request)

    result = await call_http(StreamAll(echo_body), http_scope("/", "POST"), [b"ab", b"c"])
    assert result.body == b"got "


def scripted(messages: list[Message]) -> Any:
    """A ``receive`` giving ``messages`` in order, then failing: any further call would hang."""
    queue = list(messages)

    async def receive() -> Message:
        if not queue:
            raise AssertionError("receive called again: a real server would never answer")
        return queue.pop(0)

    return receive


async def run(app: Any, scope: dict[str, Any], receive: Any) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_body_read_in_dispatch_after_the_app_read_it_raises_instead_of_hanging() -> None:
    """The deadlock: the app had the whole body, so dispatch's read would wait forever."""
    errors: list[str] = []

    class ReadAfter(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            response = await call_next(request)
            with pytest.raises(RuntimeError, match="Stream consumed") as info:
                await request.body()
            errors.append(str(info.value))
            return response

    receive = scripted([{"type": "http.request", "body": b"data", "more_body": False}])
    sent = await run(ReadAfter(echo_body), http_scope("/", "POST"), receive)
    assert errors == ["Stream consumed"]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"got data"


@pytest.mark.anyio
async def test_body_cached_in_dispatch_is_readable_again_after_call_next() -> None:
    seen: list[bytes] = []

    class ReadTwice(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            seen.append(await request.body())
            response = await call_next(request)
            seen.append(await request.body())
            seen.extend([chunk async for chunk in request.stream()])
            return response

    receive = scripted(
        [
            {"type": "http.request", "body": b"da", "more_body": True},
            {"type": "http.request", "body": b"ta", "more_body": False},
        ]
    )
    sent = await run(ReadTwice(echo_body), http_scope("/", "POST"), receive)
    assert seen == [b"data", b"data", b"data", b""]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"got data"


@pytest.mark.anyio
async def test_dispatch_and_app_take_turns_on_one_stream() -> None:
    got: list[tuple[str, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with aclosing(Request(scope, receive).stream()) as stream:
            async for chunk in stream:
                got.append(("app", chunk))
                break
        await Response()(scope, receive, send)

    class Interleave(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            response = None
            async for chunk in request.stream():
                got.append(("dispatch", chunk))
                if response is None:
                    response = await call_next(request)
            assert response is not None
            return response

    receive = scripted(
        [
            {"type": "http.request", "body": b"1", "more_body": True},
            {"type": "http.request", "body": b"2", "more_body": True},
            {"type": "http.request", "body": b"3", "more_body": False},
        ]
    )
    sent = await run(Interleave(app), http_scope("/", "POST"), receive)
    assert got == [("dispatch", b"1"), ("app", b"2"), ("dispatch", b"3"), ("dispatch", b"")]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


@pytest.mark.anyio
async def test_disconnect_seen_by_the_app_is_known_to_dispatch() -> None:
    flags: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.disconnect"
        assert (await receive())["type"] == "http.disconnect"  # asked twice, told twice
        await Response()(scope, receive, send)

    class Check(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            response = await call_next(request)
            flags.append(await request.is_disconnected())
            return response

    await run(Check(app), http_scope("/", "POST"), scripted([{"type": "http.disconnect"}]))
    assert flags == [True]


@pytest.mark.anyio
async def test_disconnect_seen_by_dispatch_reaches_the_app_after_the_body() -> None:
    received: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        received.append(await receive())
        await Response()(scope, receive, send)

    class Check(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            assert await request.body() == b"hi"
            assert await request.is_disconnected()
            return await call_next(request)

    receive = scripted([{"type": "http.request", "body": b"hi"}, {"type": "http.disconnect"}])
    await run(Check(app), http_scope("/", "POST"), receive)
    assert received == [
        {"type": "http.request", "body": b"hi", "more_body": False},
        {"type": "http.disconnect"},
    ]


@pytest.mark.anyio
async def test_stacked_middlewares_with_a_client_gone_before_the_body() -> None:
    ran: list[int] = []

    def layer(index: int) -> type[BaseHTTPMiddleware]:
        class Layer(BaseHTTPMiddleware):
            async def dispatch(
                self, request: Request, call_next: RequestResponseEndpoint
            ) -> Response:
                response = await call_next(request)
                response.background = BackgroundTask(ran.append, index)
                return response

        return Layer

    async def app(scope: Any, receive: Any, send: Any) -> None:
        with pytest.raises(ClientDisconnect):
            await Request(scope, receive).body()
        await Response(b"")(scope, receive, send)

    stacked: Any = app
    for index in range(5):
        stacked = layer(index)(stacked)
    sent = await run(stacked, http_scope("/", "POST"), scripted([{"type": "http.disconnect"}]))
    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert [(m["type"], m.get("body")) for m in sent] == [
        ("http.response.start", None),
        ("http.response.body", b""),
    ]


@pytest.mark.anyio
async def test_early_hints_from_dispatch_and_app_reach_the_server_in_order() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await Request(scope, receive, send).send_early_hints("</app.js>; rel=preload")
        await PlainTextResponse("ok")(scope, receive, send)

    class Hint(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            await request.send_early_hints("</mw.css>; rel=preload")
            return await call_next(request)

    scope = http_scope()
    scope["extensions"] = {"http.response.early_hint": {}}
    sent = await run(Hint(app), scope, scripted([]))
    assert [m.get("links") for m in sent[:2]] == [
        [b"</mw.css>; rel=preload"],
        [b"</app.js>; rel=preload"],
    ]
    assert sent[2]["type"] == "http.response.start"
    assert b"".join(m.get("body", b"") for m in sent[3:]) == b"ok"


@pytest.fixture
def text_file(tmp_path: Any) -> Any:
    path = tmp_path / "file.txt"
    path.write_bytes(b"file content " * 10_000)
    return path


@pytest.mark.anyio
async def test_pathsend_passes_through(text_file: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await FileResponse(text_file)(scope, receive, send)

    scope = http_scope()
    scope["extensions"] = {"http.response.pathsend": {}}
    sent = await run(AddHeader(app), scope, scripted([]))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[1]["path"] == str(text_file)
    assert (b"x-middleware", b"yes") in sent[0]["headers"]


@pytest.mark.anyio
async def test_pathsend_body_read_in_dispatch_is_the_file(text_file: Any) -> None:
    """Not an empty body under the file's Content-Length."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await FileResponse(text_file)(scope, receive, send)

    class Buffer(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            response = await call_next(request)
            assert isinstance(response, StreamingResponse)
            body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[misc]
            return Response(body, headers=dict(response.headers))

    scope = http_scope()
    scope["extensions"] = {"http.response.pathsend": {}}
    sent = await run(Buffer(app), scope, scripted([]))
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert body == text_file.read_bytes()
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(body)).encode()


@pytest.mark.anyio
async def test_debug_message_passes_through() -> None:
    info = {"template": "page.html", "context": {"a": 1}}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.debug", "info": info})
        await PlainTextResponse("page")(scope, receive, send)

    sent = await run(AddHeader(app), http_scope(), scripted([]))
    assert sent[0] == {"type": "http.response.debug", "info": info}
    assert sent[1]["type"] == "http.response.start"


@pytest.mark.anyio
async def test_trailers_pass_through() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    sent = await run(AddHeader(app), http_scope(), scripted([]))
    assert sent[0]["trailers"] is True
    assert [m["type"] for m in sent[1:]] == [
        "http.response.body",
        "http.response.body",
        "http.response.trailers",
    ]
    assert sent[-1]["headers"] == [(b"x-sum", b"1")]


@pytest.mark.anyio
async def test_app_error_keeps_its_own_chain() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            raise KeyError("inner")
        except KeyError:
            raise ValueError("outer")  # noqa: B904 - the implicit chain is the point

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("alone")

    with pytest.raises(ValueError, match="outer") as info:
        await run(AddHeader(app), http_scope(), scripted([]))
    assert isinstance(info.value.__cause__, KeyError)  # shown in the traceback
    with pytest.raises(ValueError, match="alone") as info:
        await run(AddHeader(plain), http_scope(), scripted([]))
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__  # brillo's internal plumbing is not shown


@pytest.mark.anyio
async def test_background_task_runs_after_the_last_message_is_sent() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        background = BackgroundTask(events.append, "background")
        await PlainTextResponse("ok", background=background)(scope, receive, send)

    async def send(message: Message) -> None:
        await anyio.sleep(0.01)  # a slow client: the app must not run ahead of it
        events.append(message["type"])

    with anyio.fail_after(5):
        await AddHeader(app)(http_scope(), scripted([]), send)
    assert events == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "background",
    ]


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


@pytest.mark.anyio
async def test_send_failing_on_asgi_2_4_server_stops_the_app() -> None:
    """ASGI >= 2.4: ``send`` raises OSError once the client is gone; the app is stopped."""
    stopped = anyio.Event()

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
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) == 2:
            raise OSError("client gone")
        sent.append(message)

    scope = http_scope()
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
    with anyio.fail_after(5), pytest.raises(ClientDisconnect):
        await AddHeader(app)(scope, receive, send)
    assert stopped.is_set()


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_own_streaming_response_hears_the_disconnect_while_the_app_is_stuck(
    method: str,
) -> None:
    """dispatch ignores the app's response (the app stays blocked sending it) and streams its
    own: that stream must still stop when the client leaves, not run until it ends."""
    stopped = anyio.Event()
    chunks_sent = anyio.Event()
    app_read: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if method == "POST":
            app_read.append(await Request(scope, receive).body())
        await PlainTextResponse("never sent")(scope, receive, send)

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"event\n"
                await anyio.sleep(0)
        finally:
            stopped.set()

    class Own(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            await call_next(request)
            return StreamingResponse(endless())

    incoming: list[Message] = [{"type": "http.request", "body": b"up", "more_body": False}]

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await chunks_sent.wait()
        return {"type": "http.disconnect"}

    count = 0

    async def send(message: Message) -> None:
        nonlocal count
        count += 1
        if count == 5:
            chunks_sent.set()

    with anyio.fail_after(5):
        await Own(app)(http_scope("/", method), receive, send)
    assert stopped.is_set()
    assert app_read == ([b"up"] if method == "POST" else [])
