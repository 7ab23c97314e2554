"""Class-based endpoints: HTTP method dispatch and WebSocket message callbacks."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any, Literal

from brillo._exception_handler import websocket_error
from brillo._utils import is_async_callable
from brillo.concurrency import run_in_threadpool
from brillo.exceptions import HTTPException
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response
from brillo.types import Message, Receive, Scope, Send
from brillo.websockets import (
    UnsupportedDataError,
    WebSocket,
    WebSocketClientError,
    WebSocketDisconnect,
)

__all__ = ["HTTPEndpoint", "WebSocketEndpoint"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY")


class HTTPEndpoint:
    """Dispatch a request to the method named after its HTTP method (``get``, ``post``, ...).

    ``HEAD`` falls back to ``get``. A method without a handler answers ``405`` with an ``Allow``
    header (raised as an HTTPException inside an application). Handlers take the request and
    return a response; synchronous ones run in the thread pool. Use the class itself as the
    route endpoint: ``Route("/items", ItemsEndpoint)``.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.scope = scope
        self.receive = receive
        self.send = send
        allowed = [m for m in _METHODS if getattr(self, m.lower(), None) is not None]
        if "GET" in allowed and "HEAD" not in allowed:
            allowed.insert(allowed.index("GET") + 1, "HEAD")  # HEAD is served by get()
        self._allowed_methods = allowed

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def dispatch(self) -> None:
        """Call the handler for the request's method and send its response."""
        request = Request(self.scope, receive=self.receive, send=self.send)
        method = request.method
        name = "get" if method == "HEAD" and not hasattr(self, "head") else method.lower()
        handler: Any = getattr(self, name, None) if method in _METHODS else None
        if handler is None:
            handler = self.method_not_allowed
        if is_async_callable(handler):
            response = await handler(request)
        else:
            response = await run_in_threadpool(handler, request)
        await response(self.scope, self.receive, self.send)

    async def method_not_allowed(self, request: Request) -> Response:
        """Answer 405 listing the methods this endpoint implements."""
        headers = {"Allow": ", ".join(self._allowed_methods)}
        if "app" in self.scope:
            raise HTTPException(status_code=405, headers=headers)
        return PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)


class _EncodingError(UnsupportedDataError, RuntimeError):
    """A message does not fit :attr:`WebSocketEndpoint.encoding` (wrong frame kind, bad JSON).

    The socket has been closed with 1003 (unsupported data). Catch it as
    :class:`~brillo.websockets.UnsupportedDataError` (brillo) or ``RuntimeError`` (what Starlette
    raises here).
    """


class WebSocketEndpoint:
    """A WebSocket endpoint with callbacks: ``on_connect``, ``on_receive``, ``on_disconnect``.

    ``encoding`` decodes each message before ``on_receive``: ``"text"`` (str), ``"bytes"``,
    ``"json"`` (text or UTF-8 bytes holding JSON), or ``None`` (the message's data as sent:
    ``str`` for a text frame, ``bytes`` for a binary one). A message of the wrong kind, or JSON
    that does not decode, closes the socket with 1003 (unsupported data) and raises
    :class:`~brillo.websockets.UnsupportedDataError`, which here is also a ``RuntimeError`` (what
    Starlette raises). Unless an exception handler takes it, that error is handled as a
    client's fault: logged at INFO, not raised to the server. ``on_disconnect`` always runs,
    with the close code (1011 when the endpoint failed).

    The class is an ASGI app: ``await Endpoint(scope, receive, send)`` runs it.
    """

    encoding: Literal["text", "bytes", "json"] | None = None

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        self.scope = scope
        self.receive = receive
        self.send = send

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def dispatch(self) -> None:
        """Accept (via ``on_connect``), feed messages to ``on_receive`` until disconnect."""
        websocket = WebSocket(self.scope, receive=self.receive, send=self.send)
        close_code = 1000
        try:
            await self.on_connect(websocket)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.receive":
                    data = await self.decode(websocket, message)
                    await self.on_receive(websocket, data)
                elif message["type"] == "websocket.disconnect":
                    close_code = int(message.get("code") or 1000)
                    break
        except Exception as exc:
            if isinstance(exc, WebSocketClientError | WebSocketDisconnect):
                close_code = exc.code
            else:
                close_code = 1011
            try:
                handled = await websocket_error(exc, websocket, self.scope, self.receive, self.send)
            finally:
                await self.on_disconnect(websocket, close_code)
            if not handled:
                raise
            return
        await self.on_disconnect(websocket, close_code)

    async def decode(self, websocket: WebSocket, message: Message) -> Any:
        """Decode one ``websocket.receive`` message according to :attr:`encoding`."""
        encoding = self.encoding
        if encoding is None:
            text = message.get("text")
            return text if text is not None else message.get("bytes")
        if encoding == "text":
            text = message.get("text")
            if text is None:
                await websocket.close(code=1003)
                raise _EncodingError("Expected text websocket messages, but got bytes")
            return text
        if encoding == "bytes":
            data = message.get("bytes")
            if data is None:
                await websocket.close(code=1003)
                raise _EncodingError("Expected bytes websocket messages, but got text")
            return data
        if encoding == "json":
            text = message.get("text")
            try:
                if text is None:
                    text = message["bytes"].decode("utf-8")
                return json.loads(text)
            except (json.JSONDecodeError, UnicodeDecodeError):
                await websocket.close(code=1003)
                raise _EncodingError("Malformed JSON data received.") from None
        raise AssertionError(f"Unsupported 'encoding' attribute {encoding!r}")

    async def on_connect(self, websocket: WebSocket) -> None:
        """Called first; accepts the connection by default. Override to check or reject."""
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Called with each decoded message. Override to handle messages."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """Called once the connection is over, with its close code. Override to clean up."""
