"""Tests for brillo.testclient.TestClient, driven by raw ASGI apps on asyncio and trio."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from brillo.endpoints import HTTPEndpoint, WebSocketEndpoint
from brillo.exceptions import BrilloDeprecationWarning
from brillo.requests import Request
from brillo.responses import PlainTextResponse
from brillo.testclient import (
    ASGI2App,
    ASGI3App,
    ASGIInstance,
    TestClient,
    WebSocketDenialResponse,
    WebSocketTestSession,
)
from brillo.types import ASGIApp, Message, Receive, Scope, Send
from brillo.websockets import WebSocket, WebSocketDisconnect

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(anyio_backend: str) -> ClientFactory:
    """TestClient factory on the parametrized backend (asyncio and trio)."""

    def make(app: ASGIApp, **kwargs: Any) -> TestClient:
        return TestClient(app, backend=anyio_backend, **kwargs)  # type: ignore[arg-type]

    return make


async def send_response(send: Send, status: int, body: bytes, **extra: Any) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    headers += extra.get("headers", [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def scope_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with a JSON view of the scope and the request body."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    info = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "root_path": scope["root_path"],
        "query": scope["query_string"].decode(),
        "scheme": scope["scheme"],
        "server": list(scope["server"]),
        "client": list(scope["client"]),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "body": body.decode(),
        "state": scope["state"],
        "asgi": scope["asgi"]["version"],
    }
    await send_response(send, 200, json.dumps(info).encode())


# -- HTTP ------------------------------------------------------------------------------------


def test_http_scope(make_client: ClientFactory) -> None:
    client = make_client(scope_app)
    response = client.post("/a%20b/c?x=1&y=2", content=b"payload", headers={"X-Test": "yes"})
    assert response.status_code == 200
    info = response.json()
    assert info["method"] == "POST"
    assert info["path"] == "/a b/c"
    assert info["raw_path"] == "/a%20b/c"
    assert info["query"] == "x=1&y=2"
    assert info["scheme"] == "http"
    assert info["server"] == ["testserver", 80]
    assert info["client"] == ["testclient", 50000]
    assert info["headers"]["host"] == "testserver"
    assert info["headers"]["x-test"] == "yes"
    assert info["headers"]["user-agent"] == "testclient"
    assert info["body"] == "payload"
    assert info["state"] == {}
    assert info["asgi"] == "3.0"


def test_base_url_root_path_client_headers_and_cookies(make_client: ClientFactory) -> None:
    client = make_client(
        scope_app,
        base_url="https://example.org:8443",
        root_path="/api",
        client=("10.1.2.3", 1234),
        headers={"X-Default": "1"},
        cookies={"session": "abc"},
    )
    info = client.get("/api/items").json()
    assert info["scheme"] == "https"
    assert info["server"] == ["example.org", 8443]
    assert info["headers"]["host"] == "example.org:8443"
    # root_path only tells the app where it is mounted; the path is sent as requested.
    assert info["root_path"] == "/api"
    assert info["path"] == "/api/items"
    assert info["raw_path"] == "/api/items"
    assert info["client"] == ["10.1.2.3", 1234]
    assert info["headers"]["x-default"] == "1"
    assert info["headers"]["cookie"] == "session=abc"


def test_streaming_response_and_head(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    client = make_client(app)
    assert client.get("/").content == b"one two three"
    with client.stream("GET", "/") as response:
        assert b"".join(response.iter_bytes()) == b"one two three"
    assert client.head("/").content == b""


def test_streaming_app_that_listens_for_disconnect(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        disconnected = anyio.Event()

        async def listen() -> None:
            message = await receive()
            assert message["type"] == "http.disconnect"
            disconnected.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await send({"type": "http.response.body", "body": b"y"})
        assert disconnected.is_set()

    assert make_client(app).get("/").text == "xy"


def test_server_exceptions(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("broken handler")

    with pytest.raises(ValueError, match="broken handler"):
        make_client(app).get("/")
    response = make_client(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500


def test_exception_after_response_started(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ValueError("mid-stream")

    with pytest.raises(ValueError, match="mid-stream"):
        make_client(app).get("/")
    assert make_client(app, raise_server_exceptions=False).get("/").status_code == 200


def test_app_without_response(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return

    with pytest.raises(RuntimeError, match="without sending a response"):
        make_client(app).get("/")
    assert make_client(app, raise_server_exceptions=False).get("/").status_code == 500


def test_follows_redirects(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/old":
            await send_response(send, 307, b"", headers=[(b"location", b"/new")])
        else:
            await send_response(send, 200, scope["path"].encode())

    assert make_client(app).get("/old").text == "/new"
    response = make_client(app, follow_redirects=False).get("/old")
    assert response.status_code == 307


def test_debug_extension(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.debug" in scope["extensions"]
        info = {"template": "index.html", "context": {"x": 1}}
        await send({"type": "http.response.debug", "info": info})
        await send_response(send, 200, b"page")

    response = make_client(app).get("/")
    assert response.template == "index.html"  # type: ignore[attr-defined]
    assert response.context == {"x": 1}  # type: ignore[attr-defined]


def test_asgi2_app(make_client: ClientFactory) -> None:
    class App:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send_response(send, 200, b"asgi2")

    assert make_client(App).get("/").text == "asgi2"


# -- lifespan --------------------------------------------------------------------------------


def lifespan_app(events: list[str], fail: str | None = None) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                phase = message["type"].split(".")[1]
                events.append(phase)
                if fail == "startup-raise" and phase == "startup":
                    raise RuntimeError("cannot start")
                if phase == fail:
                    await send({"type": f"lifespan.{phase}.failed", "message": "nope"})
                    return
                if phase == "startup":
                    scope["state"]["db"] = "connected"
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        await scope_app(scope, receive, send)

    return app


def test_lifespan_runs_and_state_flows(make_client: ClientFactory) -> None:
    events: list[str] = []
    client = make_client(lifespan_app(events))
    assert client.get("/").json()["state"] == {}  # no lifespan outside 'with'
    assert events == []
    with client as entered:
        assert entered is client
        assert events == ["startup"]
        assert client.get("/").json()["state"] == {"db": "connected"}
        assert client.portal is not None
    assert events == ["startup", "shutdown"]
    assert client.portal is None


def test_lifespan_startup_failed_message(make_client: ClientFactory) -> None:
    events: list[str] = []
    with (
        pytest.raises(RuntimeError, match="lifespan startup failed: nope"),
        make_client(lifespan_app(events, fail="startup")),
    ):
        pass  # pragma: no cover
    assert events == ["startup"]


def test_lifespan_startup_exception(make_client: ClientFactory) -> None:
    with (
        pytest.raises(RuntimeError, match="cannot start"),
        make_client(lifespan_app([], fail="startup-raise")),
    ):
        pass  # pragma: no cover


def test_lifespan_shutdown_failure(make_client: ClientFactory) -> None:
    events: list[str] = []
    client = make_client(lifespan_app(events, fail="shutdown"))
    with pytest.raises(RuntimeError, match="lifespan shutdown failed"), client:
        pass
    assert events == ["startup", "shutdown"]


def test_app_without_lifespan_support(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send_response(send, 200, b"ok")

    with make_client(app) as client:
        assert client.get("/").text == "ok"


def test_lifespan_timeout(make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    monkeypatch.setattr(TestClient, "websocket_timeout", 0.1)
    with pytest.raises(TimeoutError), make_client(app):
        pass  # pragma: no cover


# -- WebSocket -------------------------------------------------------------------------------


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts (with the first offered subprotocol) and echoes frames until disconnect."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    subprotocols = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": subprotocols[0] if subprotocols else None,
            "headers": [(b"x-accepted", b"1")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "scope":
            view = {
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "scheme": scope["scheme"],
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "state": scope["state"],
                "extensions": sorted(scope["extensions"]),
            }
            await send({"type": "websocket.send", "text": json.dumps(view)})
        elif message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked to"})
            return
        else:
            await send({"type": "websocket.send", **{k: message.get(k) for k in ("text", "bytes")}})


def test_websocket_echo(make_client: ClientFactory) -> None:
    client = make_client(echo_app)
    with client.websocket_connect("/ws") as ws:
        assert isinstance(ws, WebSocketTestSession)
        ws.send_text("hello")
        assert ws.receive_text() == "hello"
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_bytes() == b"\x00\xff"
        ws.send_json({"a": [1, "é"]})
        assert ws.receive_json() == {"a": [1, "é"]}
        ws.send_json({"b": 2}, mode="binary")
        assert ws.receive_json(mode="binary") == {"b": 2}
        ws.send({"type": "websocket.receive", "text": "raw"})
        assert ws.receive() == {"type": "websocket.send", "text": "raw", "bytes": None}


def test_websocket_scope(make_client: ClientFactory) -> None:
    client = make_client(echo_app, headers={"X-Client": "c"}, cookies={"k": "v"})
    with client.websocket_connect(
        "/chat", headers={"Authorization": "Bearer t"}, params={"room": "1", "x": "y"}
    ) as ws:
        ws.send_text("scope")
        view = ws.receive_json()
    assert view["path"] == "/chat"
    assert view["query"] == "room=1&x=y"
    assert view["scheme"] == "ws"
    assert view["headers"]["authorization"] == "Bearer t"
    assert view["headers"]["x-client"] == "c"
    assert view["headers"]["cookie"] == "k=v"
    assert view["headers"]["connection"] == "upgrade"
    assert view["headers"]["sec-websocket-key"] == "testserver=="
    assert view["headers"]["sec-websocket-version"] == "13"
    assert view["extensions"] == ["websocket.http.response"]
    https = make_client(echo_app, base_url="https://secure")
    with https.websocket_connect("/") as ws:
        ws.send_text("scope")
        assert ws.receive_json()["scheme"] == "wss"


def test_websocket_subprotocol_and_headers(make_client: ClientFactory) -> None:
    client = make_client(echo_app)
    with client.websocket_connect("/", subprotocols=["v2.chat", "v1.chat"]) as ws:
        assert ws.accepted_subprotocol == "v2.chat"
        assert ws.extra_headers == [(b"x-accepted", b"1")]
        ws.send_text("scope")
        assert ws.receive_json()["headers"]["sec-websocket-protocol"] == "v2.chat, v1.chat"
    with client.websocket_connect("/") as ws:
        assert ws.accepted_subprotocol is None


def test_websocket_close_from_app(make_client: ClientFactory) -> None:
    with make_client(echo_app).websocket_connect("/") as ws:
        ws.send_text("close")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 4000
        assert info.value.reason == "asked to"
        # Further receives keep reporting the close instead of hanging.
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
        assert ws.receive()["type"] == "websocket.close"


def test_websocket_close_before_accept(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008, "reason": "no token"})

    with pytest.raises(WebSocketDisconnect) as info, make_client(app).websocket_connect("/"):
        pass  # pragma: no cover
    assert info.value.code == 1008
    assert info.value.reason == "no token"
    assert not isinstance(info.value, WebSocketDenialResponse)


def test_websocket_denial_response(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        assert "websocket.http.response" in scope["extensions"]
        headers = [(b"content-type", b"application/json"), (b"x-why", b"quota")]
        await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
        await send(
            {"type": "websocket.http.response.body", "body": b'{"error":', "more_body": True}
        )
        await send({"type": "websocket.http.response.body", "body": b'"slow down"}'})

    with pytest.raises(WebSocketDenialResponse) as info, make_client(app).websocket_connect("/"):
        pass  # pragma: no cover
    denial = info.value
    assert isinstance(denial, httpx.Response)
    assert isinstance(denial, WebSocketDisconnect)
    assert denial.status_code == 429
    assert denial.headers["x-why"] == "quota"
    assert denial.json() == {"error": "slow down"}
    assert denial.code == 1006
    assert "429" in str(denial)


def test_websocket_app_exception_after_accept(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        raise ValueError(f"cannot handle {message['text']}")

    with make_client(app).websocket_connect("/") as ws:
        ws.send_text("this")
        with pytest.raises(ValueError, match="cannot handle this"):
            ws.receive_text()

    # Not received inside the block: re-raised on exit.
    with (
        pytest.raises(ValueError, match="cannot handle that"),
        make_client(app).websocket_connect("/") as ws,
    ):
        ws.send_text("that")

    # raise_server_exceptions=False: the test sees what a server sends, a 1011 close.
    with make_client(app, raise_server_exceptions=False).websocket_connect("/") as ws:
        ws.send_text("x")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1011


def test_websocket_app_exception_before_accept(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("early")

    with pytest.raises(KeyError, match="early"), make_client(app).websocket_connect("/"):
        pass  # pragma: no cover


def test_websocket_app_returns_without_close(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})

    with make_client(app).websocket_connect("/") as ws:
        assert ws.receive_text() == "bye"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1000


def test_websocket_client_close_reaches_app(make_client: ClientFactory) -> None:
    seen: list[Message] = []
    send_error: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            send_error.append(exc)

    with make_client(app).websocket_connect("/") as ws:
        ws.close(4001, "done here")
    assert seen == [{"type": "websocket.disconnect", "code": 4001, "reason": "done here"}]
    assert len(send_error) == 1


def test_websocket_disconnect_escaping_app_after_client_close(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        raise WebSocketDisconnect(message["code"])

    with make_client(app).websocket_connect("/"):
        pass  # leaving closes with 1000; the app's WebSocketDisconnect is not a test failure


def test_websocket_receive_timeout(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass  # never answers

    with make_client(app).websocket_connect("/") as ws:
        ws.timeout = 0.05  # after the handshake, so a loaded machine cannot fail that
        ws.send_text("anyone?")
        with pytest.raises(TimeoutError, match=r"0.05 s waiting for a text message"):
            ws.receive_text()


def test_websocket_accept_timeout(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await anyio.sleep_forever()
        finally:
            pass

    with (
        pytest.raises(TimeoutError, match="websocket.accept"),
        make_client(app).websocket_connect("/", timeout=0.05),
    ):
        pass  # pragma: no cover


def test_websocket_app_ignoring_disconnect_is_cancelled(make_client: ClientFactory) -> None:
    cancelled: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await anyio.sleep_forever()  # never reads the close
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    with make_client(app).websocket_connect("/") as ws:
        ws.timeout = 30  # the idle app is cancelled without waiting for the timeout
    assert cancelled == [True]


def test_websocket_app_gets_to_finish_after_reading_the_close(make_client: ClientFactory) -> None:
    cleaned_up: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        for _ in range(3):
            await anyio.sleep(0.01)  # cleanup that takes a while is not cut short
        cleaned_up.append(message)

    with make_client(app).websocket_connect("/"):
        pass
    assert cleaned_up == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]


def test_websocket_app_hanging_after_reading_the_close(make_client: ClientFactory) -> None:
    cancelled: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await anyio.sleep_forever()  # saw the close, yet never returns: a bug
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    with (
        pytest.raises(TimeoutError, match="did not return"),
        make_client(app).websocket_connect("/") as ws,
    ):
        ws.timeout = 0.05
    assert cancelled == [True]


def test_websocket_class_default_timeout(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TestClient, "websocket_timeout", 7.5)
    with make_client(echo_app).websocket_connect("/") as ws:
        assert ws.timeout == 7.5
    with make_client(echo_app).websocket_connect("/", timeout=3) as ws:
        assert ws.timeout == 3


def test_websocket_inside_lifespan_shares_portal_and_state(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan_app([])(scope, receive, send)
        else:
            await echo_app(scope, receive, send)

    with make_client(app) as client:
        portal = client.portal
        with client.websocket_connect("/a") as a, client.websocket_connect("/b") as b:
            assert client.portal is portal
            a.send_text("scope")
            b.send_text("from b")
            assert b.receive_text() == "from b"
            assert a.receive_json()["state"] == {"db": "connected"}


def test_websocket_send_json_mode_validation(make_client: ClientFactory) -> None:
    with make_client(echo_app).websocket_connect("/") as ws:
        with pytest.raises(ValueError, match="mode"):
            ws.send_json({}, mode="xml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="mode"):
            ws.receive_json(mode="xml")  # type: ignore[arg-type]
        ws.send_bytes(b"x")
        with pytest.raises(TypeError, match="binary"):
            ws.receive_text()
        ws.send_text("y")
        with pytest.raises(TypeError, match="text"):
            ws.receive_bytes()


def test_session_outside_with_block(make_client: ClientFactory) -> None:
    session = make_client(echo_app).websocket_connect("/")
    with pytest.raises(RuntimeError, match="with"):
        session.send_text("x")


def test_not_collected_by_pytest() -> None:
    assert TestClient.__test__ is False


def test_app_close_then_receive_gets_disconnect(make_client: ClientFactory) -> None:
    after_close: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4002, "reason": "bye"})
        after_close.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "late"})
        except OSError as exc:
            after_close.append(type(exc))

    with make_client(app).websocket_connect("/") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 4002
        ws.close()  # a no-op once the app has closed
    assert after_close == [{"type": "websocket.disconnect", "code": 4002, "reason": "bye"}, OSError]


def test_lifespan_shutdown_can_close_open_websockets(make_client: ClientFactory) -> None:
    open_sockets: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            for socket_send in open_sockets:
                await socket_send({"type": "websocket.close", "code": 1001, "reason": "shutdown"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        open_sockets.append(send)
        while (await receive())["type"] != "websocket.disconnect":
            pass

    client = make_client(app)
    client.__enter__()
    session = client.websocket_connect("/")
    ws = session.__enter__()
    client.__exit__()
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_text()
    assert (info.value.code, info.value.reason) == (1001, "shutdown")
    session.__exit__(None, None, None)


def test_client_exit_cancels_sessions_left_open(make_client: ClientFactory) -> None:
    cancelled: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    with make_client(app) as client:
        client.websocket_connect("/").__enter__()  # never exited
    assert cancelled == [True]


def test_denial_via_brillo_websocket_and_response(make_client: ClientFactory) -> None:
    from brillo.responses import JSONResponse
    from brillo.websockets import WebSocket

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.send_denial_response(
            JSONResponse({"detail": "members only"}, status_code=403)
        )

    with pytest.raises(WebSocketDenialResponse) as info, make_client(app).websocket_connect("/"):
        pass  # pragma: no cover
    assert info.value.status_code == 403
    assert info.value.json() == {"detail": "members only"}
    assert info.value.headers["content-type"] == "application/json"


def test_denial_response_takes_httpx_response_arguments() -> None:
    denial = WebSocketDenialResponse(403, text="go away", headers={"x-a": "1"})
    assert denial.status_code == 403
    assert denial.text == "go away"
    assert denial.headers["x-a"] == "1"
    assert (denial.code, denial.reason) == (1006, "handshake denied with HTTP 403")
    with pytest.raises(WebSocketDisconnect):
        raise denial


def test_lifespan_methods_drive_the_protocol(make_client: ClientFactory) -> None:
    events: list[str] = []
    client = make_client(lifespan_app(events))
    assert client.portal is None
    with client:
        assert client.portal is not None
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]
    assert client.portal is None
    with client:  # a second round starts afresh
        assert events == ["startup", "shutdown", "startup"]
    assert events == ["startup", "shutdown", "startup", "shutdown"]


# -- streaming responses ---------------------------------------------------------------------


def test_stream_returns_before_the_first_chunk(make_client: ClientFactory) -> None:
    release = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        assert await anyio.to_thread.run_sync(release.wait, 10)
        await send({"type": "http.response.body", "body": b"late"})

    with make_client(app).stream("GET", "/") as response:
        assert response.status_code == 200  # the body has not been produced yet
        release.set()
        assert response.read() == b"late"


def test_closing_an_endless_stream_cancels_the_app(make_client: ClientFactory) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for n in itertools.count():
                await send({"type": "http.response.body", "body": b"%d\n" % n, "more_body": True})
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    with make_client(app).stream("GET", "/events") as response:
        lines = response.iter_lines()
        assert [next(lines) for _ in range(3)] == ["0", "1", "2"]
    assert cancelled.is_set()


def test_closing_an_unfinished_response_disconnects_and_cancels(make_client: ClientFactory) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        try:
            seen.append((await receive())["type"])  # the client going away
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    with make_client(app).stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"part"
    assert seen == ["http.disconnect", "cancelled"]


def test_stream_applies_backpressure(make_client: ClientFactory) -> None:
    produced: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(3):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            produced.append(n)
        await send({"type": "http.response.body", "body": b""})

    with make_client(app).stream("GET", "/") as response:
        chunks = response.iter_raw()
        assert produced == []  # the app waits in send() until the test reads
        assert next(chunks) == b"x"
        assert next(chunks) == b"x"
        assert 2 not in produced  # the third send waits for the third read
        assert list(chunks) == [b"x"]
        assert produced == [0, 1, 2]


def test_empty_and_head_bodies_are_skipped(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"", b"a", b"", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with make_client(app).stream("GET", "/") as response:
        assert list(response.iter_raw()) == [b"a", b"b"]
    with make_client(app).stream("HEAD", "/") as response:
        assert list(response.iter_raw()) == []


def test_mutable_and_strided_body_chunks_are_copied(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        buffer = bytearray(b"ab")
        await send({"type": "http.response.body", "body": buffer, "more_body": True})
        buffer[:] = b"cd"  # reused by the app once send() returned
        await send({"type": "http.response.body", "body": memoryview(buffer), "more_body": True})
        await send({"type": "http.response.body", "body": memoryview(b"e-f-")[::2]})

    client = make_client(app)
    assert client.get("/").content == b"abcdef"
    with client.stream("GET", "/") as response:
        assert list(response.iter_raw()) == [b"ab", b"cd", b"ef"]


def test_completed_response_close_waits_for_the_app(make_client: ClientFactory) -> None:
    finished = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b"done")
        await anyio.sleep(0.05)  # a background task, after the response
        finished.set()
        raise ValueError("background failed")

    with (
        pytest.raises(ValueError, match="background failed"),
        make_client(app).stream("GET", "/") as response,
    ):
        assert response.read() == b"done"
    assert finished.is_set()
    finished.clear()
    assert make_client(app, raise_server_exceptions=False).get("/").text == "done"
    assert finished.is_set()


def test_receive_reports_disconnect_once_the_response_is_complete(
    make_client: ClientFactory,
) -> None:
    after: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send_response(send, 200, b"ok")
        with anyio.CancelScope() as scope_:  # a poll that must not wait
            scope_.cancel()
            after.append(await receive())

    assert make_client(app).get("/").text == "ok"
    assert after == [{"type": "http.disconnect"}]


@pytest.mark.parametrize("how", ["close", "lifespan"])
def test_closing_the_client_cancels_responses_left_open(
    make_client: ClientFactory, how: str
) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send_response(send, 200, b"sent")
        try:
            await anyio.sleep_forever()  # a background task that never ends
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    client = make_client(app)
    if how == "close":
        response = client.send(client.build_request("GET", "/"), stream=True)
        chunks = response.iter_raw()
        assert next(chunks) == b"sent"
        client.close()
    else:
        with client:
            response = client.send(client.build_request("GET", "/"), stream=True)
            chunks = response.iter_raw()
            assert next(chunks) == b"sent"
    assert cancelled.is_set()
    response.close()  # already closed by the client: a no-op


def test_background_work_that_never_ends_is_cancelled(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b"sent")
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    monkeypatch.setattr(TestClient, "websocket_timeout", 0.1)
    with pytest.raises(TimeoutError, match="after its response was complete"):
        make_client(app).get("/")
    assert cancelled.is_set()


def test_failure_inside_the_app_always_reaches_the_test(make_client: ClientFactory) -> None:
    class Stop(BaseException):
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Stop("not a server error: a failed check inside the app")

    for raise_server_exceptions in (True, False):
        client = make_client(app, raise_server_exceptions=raise_server_exceptions)
        with pytest.raises(Stop):
            client.get("/")


def test_app_that_never_responds(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return

    with pytest.raises(AssertionError, match="TestClient did not receive any response"):
        make_client(app).get("/")
    with pytest.raises(RuntimeError, match="without sending a response"):
        make_client(app).get("/")
    assert make_client(app, raise_server_exceptions=False).get("/").status_code == 500


# -- trailers --------------------------------------------------------------------------------


def trailers_app(*messages: Message) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.trailers" in scope["extensions"]
        for message in messages:
            await send(message)

    return app


START_WITH_TRAILERS = {"type": "http.response.start", "status": 200, "trailers": True}


def test_trailers_are_captured_apart_from_headers(make_client: ClientFactory) -> None:
    app = trailers_app(
        START_WITH_TRAILERS,
        {"type": "http.response.body", "body": b"data"},
        {"type": "http.response.trailers", "headers": [(b"x-sum", b"1")], "more_trailers": True},
        {"type": "http.response.trailers", "headers": [[b"x-sum", b"2"]]},
    )
    response = make_client(app).get("/")
    assert response.content == b"data"
    assert response.extensions["http.response.trailers"] == [(b"x-sum", b"1"), (b"x-sum", b"2")]
    assert "x-sum" not in response.headers
    plain = make_client(trailers_app({"type": "http.response.start", "status": 204})).get("/")
    assert "http.response.trailers" not in plain.extensions


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "http.response.trailers"}], "without declaring trailers"),
        ([START_WITH_TRAILERS, {"type": "http.response.trailers"}], "before body completed"),
        (
            [
                START_WITH_TRAILERS,
                {"type": "http.response.body"},
                {"type": "http.response.body"},
            ],
            "after body completed",
        ),
        (
            [
                START_WITH_TRAILERS,
                {"type": "http.response.body"},
                {"type": "http.response.trailers"},
                {"type": "http.response.trailers"},
            ],
            "after response completed",
        ),
    ],
)
def test_trailer_protocol_violations(
    make_client: ClientFactory, messages: list[Message], error: str
) -> None:
    with pytest.raises(AssertionError, match=error):
        make_client(trailers_app(*messages)).get("/")


def test_trailers_when_the_app_fails_or_stops_early(make_client: ClientFactory) -> None:
    messages = (
        START_WITH_TRAILERS,
        {"type": "http.response.body", "body": b"data"},
        {"type": "http.response.trailers", "headers": [(b"x-a", b"1")], "more_trailers": True},
    )
    early = make_client(trailers_app(*messages)).get("/")  # returns without the last trailers
    assert early.extensions["http.response.trailers"] == [(b"x-a", b"1")]

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await trailers_app(*messages)(scope, receive, send)
        raise ValueError("trailer failed")

    with pytest.raises(ValueError, match="trailer failed"):
        make_client(failing).get("/")
    response = make_client(failing, raise_server_exceptions=False).get("/")
    assert response.content == b"data"
    assert response.extensions["http.response.trailers"] == [(b"x-a", b"1")]


def test_unfinished_trailers_cancel_and_finished_ones_wait(make_client: ClientFactory) -> None:
    events: list[str] = []

    def app(finish: bool) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send(START_WITH_TRAILERS)
            await send({"type": "http.response.body", "body": b"data"})
            if finish:
                await send({"type": "http.response.trailers", "headers": []})
            try:
                await anyio.sleep(0.05 if finish else math.inf)
                events.append("finished")
            except anyio.get_cancelled_exc_class():
                events.append("cancelled")
                raise

        return app

    for finish in (False, True):
        with make_client(app(finish)).stream("GET", "/") as response:
            assert next(response.iter_raw()) == b"data"
    assert events == ["cancelled", "finished"]


# -- debug extension, scope details, apps ----------------------------------------------------


def test_debug_info_in_extensions_and_template_attributes(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.debug", "info": {"rows": [1, 2]}})
        await send({"type": "http.response.body", "body": b"1,2"})

    response = make_client(app).get("/")
    assert response.extensions["http.response.debug"] == {"rows": [1, 2]}
    assert not hasattr(response, "template")
    assert "http.response.debug" not in make_client(scope_app).get("/").extensions


def test_ipv6_base_url_and_explicit_port_zero(make_client: ClientFactory) -> None:
    info = make_client(scope_app, base_url="http://[::1]:0").get("/").json()
    assert info["server"] == ["::1", 0]
    assert info["headers"]["host"] == "[::1]:0"
    info = make_client(scope_app, base_url="http://[::1]").get("/").json()
    assert info["server"] == ["::1", 80]
    assert info["headers"]["host"] == "[::1]"


def test_timeout_argument_is_deprecated(make_client: ClientFactory) -> None:
    client = make_client(scope_app)
    with pytest.warns(BrilloDeprecationWarning, match="'timeout' argument") as record:
        client.get("/", timeout=1)
    assert record[0].filename == __file__  # points at the test's own line
    with pytest.warns(BrilloDeprecationWarning), client.stream("GET", "/", timeout=None):
        pass
    client.get("/")  # no warning without the argument


def test_endpoint_classes_as_apps(make_client: ClientFactory) -> None:
    class Page(HTTPEndpoint):
        async def get(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("page")

    class Echo(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: WebSocket, data: str) -> None:
            await websocket.send_text(data.upper())

    assert make_client(Page).get("/").text == "page"
    with make_client(Echo).websocket_connect("/") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "HI"


def test_asgi_type_aliases() -> None:
    async def inner(receive: Receive, send: Send) -> None:
        await send_response(send, 200, b"aliased")

    def app(scope: Scope) -> ASGIInstance:
        return inner

    two: ASGI2App = app
    three: ASGI3App = scope_app
    assert TestClient(two).get("/").text == "aliased"  # type: ignore[arg-type]
    assert TestClient(three).get("/").status_code == 200


def test_websocket_by_url_scheme_without_upgrade_header(make_client: ClientFactory) -> None:
    client = make_client(echo_app)
    with client.websocket_connect("ws://example.com:8080/room") as ws:
        ws.send_text("scope")
        view = ws.receive_json()
    assert view["scheme"] == "ws"
    assert "upgrade" not in view["headers"]
    assert view["headers"]["host"] == "example.com:8080"


def test_body_of_the_wrong_type_is_a_clear_error(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": "text"})

    with pytest.raises(TypeError, match="must be bytes .* not str"):
        make_client(app).get("/")


@pytest.mark.parametrize("stall", ["before the start", "mid-body"])
def test_a_stalled_app_is_a_timeout_not_a_hang(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, stall: str
) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if stall == "mid-body":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    monkeypatch.setattr(TestClient, "websocket_timeout", 0.1)
    expected = "to start the response" if stall == "before the start" else "the next body chunk"
    with pytest.raises(TimeoutError, match=expected):
        make_client(app).get("/")
    assert cancelled.is_set()
