"""Unit tests for brillo.websockets, driving WebSocket through hand-written ASGI callables."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from brillo.responses import PlainTextResponse
from brillo.types import Message, Receive, Scope, Send
from brillo.websockets import (
    InvalidJSONError,
    UnsupportedDataError,
    WebSocket,
    WebSocketClientError,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

pytestmark = pytest.mark.anyio

CONNECT: Message = {"type": "websocket.connect"}


def text(data: str) -> Message:
    return {"type": "websocket.receive", "text": data}


def binary(data: bytes) -> Message:
    return {"type": "websocket.receive", "bytes": data}


def disconnect(code: int = 1000, reason: str = "") -> Message:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


class Peer:
    """The server side of one connection: scripted incoming messages, recorded outgoing ones."""

    def __init__(self, *incoming: Message, send_error: BaseException | None = None) -> None:
        self.incoming: deque[Message] = deque(incoming)
        self.sent: list[Message] = []
        self.send_error = send_error

    async def receive(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if not self.incoming:
            raise AssertionError("the app received more messages than the test scripted")
        return self.incoming.popleft()

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        if self.send_error is not None:
            raise self.send_error
        self.sent.append(message)


def make_scope(**extra: Any) -> Scope:
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
        "extensions": {},
    }
    scope.update(extra)
    return scope


def make_ws(*incoming: Message, **scope: Any) -> tuple[WebSocket, Peer]:
    peer = Peer(*incoming)
    return WebSocket(make_scope(**scope), peer.receive, peer.send), peer


async def accepted(*incoming: Message) -> tuple[WebSocket, Peer]:
    ws, peer = make_ws(CONNECT, *incoming)
    await ws.accept()
    peer.sent.clear()
    return ws, peer


# -- construction, states and exceptions ---------------------------------------------------------


def test_requires_websocket_scope() -> None:
    peer = Peer()
    with pytest.raises(AssertionError):
        WebSocket(make_scope(type="http"), peer.receive, peer.send)


def test_initial_state() -> None:
    ws, _ = make_ws()
    assert ws.client_state is WebSocketState.CONNECTING
    assert ws.application_state is WebSocketState.CONNECTING
    assert [s.name for s in WebSocketState] == [
        "CONNECTING",
        "CONNECTED",
        "DISCONNECTED",
        "RESPONSE",
    ]


def test_exception_types() -> None:
    exc = WebSocketDisconnect()
    assert (exc.code, exc.reason) == (1000, "")
    exc = WebSocketDisconnect(4001, "bye")
    assert (exc.code, exc.reason) == (4001, "bye")
    assert repr(exc) == "WebSocketDisconnect(code=4001, reason='bye')"
    assert str(exc) == "4001: bye"
    assert issubclass(WebSocketDisconnected, RuntimeError)
    assert issubclass(UnsupportedDataError, WebSocketClientError)
    assert issubclass(UnsupportedDataError, KeyError)
    assert issubclass(InvalidJSONError, WebSocketClientError)
    assert issubclass(InvalidJSONError, json.JSONDecodeError)
    assert issubclass(InvalidJSONError, ValueError)
    assert UnsupportedDataError.code == 1003
    assert InvalidJSONError.code == 1007
    err = UnsupportedDataError("wrong kind")
    assert str(err) == "wrong kind"
    assert err.code == 1003


async def test_websocket_close_app() -> None:
    peer = Peer()
    await WebSocketClose()(make_scope(), peer.receive, peer.send)
    await WebSocketClose(4000, "custom")(make_scope(), peer.receive, peer.send)
    assert peer.sent == [
        {"type": "websocket.close", "code": 1000, "reason": ""},
        {"type": "websocket.close", "code": 4000, "reason": "custom"},
    ]


# -- handshake -------------------------------------------------------------------------------------


async def test_accept_receives_connect_then_accepts() -> None:
    ws, peer = make_ws(CONNECT)
    await ws.accept()
    assert ws.client_state is WebSocketState.CONNECTED
    assert ws.application_state is WebSocketState.CONNECTED
    assert peer.sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]
    assert not peer.incoming


async def test_accept_with_subprotocol_and_headers() -> None:
    ws, peer = make_ws(CONNECT, subprotocols=["chat", "superchat"])
    await ws.accept(subprotocol="chat", headers=iter([(b"x-one", b"1")]))
    assert peer.sent == [
        {"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-one", b"1")]}
    ]


async def test_accept_after_explicit_connect_does_not_receive_again() -> None:
    ws, peer = make_ws(CONNECT)
    assert await ws.receive() == CONNECT
    assert ws.client_state is WebSocketState.CONNECTED
    await ws.accept()  # the Peer would fail if accept tried to receive another message
    assert ws.application_state is WebSocketState.CONNECTED


async def test_first_message_must_be_connect() -> None:
    ws, _ = make_ws(text("early"))
    with pytest.raises(RuntimeError) as info:
        await ws.accept()
    assert str(info.value) == (
        "Expected ASGI message \"websocket.connect\", but got 'websocket.receive'"
    )


async def test_accept_twice() -> None:
    ws, _ = await accepted()
    with pytest.raises(RuntimeError, match='"websocket.send" or "websocket.close".*accept'):
        await ws.accept()


async def test_close_before_accept_rejects() -> None:
    ws, peer = make_ws()
    await ws.close()
    assert peer.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_close_after_accept() -> None:
    ws, peer = await accepted()
    await ws.close(4001, "done")
    assert peer.sent == [{"type": "websocket.close", "code": 4001, "reason": "done"}]
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_raw_send_before_accept_names_expected_messages() -> None:
    ws, _ = make_ws()
    with pytest.raises(RuntimeError) as info:
        await ws.send({"type": "websocket.send", "text": "x"})
    assert str(info.value) == (
        'Expected ASGI message "websocket.accept", "websocket.close" or '
        "\"websocket.http.response.start\", but got 'websocket.send'"
    )
    assert ws.application_state is WebSocketState.CONNECTING


async def test_raw_accept_without_connect_then_receive_text() -> None:
    ws, peer = make_ws(CONNECT, text("hi"))
    await ws.send({"type": "websocket.accept"})
    assert ws.client_state is WebSocketState.CONNECTING
    assert await ws.receive_text() == "hi"
    assert ws.client_state is WebSocketState.CONNECTED


# -- denial responses ------------------------------------------------------------------------------


async def test_denial_response_needs_server_support() -> None:
    ws, peer = make_ws()
    with pytest.raises(
        RuntimeError, match="doesn't support the Websocket Denial Response extension"
    ):
        await ws.send_denial_response(PlainTextResponse("no", status_code=401))
    assert peer.sent == []
    assert ws.application_state is WebSocketState.CONNECTING


async def test_denial_response_sends_http_response() -> None:
    ws, peer = make_ws(extensions={"websocket.http.response": {}})
    await ws.send_denial_response(PlainTextResponse("go away", status_code=401))
    assert ws.application_state is WebSocketState.DISCONNECTED
    start, *bodies = peer.sent
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 401
    assert all(m["type"] == "websocket.http.response.body" for m in bodies)
    assert b"".join(m.get("body", b"") for m in bodies) == b"go away"


async def test_denial_response_after_accept_is_refused() -> None:
    ws, peer = await accepted()
    ws.scope["extensions"] = {"websocket.http.response": {}}
    with pytest.raises(RuntimeError, match="before the WebSocket is accepted"):
        await ws.send_denial_response(PlainTextResponse("late"))
    assert peer.sent == []


async def test_response_state_machine() -> None:
    ws, peer = make_ws()
    await ws.send({"type": "websocket.http.response.start", "status": 403, "headers": []})
    assert ws.application_state is WebSocketState.RESPONSE
    with pytest.raises(RuntimeError) as info:
        await ws.send({"type": "websocket.send", "text": "x"})
    assert str(info.value) == (
        "Expected ASGI message \"websocket.http.response.body\", but got 'websocket.send'"
    )
    with pytest.raises(RuntimeError, match="denial response"):
        await ws.send_text("x")
    with pytest.raises(WebSocketDisconnected, match="denial response"):
        await ws.receive_text()
    await ws.send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
    assert ws.application_state is WebSocketState.RESPONSE
    await ws.send({"type": "websocket.http.response.body", "body": b"b"})
    assert ws.application_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected):
        await ws.send({"type": "websocket.http.response.body", "body": b"c"})
    assert len(peer.sent) == 3


# -- receiving -------------------------------------------------------------------------------------


async def test_receive_text_and_bytes() -> None:
    ws, _ = await accepted(text("héllo"), binary(b"\x00\xff"))
    assert await ws.receive_text() == "héllo"
    assert await ws.receive_bytes() == b"\x00\xff"


async def test_receive_text_on_binary_message() -> None:
    ws, _ = await accepted(binary(b"abc"))
    with pytest.raises(UnsupportedDataError) as info:
        await ws.receive_text()
    assert info.value.code == 1003
    assert "Expected a text WebSocket message, but the client sent a binary message" in str(
        info.value
    )
    assert "receive_bytes()" in str(info.value)
    assert ws.client_state is WebSocketState.CONNECTED


async def test_receive_text_on_binary_message_with_both_keys() -> None:
    # Some servers (hypercorn) send both keys, the unused one set to None.
    ws, _ = await accepted({"type": "websocket.receive", "bytes": b"abc", "text": None})
    with pytest.raises(KeyError):  # existing ``except KeyError`` handlers keep working
        await ws.receive_text()


async def test_receive_bytes_on_text_message() -> None:
    ws, _ = await accepted({"type": "websocket.receive", "bytes": None, "text": "abc"})
    with pytest.raises(UnsupportedDataError) as info:
        await ws.receive_bytes()
    assert info.value.code == 1003
    assert "Expected a binary WebSocket message, but the client sent a text message" in str(
        info.value
    )


async def test_receive_json_text_mode() -> None:
    ws, _ = await accepted(text('{"a":[1,2.5,null,"é"]}'), text('  {"b": true}\n'), text("3"))
    assert await ws.receive_json() == {"a": [1, 2.5, None, "é"]}
    assert await ws.receive_json(mode="text") == {"b": True}
    assert await ws.receive_json() == 3


async def test_receive_json_binary_mode() -> None:
    ws, _ = await accepted(binary('{"é":1}'.encode()))
    assert await ws.receive_json(mode="binary") == {"é": 1}


@pytest.mark.parametrize(
    "payload",
    [
        "{",
        "",
        "   ",
        "[1,]",
        '{"a":1} extra',
        "1 2",
        "'single'",
        '"\\x"',
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
    ],
)
async def test_receive_json_invalid(payload: str) -> None:
    ws, _ = await accepted(text(payload))
    with pytest.raises(InvalidJSONError) as info:
        await ws.receive_json()
    assert info.value.code == 1007
    assert str(info.value).startswith("Invalid JSON in WebSocket message")
    assert ws.client_state is WebSocketState.CONNECTED  # the connection itself is still usable


async def test_receive_json_invalid_is_a_value_error() -> None:
    ws, _ = await accepted(text("nope"))
    with pytest.raises(ValueError, match="Invalid JSON"):
        await ws.receive_json()


async def test_receive_json_binary_invalid_utf8() -> None:
    ws, _ = await accepted(binary(b'"\xff\xfe"'))
    with pytest.raises(InvalidJSONError, match="Invalid UTF-8") as info:
        await ws.receive_json(mode="binary")
    assert info.value.code == 1007
    assert info.value.pos == 1


async def test_receive_json_wrong_kind() -> None:
    ws, _ = await accepted(binary(b"{}"), text("{}"))
    with pytest.raises(UnsupportedDataError, match="Expected a text"):
        await ws.receive_json()
    with pytest.raises(UnsupportedDataError, match="Expected a binary"):
        await ws.receive_json(mode="binary")


async def test_invalid_mode() -> None:
    ws, peer = await accepted(text("{}"))
    message = 'The "mode" argument should be "text" or "binary".'
    with pytest.raises(RuntimeError) as info:
        await ws.receive_json(mode="json")
    assert str(info.value) == message
    with pytest.raises(RuntimeError, match="mode"):
        await ws.send_json({}, mode="json")
    with pytest.raises(RuntimeError, match="mode"):
        async for _ in ws.iter_json(mode="json"):
            pass
    assert peer.incoming  # nothing was consumed
    assert peer.sent == []


@pytest.mark.parametrize("method", ["receive_text", "receive_bytes", "receive_json"])
async def test_receive_data_on_disconnect(method: str) -> None:
    ws, _ = await accepted(disconnect(4002, "gone"))
    with pytest.raises(WebSocketDisconnect) as info:
        await getattr(ws, method)()
    assert (info.value.code, info.value.reason) == (4002, "gone")
    assert ws.client_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected) as again:
        await getattr(ws, method)()
    assert str(again.value) == 'Cannot call "receive" once a disconnect message has been received.'


async def test_disconnect_without_reason() -> None:
    ws, _ = await accepted({"type": "websocket.disconnect", "code": 1001})
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_text()
    assert (info.value.code, info.value.reason) == (1001, "")


async def test_raw_receive_returns_disconnect() -> None:
    ws, _ = await accepted(text("x"), disconnect(1005))
    assert await ws.receive() == text("x")
    assert await ws.receive() == disconnect(1005)
    assert ws.client_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected, match='Cannot call "receive"'):
        await ws.receive()


async def test_raw_receive_unexpected_message() -> None:
    ws, _ = await accepted({"type": "websocket.connect"}, {"type": "http.request"})
    expected = 'Expected ASGI message "websocket.receive" or "websocket.disconnect", but got '
    with pytest.raises(RuntimeError) as info:
        await ws.receive()
    assert str(info.value) == expected + "'websocket.connect'"
    with pytest.raises(RuntimeError) as info:
        await ws.receive_text()
    assert str(info.value) == expected + "'http.request'"


@pytest.mark.parametrize("method", ["receive_text", "receive_bytes", "receive_json"])
async def test_receive_data_before_accept(method: str) -> None:
    ws, peer = make_ws(CONNECT, text("x"))
    with pytest.raises(WebSocketDisconnected) as info:  # a RuntimeError, as in Starlette
        await getattr(ws, method)()
    assert str(info.value) == 'WebSocket is not connected. Need to call "accept" first.'
    assert len(peer.incoming) == 2


async def test_receive_after_close_waits_for_the_clients_disconnect() -> None:
    # Another task closed the socket while this one still reads: it sees the peer go away.
    ws, _ = await accepted(text("x"), disconnect(1001))
    await ws.close()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_text()
    assert info.value.code == 1001
    assert ws.client_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected, match='Cannot call "receive"'):
        await ws.receive_text()


async def test_receive_after_a_lost_connection_is_a_1006_disconnect() -> None:
    ws, peer = await accepted(text("x"))
    peer.send_error = ConnectionResetError()
    with pytest.raises(WebSocketDisconnect):
        await ws.send_text("y")
    for method in ("receive_text", "receive_bytes", "receive_json"):
        ws2, peer2 = await accepted(text("x"))
        peer2.send_error = ConnectionResetError()
        with pytest.raises(WebSocketDisconnect):
            await ws2.send_text("y")
        with pytest.raises(WebSocketDisconnect) as info:
            await getattr(ws2, method)()
        assert info.value.code == 1006
    assert [m async for m in ws.iter_text()] == []


async def test_iterators_end_on_disconnect() -> None:
    ws, _ = await accepted(text("a"), text("b"), disconnect())
    assert [m async for m in ws.iter_text()] == ["a", "b"]
    ws, _ = await accepted(binary(b"a"), binary(b"b"), disconnect(1001))
    assert [m async for m in ws.iter_bytes()] == [b"a", b"b"]
    ws, _ = await accepted(text("[1]"), text('{"x":2}'), disconnect())
    assert [m async for m in ws.iter_json()] == [[1], {"x": 2}]
    ws, _ = await accepted(binary(b"[1]"), disconnect())
    assert [m async for m in ws.iter_json(mode="binary")] == [[1]]
    assert ws.client_state is WebSocketState.DISCONNECTED


async def test_iterators_propagate_client_errors() -> None:
    ws, _ = await accepted(text("a"), binary(b"b"))
    seen = []
    with pytest.raises(UnsupportedDataError):
        async for message in ws.iter_text():
            seen.append(message)
    assert seen == ["a"]
    ws, _ = await accepted(text("{oops"))
    with pytest.raises(InvalidJSONError):
        async for _ in ws.iter_json():
            pass


# -- sending ---------------------------------------------------------------------------------------


async def test_send_text_bytes_json() -> None:
    ws, peer = await accepted()
    await ws.send_text("héllo")
    await ws.send_bytes(b"\x00")
    await ws.send_json({"a": [1, "é", None], "b": {"c": 1.5}})
    await ws.send_json(["ü"], mode="binary")
    await ws.send_json("plain")
    assert peer.sent == [
        {"type": "websocket.send", "text": "héllo"},
        {"type": "websocket.send", "bytes": b"\x00"},
        {"type": "websocket.send", "text": '{"a":[1,"é",null],"b":{"c":1.5}}'},
        {"type": "websocket.send", "bytes": '["ü"]'.encode()},
        {"type": "websocket.send", "text": '"plain"'},
    ]


async def test_send_json_unserializable() -> None:
    ws, peer = await accepted()
    with pytest.raises(TypeError, match="not JSON serializable"):
        await ws.send_json({"x": object()})
    await ws.send_json({"x": 1})  # the encoder is not left in a broken state
    assert peer.sent == [{"type": "websocket.send", "text": '{"x":1}'}]


@pytest.mark.parametrize("method", ["send_text", "send_bytes", "send_json"])
async def test_send_data_before_accept(method: str) -> None:
    ws, peer = make_ws()
    arg: Any = b"x" if method == "send_bytes" else "x"
    with pytest.raises(RuntimeError) as info:
        await getattr(ws, method)(arg)
    assert str(info.value) == 'WebSocket is not connected. Need to call "accept" first.'
    assert peer.sent == []


@pytest.mark.parametrize("method", ["send_text", "send_bytes", "send_json", "close"])
async def test_send_after_close(method: str) -> None:
    ws, peer = await accepted()
    await ws.close()
    arg: Any = b"x" if method == "send_bytes" else "x"
    with pytest.raises(WebSocketDisconnected, match='Cannot call "send" once a close message'):
        await (ws.close() if method == "close" else getattr(ws, method)(arg))
    assert len(peer.sent) == 1


@pytest.mark.parametrize("method", ["send_text", "send_bytes", "send_json", "close", "send"])
@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("reset"),
        OSError("closed"),
        RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."),
        RuntimeError(
            "Unexpected ASGI message 'websocket.close', after sending 'websocket.close' "
            "or response already completed."
        ),
    ],
)
async def test_server_reports_connection_closed(method: str, error: BaseException) -> None:
    ws, peer = await accepted()
    peer.send_error = error
    arg: Any = {
        "send_text": "x",
        "send_bytes": b"x",
        "send_json": [1],
        "send": {"type": "websocket.send", "text": "x"},
    }.get(method)
    with pytest.raises(WebSocketDisconnect) as info:
        await (ws.close() if method == "close" else getattr(ws, method)(arg))
    assert info.value.code == 1006
    assert info.value.__cause__ is error
    assert ws.application_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected):
        await ws.send_text("again")


async def test_other_server_runtime_errors_propagate() -> None:
    ws, peer = await accepted()
    error = RuntimeError("something else")
    peer.send_error = error
    with pytest.raises(RuntimeError) as info:
        await ws.send_text("x")
    assert info.value is error
    assert ws.application_state is WebSocketState.CONNECTED


async def test_oserror_during_accept() -> None:
    ws, peer = make_ws(CONNECT)
    peer.send_error = ConnectionResetError()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.accept()
    assert info.value.code == 1006
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_raw_send_close_and_send_after() -> None:
    ws, peer = await accepted()
    await ws.send({"type": "websocket.send", "bytes": b"1"})
    await ws.send({"type": "websocket.close", "code": 1000})
    with pytest.raises(WebSocketDisconnected) as info:
        await ws.send({"type": "websocket.send", "text": "x"})
    assert str(info.value) == 'Cannot call "send" once a close message has been sent.'
    with pytest.raises(RuntimeError, match=r"Expected ASGI message \"websocket.send\""):
        ws2, _ = await accepted()
        await ws2.send({"type": "websocket.accept"})


# -- a whole app, driven through memory streams -------------------------------------------------


async def test_echo_app_over_memory_streams() -> None:
    """An echo endpoint talking to a 'server' task over anyio memory object streams."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        await ws.accept(subprotocol="echo")
        async for message in ws.iter_json():
            await ws.send_json({"echo": message})
        await ws.close()

    to_app_send, to_app_receive = anyio.create_memory_object_stream[Message](10)
    from_app_send, from_app_receive = anyio.create_memory_object_stream[Message](10)
    async with to_app_send, to_app_receive, from_app_send, from_app_receive:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    app,
                    make_scope(subprotocols=["echo"]),
                    to_app_receive.receive,
                    from_app_send.send,
                )
                await to_app_send.send(CONNECT)
                assert (await from_app_receive.receive())["subprotocol"] == "echo"
                for i in range(3):
                    await to_app_send.send(text(json.dumps({"n": i})))
                    reply = await from_app_receive.receive()
                    assert json.loads(reply["text"]) == {"echo": {"n": i}}
                await to_app_send.send(disconnect(1001))
                assert (await from_app_receive.receive())["type"] == "websocket.close"


