"""A brillo WebSocket app over the wire, under uvicorn and hypercorn, with the websockets client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from brillo.applications import Brillo
from brillo.responses import PlainTextResponse
from brillo.routing import WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket, WebSocketDisconnect

SERVERS = ["uvicorn", "hypercorn"]
TIMEOUT = 10


class Recorder:
    """Thread-safe record of what the app saw, readable once the client knows it happened."""

    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []
        self.closed = threading.Event()


def make_app(recorder: Recorder) -> Brillo:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    recorder.closes.append((message.get("code", 1000), message.get("reason", "")))
                    recorder.closed.set()
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        finally:
            recorder.closed.set()

    async def json_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            try:
                data = await websocket.receive_json()
            except WebSocketDisconnect:
                return
            if data.get("type") == "ping":
                await websocket.send_json({"type": "pong"})
            else:
                await websocket.send_json({"type": "echo", "data": data})

    async def text_only(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            await websocket.send_text((await websocket.receive_text()).upper())

    async def close_with(websocket: WebSocket) -> None:
        await websocket.accept()
        code = int(websocket.query_params["code"])
        await websocket.close(code, websocket.query_params.get("reason"))

    async def deny(websocket: WebSocket) -> None:
        response = PlainTextResponse("members only", status_code=403, headers={"x-why": "auth"})
        await websocket.send_denial_response(response)

    async def reject(websocket: WebSocket) -> None:
        await websocket.close(1008)

    async def crash(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise RuntimeError("handler bug")

    async def subprotocol(websocket: WebSocket) -> None:
        supported = ["brillo.v2", "brillo.v1"]
        offered = websocket.scope["subprotocols"]
        chosen = next((p for p in offered if p in supported), None)
        await websocket.accept(subprotocol=chosen)
        await websocket.send_text(chosen or "none")
        await websocket.close()

    return Brillo(
        routes=[
            WebSocketRoute("/echo", echo),
            WebSocketRoute("/json", json_endpoint),
            WebSocketRoute("/text", text_only),
            WebSocketRoute("/close", close_with),
            WebSocketRoute("/deny", deny),
            WebSocketRoute("/reject", reject),
            WebSocketRoute("/crash", crash),
            WebSocketRoute("/subprotocol", subprotocol),
        ]
    )


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, Recorder]]:
    recorder = Recorder()
    with LiveServer(make_app(recorder), server=request.param) as live:
        yield live, recorder


Connect = Callable[..., ClientConnection]


@pytest.fixture
def ws(server: tuple[LiveServer, Recorder]) -> Connect:
    live, _ = server

    def open_ws(path: str, **kwargs: Any) -> ClientConnection:
        connection: ClientConnection = connect(
            live.ws_url + path, open_timeout=TIMEOUT, close_timeout=TIMEOUT, **kwargs
        )
        return connection

    return open_ws


def closed_with(conn: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed) as info:
        conn.recv(timeout=TIMEOUT)
    rcvd = info.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)


def test_text_and_bytes_echo(ws: Connect) -> None:
    with ws("/echo") as conn:
        conn.send("héllo")
        assert conn.recv(timeout=TIMEOUT) == "héllo"
        conn.send(b"\x00\x01\xff")
        assert conn.recv(timeout=TIMEOUT) == b"\x00\x01\xff"
        big = "x" * 200_000
        conn.send(big)
        assert conn.recv(timeout=TIMEOUT) == big


def test_client_close_code_reaches_app(ws: Connect, server: tuple[LiveServer, Recorder]) -> None:
    live, recorder = server
    with ws("/echo") as conn:
        conn.close(4001, "client done")
    assert recorder.closed.wait(TIMEOUT)
    if live.server == "hypercorn":
        # hypercorn 0.18 does not forward the client's close code/reason to the app: it reports
        # 1006 for any close the client starts while the socket is open (ws_stream.py).
        assert recorder.closes == [(1006, "")]
    else:
        assert recorder.closes == [(4001, "client done")]


def test_json(ws: Connect) -> None:
    with ws("/json") as conn:
        conn.send(json.dumps({"type": "ping"}))
        assert json.loads(conn.recv(timeout=TIMEOUT)) == {"type": "pong"}
        conn.send(json.dumps({"n": [1, 2]}))
        assert json.loads(conn.recv(timeout=TIMEOUT)) == {"type": "echo", "data": {"n": [1, 2]}}


def test_invalid_json_closes_1007(ws: Connect) -> None:
    with ws("/json") as conn:
        conn.send("{not json")
        assert closed_with(conn)[0] == 1007


def test_binary_to_text_endpoint_closes_1003(ws: Connect) -> None:
    with ws("/text") as conn:
        conn.send("ok")
        assert conn.recv(timeout=TIMEOUT) == "OK"
        conn.send(b"\x01")
        assert closed_with(conn)[0] == 1003


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "going away"), (4321, "custom")])
def test_server_close_codes(ws: Connect, code: int, reason: str) -> None:
    with ws(f"/close?code={code}&reason={reason.replace(' ', '+')}") as conn:
        assert closed_with(conn) == (code, reason)


def test_handler_exception_closes_1011(ws: Connect) -> None:
    with ws("/crash") as conn:
        conn.send("boom")
        assert closed_with(conn)[0] == 1011


def test_denial_response(ws: Connect) -> None:
    with pytest.raises(InvalidStatus) as info:
        ws("/deny")
    response = info.value.response
    assert response.status_code == 403
    assert response.headers["x-why"] == "auth"
    assert response.body == b"members only"


def test_close_before_accept_is_403(ws: Connect) -> None:
    with pytest.raises(InvalidStatus) as info:
        ws("/reject")
    assert info.value.response.status_code == 403


def test_unknown_path_is_rejected(ws: Connect) -> None:
    with pytest.raises(InvalidStatus) as info:
        ws("/nowhere")
    assert info.value.response.status_code in (403, 404)


def test_subprotocol_selection(ws: Connect) -> None:
    with ws("/subprotocol", subprotocols=["brillo.v3", "brillo.v1", "brillo.v2"]) as conn:
        assert conn.subprotocol == "brillo.v1"
        assert conn.recv(timeout=TIMEOUT) == "brillo.v1"
    with ws("/subprotocol") as conn:
        assert conn.subprotocol is None
        assert conn.recv(timeout=TIMEOUT) == "none"


def test_live_server_fixture_factory(live_server: Callable[..., LiveServer]) -> None:
    first = live_server(make_app(Recorder()))
    second = live_server(make_app(Recorder()), server="hypercorn")
    assert first.port != second.port
    for live in (first, second):
        with connect(live.ws_url + "/echo", open_timeout=TIMEOUT) as conn:
            conn.send(live.server)
            assert conn.recv(timeout=TIMEOUT) == live.server


@pytest.mark.parametrize("server_name", SERVERS)
def test_seed_chat_broadcast_over_the_wire(server_name: Any) -> None:
    from examples.seed import chat

    with LiveServer(chat.create_app(), server=server_name) as live:
        base = live.ws_url + "/chat/lobby?user="
        with connect(base + "ann", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ann:
            assert json.loads(ann.recv(timeout=TIMEOUT)) == {"type": "join", "user": "ann"}
            with connect(base + "ben", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ben:
                assert json.loads(ben.recv(timeout=TIMEOUT)) == {"type": "join", "user": "ben"}
                assert json.loads(ann.recv(timeout=TIMEOUT)) == {"type": "join", "user": "ben"}
                ben.send("hi ann")
                expected = {"type": "message", "user": "ben", "text": "hi ann"}
                assert json.loads(ann.recv(timeout=TIMEOUT)) == expected
                assert json.loads(ben.recv(timeout=TIMEOUT)) == expected
            assert json.loads(ann.recv(timeout=TIMEOUT)) == {"type": "leave", "user": "ben"}
