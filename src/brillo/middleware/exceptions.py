"""ExceptionMiddleware: turn exceptions raised by the app into responses or WebSocket closes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from brillo._exception_handler import (
    HANDLERS_KEY,
    ResponseTracker,
    answer_http_error,
    websocket_error,
)
from brillo.exceptions import HTTPException, WebSocketException
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response
from brillo.types import ASGIApp, Receive, Scope, Send
from brillo.websockets import WebSocket

__all__ = ["ExceptionMiddleware"]


class ExceptionMiddleware:
    """Dispatch exceptions to handlers registered by status code or exception class.

    ``handlers`` maps an ``int`` status code (for :class:`~brillo.exceptions.HTTPException`) or
    an exception class (the nearest class in the exception's MRO wins) to a handler called as
    ``handler(request_or_websocket, exc)``. HTTP handlers return a response (sync handlers run in
    the thread pool); WebSocket handlers usually close the socket.

    Built in:

    * HTTPException -> plain-text response with its ``detail`` and ``headers`` (no body for
      204/304). In a WebSocket scope, before accept, the response becomes a denial response when
      the server supports the ``websocket.http.response`` extension, else a 1008 close (HTTP 403
      for the client); after accept it closes with 1011 (5xx) or 1008 (other statuses).
    * WebSocketException -> close with its code and reason.
    * WebSocket endpoints: WebSocketDisconnect is swallowed; a ``WebSocketClientError`` closes
      with its ``code`` (1003 unsupported data, 1007 bad payload) and logs one INFO line; any
      other error closes with 1011 (when accepted) and is re-raised for the server to log.

    Unhandled exceptions propagate (to ServerErrorMiddleware for HTTP).
    """

    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[Any, Callable[..., Any]] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.debug = debug
        self._status_handlers: dict[int, Callable[..., Any]] = {}
        self._exception_handlers: dict[type[BaseException], Callable[..., Any]] = {
            HTTPException: self.http_exception,
            WebSocketException: self.websocket_exception,
        }
        if handlers is not None:
            for key, value in handlers.items():
                self.add_exception_handler(key, value)
        self._tables = (self._exception_handlers, self._status_handlers)

    def add_exception_handler(
        self,
        exc_class_or_status_code: int | type[BaseException],
        handler: Callable[..., Any],
    ) -> None:
        """Register ``handler`` for a status code or an exception class."""
        if isinstance(exc_class_or_status_code, int):
            self._status_handlers[exc_class_or_status_code] = handler
        else:
            assert issubclass(exc_class_or_status_code, BaseException)
            self._exception_handlers[exc_class_or_status_code] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with the handler tables published in the scope."""
        scope_type = scope["type"]
        app = self.app
        if scope_type == "http":
            scope[HANDLERS_KEY] = self._tables
            sender = ResponseTracker.of(send)
            try:
                await app(scope, receive, sender)
            except Exception as exc:
                # This layer's handlers, even if an application mounted inside published its own.
                scope[HANDLERS_KEY] = self._tables
                await answer_http_error(exc, None, scope, receive, sender)
        elif scope_type == "websocket":
            scope[HANDLERS_KEY] = self._tables
            try:
                await app(scope, receive, send)
            except Exception as exc:
                scope[HANDLERS_KEY] = self._tables
                if not await websocket_error(exc, None, scope, receive, send):
                    raise
        else:
            await app(scope, receive, send)

    async def http_exception(self, request: Request, exc: Exception) -> Response:
        """Default HTTPException handler: plain text ``detail`` with the exception's headers."""
        assert isinstance(exc, HTTPException)
        if exc.status_code in {204, 304}:
            return Response(status_code=exc.status_code, headers=exc.headers)
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)

    async def websocket_exception(self, websocket: WebSocket, exc: Exception) -> None:
        """Default WebSocketException handler: close with the exception's code and reason."""
        assert isinstance(exc, WebSocketException)
        try:
            await websocket.close(code=exc.code, reason=exc.reason)
        except (RuntimeError, OSError):
            # Already closed, or the client is gone: nothing left to tell it.
            pass
