"""Tests for brillo.endpoints: HTTPEndpoint method dispatch and WebSocketEndpoint callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from brillo.applications import Brillo
from brillo.endpoints import HTTPEndpoint, WebSocketEndpoint
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response
from brillo.routing import Route, Router, WebSocketRoute
from brillo.testclient import TestClient
from brillo.types import Message
from brillo.websockets import UnsupportedDataError, WebSocket, WebSocketDisconnect


class Items(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("get " + request.path_params.get("id", "all"))

    def post(self, request: Request) -> Response:  # sync: runs in the thread pool
        return PlainTextResponse("post", status_code=201)


# -- HTTPEndpoint ------------------------------------------------------------------------------


def test_http_endpoint_dispatch(client_factory: Callable[..., TestClient]) -> None:
    app = Router([Route("/items", Items), Route("/items/{id}", Items)])
    with client_factory(app) as client:
        assert client.get("/items").text == "get all"
        assert client.get("/items/7").text == "get 7"
        response = client.post("/items")
        assert (response.status_code, response.text) == (201, "post")
        head = client.head("/items")
        assert (head.status_code, head.content) == (200, b"")


def test_http_endpoint_405_outside_and_inside_app(
    client_factory: Callable[..., TestClient],
) -> None:
    with client_factory(Router([Route("/items", Items)])) as client:
        response = client.delete("/items")
        assert (response.status_code, response.text) == (405, "Method Not Allowed")
        assert response.headers["allow"] == "GET, HEAD, POST"
        assert client.request("BREW", "/items").status_code == 405

    async def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("nope", status_code=405, headers=getattr(exc, "headers", None))

    app = Brillo(routes=[Route("/items", Items)], exception_handlers={405: handler})
    with client_factory(app) as client:
        response = client.put("/items")
        assert (response.status_code, response.text) == (405, "nope")
        assert response.headers["allow"] == "GET, HEAD, POST"


def test_http_endpoint_explicit_head_and_query(client_factory: Callable[..., TestClient]) -> None:
    class Search(HTTPEndpoint):
        async def head(self, request: Request) -> Response:
            return PlainTextResponse("", headers={"x-head": "own"})

        async def query(self, request: Request) -> Response:
            return PlainTextResponse("q=" + (await request.body()).decode())

    with client_factory(Router([Route("/s", Search)])) as client:
        assert client.head("/s").headers["x-head"] == "own"
        assert client.request("QUERY", "/s", content=b"abc").text == "q=abc"
        assert client.get("/s").headers["allow"] == "HEAD, QUERY"


@pytest.mark.anyio
async def test_http_endpoint_request_can_send_early_hints() -> None:
    class Page(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            await request.send_early_hints("</app.css>; rel=preload; as=style")
            return PlainTextResponse("page")

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [],
        "extensions": {"http.response.early_hint": {}},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("not needed")  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    await Page(scope, receive, send)
    assert sent[0] == {
        "type": "http.response.early_hint",
        "links": [b"</app.css>; rel=preload; as=style"],
    }
    assert [m["type"] for m in sent[1:]] == ["http.response.start", "http.response.body"]
    assert sent[2]["body"] == b"page"


# -- WebSocketEndpoint -------------------------------------------------------------------------


def run_ws(
    client_factory: Callable[..., TestClient], endpoint: type[WebSocketEndpoint]
) -> TestClient:
    return client_factory(Brillo(routes=[WebSocketRoute("/ws", endpoint)]))


@pytest.mark.parametrize(
    ("encoding", "send", "expected"),
    [
        ("text", ("send_text", "hi"), "'hi'"),
        ("bytes", ("send_bytes", b"\x01"), "b'\\x01'"),
        ("json", ("send_json", {"a": 1}), "{'a': 1}"),
        ("json", ("send_bytes", b'{"b": 2}'), "{'b': 2}"),
    ],
)
def test_websocket_endpoint_encodings(
    client_factory: Callable[..., TestClient],
    encoding: str,
    send: tuple[str, Any],
    expected: str,
) -> None:
    class Echo(WebSocketEndpoint):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(repr(data))

    Echo.encoding = encoding  # type: ignore[assignment]
    with run_ws(client_factory, Echo) as client, client.websocket_connect("/ws") as session:
        method, payload = send
        getattr(session, method)(payload)
        assert session.receive_text() == expected


@pytest.mark.parametrize(
    ("method", "payload", "expected"),
    [
        ("send_text", "x", "'x'"),
        ("send_text", "", "''"),  # empty text is still text, not a fall-back to bytes
        ("send_bytes", b"\x00", "b'\\x00'"),
        ("send_bytes", b"", "b''"),
    ],
)
def test_websocket_endpoint_default_encoding_gives_the_data(
    client_factory: Callable[..., TestClient], method: str, payload: Any, expected: str
) -> None:
    class Plain(WebSocketEndpoint):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(repr(data))

    with run_ws(client_factory, Plain) as client, client.websocket_connect("/ws") as session:
        getattr(session, method)(payload)
        assert session.receive_text() == expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("encoding", "message", "error"),
    [
        ("text", {"bytes": b"x", "text": None}, "Expected text websocket messages, but got bytes"),
        ("bytes", {"text": "x", "bytes": None}, "Expected bytes websocket messages, but got text"),
        ("json", {"text": "{nope"}, "Malformed JSON data received."),
    ],
)
async def test_websocket_endpoint_decode_error_is_runtime_error_and_closes_1003(
    encoding: str, message: dict[str, Any], error: str
) -> None:
    """Code written for Starlette catches RuntimeError; brillo code catches UnsupportedDataError."""
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("decode must not receive")  # pragma: no cover

    async def send(msg: Message) -> None:
        sent.append(msg)

    class Strict(WebSocketEndpoint):
        pass

    Strict.encoding = encoding  # type: ignore[assignment]
    scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
    endpoint = Strict(scope, receive, send)
    websocket = WebSocket(scope, receive, send)
    with pytest.raises(RuntimeError, match=error) as info:
        await endpoint.decode(websocket, {"type": "websocket.receive", **message})
    assert isinstance(info.value, UnsupportedDataError)
    assert info.value.code == 1003
    assert str(info.value) == error
    assert sent == [{"type": "websocket.close", "code": 1003, "reason": ""}]


@pytest.mark.anyio
async def test_websocket_endpoint_is_an_asgi_app() -> None:
    """``await Endpoint(scope, receive, send)`` runs the whole conversation."""
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
        {"type": "websocket.disconnect", "code": 1001},
    ]
    sent: list[Message] = []
    codes: list[int] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    class Pong(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            await websocket.send_text(data.replace("i", "o"))

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
    await Pong(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send"]
    assert sent[1]["text"] == "pong"
    assert codes == [1001]


@pytest.mark.parametrize(
    ("encoding", "method", "payload"),
    [
        ("text", "send_bytes", b"binary"),
        ("bytes", "send_text", "text"),
        ("json", "send_text", "{broken"),
        ("json", "send_bytes", b"\xff\xfe"),
    ],
)
def test_websocket_endpoint_bad_payload_closes_1003(
    client_factory: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
    encoding: str,
    method: str,
    payload: Any,
) -> None:
    codes: list[int] = []

    class Strict(WebSocketEndpoint):
        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    Strict.encoding = encoding  # type: ignore[assignment]
    with (
        caplog.at_level(logging.INFO),
        run_ws(client_factory, Strict) as client,
        client.websocket_connect("/ws") as session,
    ):
        getattr(session, method)(payload)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert info.value.code == 1003
    assert codes == [1003]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == []


def test_websocket_endpoint_lifecycle(client_factory: Callable[..., TestClient]) -> None:
    events: list[Any] = []

    class Chat(WebSocketEndpoint):
        encoding = "text"

        async def on_connect(self, websocket: WebSocket) -> None:
            events.append("connect")
            await websocket.accept(subprotocol="chat")

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            events.append(data)
            await websocket.send_text(data.upper())

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            events.append(close_code)

    client = run_ws(client_factory, Chat)
    with client, client.websocket_connect("/ws", subprotocols=["chat"]) as session:
        assert session.accepted_subprotocol == "chat"
        session.send_text("hello")
        assert session.receive_text() == "HELLO"
        session.close(4321)
    assert events == ["connect", "hello", 4321]


def test_websocket_endpoint_crash_closes_1011(client_factory: Callable[..., TestClient]) -> None:
    codes: list[int] = []

    class Buggy(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            raise ValueError("bug in handler")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    client = run_ws(client_factory, Buggy)
    with (
        client,
        pytest.raises(ValueError, match="bug in handler"),
        client.websocket_connect("/ws") as session,
    ):
        session.send_text("x")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert info.value.code == 1011
    assert codes == [1011]


def test_websocket_endpoint_reject_in_on_connect(
    client_factory: Callable[..., TestClient],
) -> None:
    class Private(WebSocketEndpoint):
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.close(code=1008)

    with run_ws(client_factory, Private) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
            pass  # pragma: no cover
        assert info.value.code == 1008