async def test_breaking_out_of_an_iterator_leaves_the_socket_usable() -> None:
    ws, _ = await accepted(text("a"), text("b"), text("c"))
    iterator = ws.iter_text()
    async for message in iterator:
        assert message == "a"
        break
    await iterator.aclose()  # type: ignore[attr-defined]  # closable like an async generator
    assert await ws.receive_text() == "b"
    async for message in ws.iter_text():  # left suspended: finalised by the event loop
        assert message == "c"
        break


# -- through a brillo app and the TestClient -----------------------------------------------------


def _app() -> Any:
    from brillo.applications import Brillo
    from brillo.routing import WebSocketRoute

    async def text_only(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.send_text(await ws.receive_text())

    async def json_only(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.send_json(await ws.receive_json())

    async def info(ws: WebSocket) -> None:
        await ws.accept(subprotocol="v2")
        await ws.send_json(
            {
                "url": str(ws.url),
                "self": str(ws.url_for("info")),
                "query": ws.query_params.get("q"),
                "cookie": ws.cookies.get("c"),
                "subprotocols": ws.scope["subprotocols"],
            }
        )
        await ws.close(4000, "done")

    return Brillo(
        routes=[
            WebSocketRoute("/text", text_only),
            WebSocketRoute("/json", json_only),
            WebSocketRoute("/info", info, name="info"),
        ]
    )


@pytest.mark.parametrize(
    ("path", "send", "code"),
    [
        ("/text", ("send_bytes", b"\x00"), 1003),
        ("/json", ("send_bytes", b"{}"), 1003),
        ("/json", ("send_text", "{not json"), 1007),
    ],
)
def test_client_errors_close_with_their_code(path: str, send: tuple[str, Any], code: int) -> None:
    from brillo.testclient import TestClient

    with TestClient(_app()) as client, client.websocket_connect(path) as session:
        session.send_text('"ok"')
        assert session.receive_text() == '"ok"'
        getattr(session, send[0])(send[1])
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == code


def test_connection_api_through_an_app() -> None:
    from brillo.testclient import TestClient

    with (
        TestClient(_app()) as client,
        client.websocket_connect(
            "/info?q=1", subprotocols=["v1", "v2"], headers={"cookie": "c=yum"}
        ) as session,
    ):
        assert session.accepted_subprotocol == "v2"
        data = session.receive_json()
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert data == {
        "url": "ws://testserver/info?q=1",
        "self": "ws://testserver/info",
        "query": "1",
        "cookie": "yum",
        "subprotocols": ["v1", "v2"],
    }
    assert (info.value.code, info.value.reason) == (4000, "done")


async def test_close_reason_limit() -> None:
    # A reason over the 123 bytes a close frame holds is cut on a character boundary (the one
    # rule, brillo._utils.truncate_close_reason; more in tests/test_close_reason.py).
    ws, peer = await accepted()
    await ws.close(1000, "é" * 62)  # 124 bytes: the last "é" does not fit
    assert peer.sent == [{"type": "websocket.close", "code": 1000, "reason": "é" * 61}]
    ws, peer = await accepted()
    await ws.close(1000, "é" * 61 + "x")  # exactly 123 bytes
    assert peer.sent == [{"type": "websocket.close", "code": 1000, "reason": "é" * 61 + "x"}]
    rejecting, peer = make_ws()
    await rejecting.close(1008, "x" * 200)  # before accept the reason never goes on the wire
    assert peer.sent[0]["code"] == 1008
