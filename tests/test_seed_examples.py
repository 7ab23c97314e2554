"""The seed WebSocket examples, driven with TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from brillo.testclient import TestClient
from brillo.types import ASGIApp
from brillo.websockets import WebSocketDisconnect
from examples.seed import (
    auth,
    chat,
    document,
    echo,
    graceful_shutdown,
    json_ping,
    live_updates,
    path_params,
    subprotocols,
)

# -- the four classics, in their plain form --------------------------------------------------


def test_websocket_echo() -> None:
    client = TestClient(echo.app)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("Hello, brillo!")
        assert websocket.receive_text() == "Hello, brillo!"
        websocket.send_bytes(b"\x00\x01")
        assert websocket.receive_bytes() == b"\x00\x01"


def test_websocket_json() -> None:
    client = TestClient(json_ping.app)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_json({"type": "ping"})
        assert websocket.receive_json() == {"type": "pong"}
        websocket.send_json({"type": "message", "text": "hi"})
        assert websocket.receive_json() == {"type": "message", "text": "hi"}


def test_websocket_path_params() -> None:
    client = TestClient(path_params.app)
    with client.websocket_connect("/ws/42") as websocket:
        assert websocket.receive_json() == {"type": "hello", "user_id": 42, "room_id": None}
        websocket.send_text("hey")
        assert websocket.receive_json() == {"user_id": 42, "room_id": None, "text": "hey"}


def test_websocket_auth_rejected() -> None:
    client = TestClient(auth.app)
    with pytest.raises(WebSocketDisconnect) as exc_info, client.websocket_connect("/ws"):
        pass  # pragma: no cover
    assert exc_info.value.code == 1008
    assert exc_info.value.reason == "Missing token"


# -- the rest, on both backends --------------------------------------------------------------


@pytest.fixture
def make_client(anyio_backend: str) -> Callable[[ASGIApp], TestClient]:
    def make(app: ASGIApp) -> TestClient:
        return TestClient(app, backend=anyio_backend)  # type: ignore[arg-type]

    return make


def test_json_errors(make_client: Callable[[ASGIApp], TestClient]) -> None:
    with make_client(json_ping.app).websocket_connect("/ws") as websocket:
        websocket.send_text("{not json")
        assert websocket.receive_json() == {"type": "error", "detail": "Invalid JSON"}
        websocket.send_json({"type": "dance"})
        assert websocket.receive_json() == {"type": "error", "detail": "Unknown message type"}
        websocket.send_json([1, 2])
        assert websocket.receive_json()["type"] == "error"
        websocket.send_json({"type": "ping"})  # still open after errors
        assert websocket.receive_json() == {"type": "pong"}
        websocket.send_bytes(b"\x01\x02")
        with pytest.raises(WebSocketDisconnect) as exc_info:
            websocket.receive_json()
    assert exc_info.value.code == 1003


@pytest.mark.parametrize("prefix", ["", "/endpoint"])
def test_path_params_function_and_endpoint(
    make_client: Callable[[ASGIApp], TestClient], prefix: str
) -> None:
    client = make_client(path_params.app)
    with client.websocket_connect(f"{prefix}/ws/7") as websocket:
        assert websocket.receive_json() == {"type": "hello", "user_id": 7, "room_id": None}
    with client.websocket_connect(f"{prefix}/ws/room/3/user/9") as websocket:
        assert websocket.receive_json() == {"type": "hello", "user_id": 9, "room_id": 3}
        websocket.send_text("in room")
        assert websocket.receive_json() == {"user_id": 9, "room_id": 3, "text": "in room"}
    # The int convertor does not match other text: the route is not found.
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"{prefix}/ws/alice"):
        pass  # pragma: no cover


def test_endpoint_class_rejects_binary(make_client: Callable[[ASGIApp], TestClient]) -> None:
    with make_client(path_params.app).websocket_connect("/endpoint/ws/1") as websocket:
        websocket.receive_json()
        websocket.send_bytes(b"x")
        with pytest.raises(WebSocketDisconnect) as exc_info:
            websocket.receive_json()
    assert exc_info.value.code == 1003


@pytest.mark.parametrize(
    ("kwargs", "user"),
    [
        ({"params": {"token": "s3cret-alice"}}, "alice"),
        ({"headers": {"Authorization": "Bearer s3cret-bob"}}, "bob"),
        ({"headers": {"Authorization": "bearer  s3cret-bob "}}, "bob"),
    ],
)
def test_auth_accepted(
    make_client: Callable[[ASGIApp], TestClient], kwargs: dict[str, Any], user: str
) -> None:
    with make_client(auth.app).websocket_connect("/ws", **kwargs) as websocket:
        assert websocket.receive_json() == {"type": "welcome", "user": user}
        websocket.send_text("hi")
        assert websocket.receive_text() == f"{user}: hi"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"params": {"token": "wrong"}}, "Invalid token"),
        ({"headers": {"Authorization": "Bearer wrong"}}, "Invalid token"),
        ({"headers": {"Authorization": "Basic YWxpY2U6eA=="}}, "Missing token"),
        ({"headers": {"Authorization": "Bearer "}}, "Missing token"),
    ],
)
def test_auth_rejected(
    make_client: Callable[[ASGIApp], TestClient], kwargs: dict[str, Any], reason: str
) -> None:
    client = make_client(auth.app)
    with pytest.raises(WebSocketDisconnect) as exc_info, client.websocket_connect("/ws", **kwargs):
        pass  # pragma: no cover
    assert (exc_info.value.code, exc_info.value.reason) == (1008, reason)


def test_chat_broadcast_join_and_leave(make_client: Callable[[ASGIApp], TestClient]) -> None:
    app = chat.create_app()
    with make_client(app) as client:
        with client.websocket_connect("/chat/lobby?user=alice") as alice:
            assert alice.receive_json() == {"type": "join", "user": "alice"}
            with client.websocket_connect("/chat/lobby?user=bob") as bob:
                assert bob.receive_json() == {"type": "join", "user": "bob"}
                assert alice.receive_json() == {"type": "join", "user": "bob"}
                with client.websocket_connect("/chat/other?user=carol") as carol:
                    assert carol.receive_json() == {"type": "join", "user": "carol"}
                    alice.send_text("hello lobby")
                    expected = {"type": "message", "user": "alice", "text": "hello lobby"}
                    assert alice.receive_json() == expected
                    assert bob.receive_json() == expected
                    carol.send_text("only me")
                    assert carol.receive_json()["text"] == "only me"
            assert alice.receive_json() == {"type": "leave", "user": "bob"}
            assert len(app.state.manager.rooms["lobby"]) == 1
        assert app.state.manager.rooms == {}


def test_chat_requires_a_user(make_client: Callable[[ASGIApp], TestClient]) -> None:
    client = make_client(chat.create_app())
    with pytest.raises(WebSocketDisconnect) as exc_info, client.websocket_connect("/chat/x"):
        pass  # pragma: no cover
    assert exc_info.value.code == 1008


def test_subprotocol_selection(make_client: Callable[[ASGIApp], TestClient]) -> None:
    client = make_client(subprotocols.app)
    with client.websocket_connect("/ws", subprotocols=["chat.v3", "chat.v1", "chat.v2"]) as ws:
        assert ws.accepted_subprotocol == "chat.v1"
        assert ws.receive_json() == {"type": "protocol", "subprotocol": "chat.v1"}
        ws.send_text("hi")
        assert ws.receive_text() == "HI"
    with client.websocket_connect("/ws", subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.accepted_subprotocol == "chat.v2"
        ws.receive_json()
        ws.send_text("hi")
        assert ws.receive_text() == "[v2] hi"
    with client.websocket_connect("/ws") as ws:
        assert ws.accepted_subprotocol is None
        assert ws.receive_json() == {"type": "protocol", "subprotocol": None}
        ws.send_text("plain")
        assert ws.receive_text() == "plain"
    with (
        pytest.raises(WebSocketDisconnect) as exc_info,
        client.websocket_connect("/ws", subprotocols=["mqtt"]),
    ):
        pass  # pragma: no cover
    assert exc_info.value.code == 1008
    assert "mqtt" in exc_info.value.reason


def test_graceful_shutdown_closes_with_1001(make_client: Callable[[ASGIApp], TestClient]) -> None:
    app = graceful_shutdown.create_app()
    client = make_client(app)
    client.__enter__()
    sessions = [client.websocket_connect("/ws") for _ in range(2)]
    sockets = [session.__enter__() for session in sessions]
    try:
        for number, websocket in enumerate(sockets):
            websocket.send_text(f"n{number}")
            assert websocket.receive_text() == f"n{number}"
        assert len(app.state.open_sockets) == 2
    finally:
        client.__exit__()  # lifespan shutdown
    for websocket in sockets:
        with pytest.raises(WebSocketDisconnect) as exc_info:
            websocket.receive_text()
        assert exc_info.value.code == 1001
        assert exc_info.value.reason == graceful_shutdown.SHUTDOWN_REASON
    for session in sessions:
        session.__exit__(None, None, None)
    assert app.state.open_sockets == set()


def test_live_updates_push_ticks(make_client: Callable[[ASGIApp], TestClient]) -> None:
    client = make_client(live_updates.create_app(interval=0.001))
    with client.websocket_connect("/ws") as websocket:
        counts = [websocket.receive_json()["count"] for _ in range(3)]
        assert counts == [1, 2, 3]
        websocket.send_text("reset")
        # Ticks sent before the reset arrive first; skip to the acknowledgement.
        for _ in range(100_000):
            if websocket.receive_json()["type"] == "reset":
                break
        # A tick built just before the reset may still follow it; then the count restarts.
        after = [websocket.receive_json()["count"] for _ in range(2)]
        assert 1 in after


@pytest.fixture
def doc_client(make_client: Callable[[ASGIApp], TestClient]) -> Iterator[TestClient]:
    with make_client(document.create_app()) as client:
        yield client


def test_document_edits_are_shared(doc_client: TestClient) -> None:
    with (
        doc_client.websocket_connect("/doc/readme?user=ann") as ann,
        doc_client.websocket_connect("/doc/readme?user=ben") as ben,
    ):
        assert ann.receive_json() == {"type": "snapshot", "text": "", "version": 0}
        assert ben.receive_json() == {"type": "snapshot", "text": "", "version": 0}
        ann.send_json({"type": "insert", "pos": 0, "text": "Hello world"})
        for websocket in (ann, ben):
            edit = websocket.receive_json()
            assert edit["text"] == "Hello world"
            assert edit["version"] == 1
            assert edit["author"] == "ann"
        ben.send_json({"type": "delete", "pos": 5, "length": 6})
        ben.send_json({"type": "insert", "pos": 5, "text": ", brillo"})
        for websocket in (ann, ben):
            assert websocket.receive_json()["text"] == "Hello"
            last = websocket.receive_json()
            assert (last["text"], last["version"], last["author"]) == ("Hello, brillo", 3, "ben")
    # A newcomer gets the current snapshot.
    with doc_client.websocket_connect("/doc/readme") as late:
        assert late.receive_json() == {"type": "snapshot", "text": "Hello, brillo", "version": 3}
    with doc_client.websocket_connect("/doc/other") as other:
        assert other.receive_json()["text"] == ""


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"type": "insert", "pos": 99, "text": "x"}, "pos must be an integer from 0 to 2"),
        ({"type": "insert", "pos": 0}, "insert needs a string 'text'"),
        ({"type": "delete", "pos": 1, "length": 5}, "length must be an integer from 0 to 1"),
        ({"type": "delete", "pos": True, "length": 1}, "pos must be an integer from 0 to 2"),
        ({"type": "rewrite"}, "Unknown edit type (expected insert or delete)"),
        (["insert"], "An edit must be a JSON object"),
        ({"type": "insert", "pos": 0, "text": "x" * document.MAX_LENGTH}, "may not exceed"),
    ],
)
def test_document_rejects_bad_edits(doc_client: TestClient, payload: Any, detail: str) -> None:
    with doc_client.websocket_connect("/doc/d") as websocket:
        websocket.receive_json()
        websocket.send_json({"type": "insert", "pos": 0, "text": "ab"})
        assert websocket.receive_json()["version"] == 1
        websocket.send_json(payload)
        error = websocket.receive_json()
        assert error["type"] == "error"
        assert detail in error["detail"]
    with doc_client.websocket_connect("/doc/d") as websocket:
        assert websocket.receive_json()["version"] == 1  # nothing changed


def test_document_bad_input(doc_client: TestClient) -> None:
    with doc_client.websocket_connect("/doc/d") as websocket:
        websocket.receive_json()
        websocket.send_text("not json")
        assert websocket.receive_json() == {"type": "error", "detail": "Invalid JSON"}
        websocket.send_bytes(b"{}")
        with pytest.raises(WebSocketDisconnect) as exc_info:
            websocket.receive_json()
    assert exc_info.value.code == 1003
