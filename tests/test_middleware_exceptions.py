"""Tests for brillo.middleware.exceptions.ExceptionMiddleware and the WebSocket close rules."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from brillo._exception_handler import wrap_app_handling_exceptions
from brillo.applications import Brillo
from brillo.exceptions import HTTPException, WebSocketException
from brillo.middleware.exceptions import ExceptionMiddleware
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response
from brillo.routing import Route, Router, WebSocketRoute
from brillo.testclient import TestClient, WebSocketDenialResponse
from brillo.types import Message, Receive, Scope, Send
from brillo.websockets import WebSocket, WebSocketDisconnect
from tests.support.asgi import ws_scope


class Peer:
    """The server side of one WebSocket connection: scripted input, recorded output."""

    def __init__(self, *incoming: Message, extensions: dict[str, Any] | None = None) -> None:
        self.incoming: deque[Message] = deque([{"type": "websocket.connect"}, *incoming])
        self.sent: list[Message] = []
        self.scope: Scope = ws_scope(client=("127.0.0.1", 1234), extensions=extensions or {})

    async def receive(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if not self.incoming:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        return self.incoming.popleft()

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent.append(message)

    async def run(self, app: Any) -> None:
        with anyio.fail_after(5):
            await app(self.scope, self.receive, self.send)

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


def ws_app(endpoint: Callable[[WebSocket], Any]) -> Brillo:
    return Brillo(routes=[WebSocketRoute("/ws", endpoint)])


# -- HTTP --------------------------------------------------------------------------------------


def test_default_http_exception_handler(client_factory: Callable[..., TestClient]) -> None:
    async def teapot(request: Request) -> Response:
        raise HTTPException(418, headers={"X-Pot": "1"})

    async def no_content(request: Request) -> Response:
        raise HTTPException(204)

    async def not_modified(request: Request) -> Response:
        raise HTTPException(304, headers={"ETag": '"x"'})

    app = Brillo(
        routes=[Route("/tea", teapot), Route("/204", no_content), Route("/304", not_modified)]
    )
    with client_factory(app) as client:
        response = client.get("/tea")
        assert (response.status_code, response.text) == (418, "I'm a Teapot")
        assert response.headers["x-pot"] == "1"
        response = client.get("/204")
        assert (response.status_code, response.content) == (204, b"")
        response = client.get("/304")
        assert (response.status_code, response.content) == (304, b"")
        assert response.headers["etag"] == '"x"'


def test_handler_lookup_uses_mro(client_factory: Callable[..., TestClient]) -> None:
    async def raise_key(request: Request) -> Response:
        raise KeyError("k")

    async def lookup_handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(type(exc).__name__, status_code=400)

    app = ExceptionMiddleware(
        Router([Route("/", raise_key)]), handlers={LookupError: lookup_handler}
    )
    with client_factory(app) as client:
        assert client.get("/").text == "KeyError"


def test_status_handler_beats_class_handler(client_factory: Callable[..., TestClient]) -> None:
    async def gone(request: Request) -> Response:
        raise HTTPException(410)

    async def by_status(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("by status", status_code=410)

    async def by_class(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("by class", status_code=410)

    app = Brillo(
        routes=[Route("/", gone)],
        exception_handlers={HTTPException: by_class, 410: by_status},
    )
    with client_factory(app) as client:
        assert client.get("/").text == "by status"


def test_unhandled_exception_propagates(client_factory: Callable[..., TestClient]) -> None:
    async def crash(request: Request) -> Response:
        raise ZeroDivisionError()

    app = ExceptionMiddleware(Router([Route("/", crash)]))
    with client_factory(app) as client, pytest.raises(ZeroDivisionError):
        client.get("/")


def test_exception_after_response_started(client_factory: Callable[..., TestClient]) -> None:
    async def streamer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise HTTPException(400)

    class Raw:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await streamer(scope, receive, send)

    app = Brillo(routes=[Route("/", Raw())])
    with (
        client_factory(app) as client,
        pytest.raises(RuntimeError, match="Caught handled exception, but response already"),
    ):
        client.get("/")


def test_http_exception_from_raw_app(client_factory: Callable[..., TestClient]) -> None:
    class Raw:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise HTTPException(401, "who are you")

    app = Brillo(routes=[Route("/", Raw())])
    with client_factory(app) as client:
        response = client.get("/")
        assert (response.status_code, response.text) == (401, "who are you")


def test_add_exception_handler_method() -> None:
    middleware = ExceptionMiddleware(Router())

    async def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("x")  # pragma: no cover

    middleware.add_exception_handler(404, handler)
    middleware.add_exception_handler(ValueError, handler)
    assert middleware._status_handlers[404] is handler
    assert middleware._exception_handlers[ValueError] is handler


# -- WebSocket ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_websocket_exception_before_accept() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise WebSocketException(4003, "no token")

    peer = Peer()
    await peer.run(ws_app(endpoint))
    assert peer.sent == [{"type": "websocket.close", "code": 4003, "reason": "no token"}]


@pytest.mark.anyio
async def test_websocket_disconnect_is_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()

    peer = Peer({"type": "websocket.disconnect", "code": 1001, "reason": ""})
    with caplog.at_level(logging.DEBUG):
        await peer.run(ws_app(endpoint))
    assert peer.types == ["websocket.accept"]
    assert not [r for r in caplog.records if r.name.startswith("brillo")]


@pytest.mark.anyio
async def test_client_error_closes_with_its_code_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_json()

    peer = Peer({"type": "websocket.receive", "text": "{not json"})
    with caplog.at_level(logging.DEBUG):
        await peer.run(ws_app(endpoint))
    assert peer.types == ["websocket.accept", "websocket.close"]
    assert peer.sent[1]["code"] == 1007
    assert peer.sent[1]["reason"]
    assert len(peer.sent[1]["reason"].encode()) <= 123
    records = [r for r in caplog.records if r.name.startswith("brillo")]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert records[0].exc_info is None
    assert "1007" in records[0].getMessage()


@pytest.mark.anyio
async def test_wrong_kind_closes_1003() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()

    peer = Peer({"type": "websocket.receive", "bytes": b"\x00"})
    await peer.run(ws_app(endpoint))
    assert peer.sent[-1]["type"] == "websocket.close"
    assert peer.sent[-1]["code"] == 1003


@pytest.mark.anyio
async def test_crash_after_accept_closes_1011_and_reraises() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise RuntimeError("bug")

    peer = Peer()
    with pytest.raises(RuntimeError, match="bug"):
        await peer.run(ws_app(endpoint))
    assert peer.types == ["websocket.accept", "websocket.close"]
    assert peer.sent[1]["code"] == 1011


@pytest.mark.anyio
async def test_crash_before_accept_reraises_without_close() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise RuntimeError("early bug")

    peer = Peer()
    with pytest.raises(RuntimeError, match="early bug"):
        await peer.run(ws_app(endpoint))
    # Nothing sent: the server answers the handshake with HTTP 500.
    assert peer.sent == []


@pytest.mark.anyio
async def test_crash_after_close_does_not_close_twice() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4000)
        raise RuntimeError("after close")

    peer = Peer()
    with pytest.raises(RuntimeError, match="after close"):
        await peer.run(ws_app(endpoint))
    assert peer.types == ["websocket.accept", "websocket.close"]
    assert peer.sent[1]["code"] == 4000


@pytest.mark.anyio
async def test_crash_after_client_left_sends_nothing_more() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive()
        assert message["type"] == "websocket.disconnect"
        raise RuntimeError("cleanup bug")

    peer = Peer({"type": "websocket.disconnect", "code": 1000, "reason": ""})
    with pytest.raises(RuntimeError, match="cleanup bug"):
        await peer.run(ws_app(endpoint))
    assert peer.types == ["websocket.accept"]


@pytest.mark.anyio
async def test_http_exception_before_accept_with_denial_extension() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401, "login first", headers={"WWW-Authenticate": "Bearer"})

    peer = Peer(extensions={"websocket.http.response": {}})
    await peer.run(ws_app(endpoint))
    assert peer.types == ["websocket.http.response.start", "websocket.http.response.body"]
    assert peer.sent[0]["status"] == 401
    assert (b"www-authenticate", b"Bearer") in [tuple(h) for h in peer.sent[0]["headers"]]
    assert peer.sent[1]["body"] == b"login first"


@pytest.mark.anyio
async def test_http_exception_before_accept_without_extension() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(403, "forbidden here")

    peer = Peer()
    await peer.run(ws_app(endpoint))
    assert peer.sent == [{"type": "websocket.close", "code": 1008, "reason": "forbidden here"}]


@pytest.mark.anyio
async def test_http_exception_after_accept() -> None:
    async def client_fault(websocket: WebSocket) -> None:
        await websocket.accept()
        raise HTTPException(404)

    async def server_fault(websocket: WebSocket) -> None:
        await websocket.accept()
        raise HTTPException(503)

    for endpoint, code in ((client_fault, 1008), (server_fault, 1011)):
        peer = Peer()
        await peer.run(ws_app(endpoint))
        assert peer.types == ["websocket.accept", "websocket.close"]
        assert peer.sent[1]["code"] == code


@pytest.mark.anyio
async def test_raw_websocket_app_errors() -> None:
    """A raw ASGI app (no WebSocket session) behind ExceptionMiddleware."""

    async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("raw bug")

    async def refusing(scope: Scope, receive: Receive, send: Send) -> None:
        raise WebSocketException(4400, "bad request")

    peer = Peer()
    with pytest.raises(RuntimeError, match="raw bug"):
        await peer.run(ExceptionMiddleware(crashing))
    # No session to consult: the server itself closes with 1011.
    assert peer.types == ["websocket.accept"]

    peer = Peer()
    await peer.run(ExceptionMiddleware(refusing))
    assert peer.sent == [{"type": "websocket.close", "code": 4400, "reason": "bad request"}]


@pytest.mark.anyio
async def test_sync_websocket_handler_runs_in_thread() -> None:
    class Custom(Exception):
        pass

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise Custom()

    seen: list[type[BaseException]] = []

    def handler(websocket: WebSocket, exc: Exception) -> None:
        seen.append(type(exc))

    app = Brillo(routes=[WebSocketRoute("/ws", endpoint)], exception_handlers={Custom: handler})  # type: ignore[dict-item]
    peer = Peer()
    await peer.run(app)
    assert seen == [Custom]
    assert peer.types == ["websocket.accept"]


def test_denial_response_through_test_client(client_factory: Callable[..., TestClient]) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(429, "slow down", headers={"Retry-After": "3"})

    with client_factory(ws_app(endpoint)) as client:
        with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws"):
            pass  # pragma: no cover
        assert info.value.status_code == 429
        assert info.value.text == "slow down"
        assert info.value.headers["retry-after"] == "3"


def test_websocket_exception_through_test_client(
    client_factory: Callable[..., TestClient],
) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(4010, "bye")

    with client_factory(ws_app(endpoint)) as client, client.websocket_connect("/ws") as session:
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert (info.value.code, info.value.reason) == (4010, "bye")


@pytest.mark.anyio
async def test_status_handler_applies_to_websocket_http_exception() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401)

    async def unauthorized(websocket: WebSocket, exc: Exception) -> Response:
        return PlainTextResponse("token please", status_code=401)

    app = Brillo(routes=[WebSocketRoute("/ws", endpoint)], exception_handlers={401: unauthorized})  # type: ignore[dict-item]
    peer = Peer(extensions={"websocket.http.response": {}})
    await peer.run(app)
    assert peer.types == ["websocket.http.response.start", "websocket.http.response.body"]
    assert peer.sent[1]["body"] == b"token please"

    peer = Peer()
    await peer.run(app)
    assert peer.sent == [{"type": "websocket.close", "code": 1008, "reason": "Unauthorized"}]


# -- handled exceptions let their traceback go -------------------------------------------------


def test_handled_http_exception_drops_its_traceback(
    client_factory: Callable[..., TestClient],
) -> None:
    # One instance raised by every request: with its traceback kept, each raise would chain
    # another traceback (and every request's frames) onto it.
    shared = HTTPException(403, "not you")

    async def endpoint(request: Request) -> Response:
        raise shared

    class Unhandled(Exception):
        pass

    unhandled = Unhandled()

    async def crash(request: Request) -> Response:
        raise unhandled

    app = ExceptionMiddleware(Router([Route("/", endpoint), Route("/crash", crash)]))
    with client_factory(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get("/").status_code == 403
            assert shared.__traceback__ is None
        assert client.get("/crash").status_code == 500
    # Not handled: the traceback stays for whoever logs it.
    assert unhandled.__traceback__ is not None


@pytest.mark.anyio
async def test_handled_websocket_exceptions_drop_their_traceback() -> None:
    refused = WebSocketException(4003, "no")
    crash = RuntimeError("bug")

    async def refuse(websocket: WebSocket) -> None:
        raise refused

    async def crashing(websocket: WebSocket) -> None:
        await websocket.accept()
        raise crash

    await Peer().run(ws_app(refuse))
    assert refused.__traceback__ is None
    with pytest.raises(RuntimeError):
        await Peer().run(ws_app(crashing))
    assert crash.__traceback__ is not None


# -- wrap_app_handling_exceptions (what FastAPI wraps its endpoints with) ----------------------


class RawASGI:
    """An ASGI app object: routes call it as it is (functions would be request endpoints)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Any]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _wrapped_route(path: str, inner: Callable[[Request], Any]) -> Route:
    """A route whose endpoint wrapper is built the way FastAPI builds its own."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await inner(request)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(app, request)(scope, receive, send)

    return Route(path, RawASGI(asgi))


def test_wrap_app_handling_exceptions_http(client_factory: Callable[..., TestClient]) -> None:
    class Teapot(Exception):
        pass

    seen: list[Request] = []

    async def teapot(request: Request) -> Response:
        seen.append(request)
        raise Teapot()

    async def on_teapot(request: Request, exc: Exception) -> Response:
        seen.append(request)
        return PlainTextResponse("teapot", status_code=418)

    async def gone(request: Request) -> Response:
        raise HTTPException(410, "gone")

    async def crash(request: Request) -> Response:
        raise KeyError("unhandled")

    async def late(request: Request) -> Response:
        async def body(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise HTTPException(400)

        return body  # type: ignore[return-value]

    app = Brillo(
        routes=[
            _wrapped_route("/teapot", teapot),
            _wrapped_route("/gone", gone),
            _wrapped_route("/crash", crash),
            _wrapped_route("/late", late),
        ],
        exception_handlers={Teapot: on_teapot},
    )
    with client_factory(app) as client:
        response = client.get("/teapot")
        assert (response.status_code, response.text) == (418, "teapot")
        assert seen[0] is seen[1]  # the handler gets the endpoint's own Request
        response = client.get("/gone")
        assert (response.status_code, response.text) == (410, "gone")
        with pytest.raises(KeyError):
            client.get("/crash")
        with pytest.raises(RuntimeError, match="Caught handled exception, but response already"):
            client.get("/late")


@pytest.mark.anyio
async def test_wrap_app_handling_exceptions_websocket() -> None:
    class Custom(Exception):
        pass

    handled: list[tuple[WebSocket, type[BaseException]]] = []

    async def on_custom(websocket: WebSocket, exc: Exception) -> None:
        handled.append((websocket, type(exc)))
        await websocket.close(4001)

    def endpoint_for(failure: BaseException) -> Any:
        sessions: list[WebSocket] = []

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            session = WebSocket(scope, receive, send)
            sessions.append(session)

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                await session.accept()
                raise failure

            await wrap_app_handling_exceptions(app, session)(scope, receive, send)

        endpoint = RawASGI(asgi)
        endpoint.sessions = sessions  # type: ignore[attr-defined]
        return endpoint

    custom = endpoint_for(Custom())
    app = Brillo(routes=[WebSocketRoute("/ws", custom)], exception_handlers={Custom: on_custom})
    peer = Peer()
    await peer.run(app)
    assert handled == [(custom.sessions[0], Custom)]
    assert peer.sent[1] == {"type": "websocket.close", "code": 4001, "reason": ""}

    # brillo's close rules apply as in its own WebSocket routes: a bug closes 1011, re-raised.
    peer = Peer()
    with pytest.raises(ZeroDivisionError):
        await peer.run(ws_app(endpoint_for(ZeroDivisionError())))
    assert peer.sent[1] == {"type": "websocket.close", "code": 1011, "reason": ""}
