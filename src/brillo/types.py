"""Type aliases for the ASGI interface, shared by every brillo module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from brillo.requests import Request
    from brillo.responses import Response
    from brillo.websockets import WebSocket

__all__ = [
    "ASGIApp",
    "AppType",
    "ExceptionHandler",
    "HTTPExceptionHandler",
    "Lifespan",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "StatefulLifespan",
    "StatelessLifespan",
    "WebSocketExceptionHandler",
]

AppType = TypeVar("AppType")

#: The connection scope: a mutable mapping as the server hands it to the app.
Scope = MutableMapping[str, Any]
#: One ASGI event, in either direction.
Message = MutableMapping[str, Any]

#: Awaitable that returns the next event from the server.
Receive = Callable[[], Awaitable[Message]]
#: Awaitable that hands one event to the server.
Send = Callable[[Message], Awaitable[None]]

#: Any ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: A lifespan context manager factory that yields nothing.
StatelessLifespan = Callable[[AppType], AbstractAsyncContextManager[None]]
#: A lifespan context manager factory that yields a state mapping copied into every scope.
StatefulLifespan = Callable[[AppType], AbstractAsyncContextManager[Mapping[str, Any]]]
Lifespan = StatelessLifespan[AppType] | StatefulLifespan[AppType]

HTTPExceptionHandler = Callable[["Request", Exception], "Response | Awaitable[Response]"]
WebSocketExceptionHandler = Callable[["WebSocket", Exception], Awaitable[None]]
ExceptionHandler = HTTPExceptionHandler | WebSocketExceptionHandler
