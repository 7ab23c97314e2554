"""Authenticate every HTTP request and WebSocket connection with a pluggable backend."""

from __future__ import annotations

from collections.abc import Callable

from brillo._utils import is_async_callable, truncate_close_reason
from brillo.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    UnauthenticatedUser,
)
from brillo.requests import HTTPConnection
from brillo.responses import PlainTextResponse, Response
from brillo.status import WS_1008_POLICY_VIOLATION
from brillo.types import ASGIApp, Receive, Scope, Send

__all__ = ["AuthenticationMiddleware"]


class AuthenticationMiddleware:
    """Set ``scope["auth"]`` and ``scope["user"]`` from ``backend.authenticate(conn)``.

    When the backend returns ``None`` the connection is anonymous: ``AuthCredentials()`` and
    ``UnauthenticatedUser()``. When it raises :class:`AuthenticationError`:

    * HTTP: the ``on_error(conn, exc)`` response is sent (default: ``400`` plain text with the
      error message); the app is not called. ``on_error`` may be sync or async.
    * WebSocket: the connection is accepted and at once closed with 1008 (policy violation) and
      the message as the close reason (cut to 123 UTF-8 bytes), so clients, browsers included,
      learn why. The app is never called.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: AuthenticationBackend,
        on_error: Callable[[HTTPConnection, AuthenticationError], Response] | None = None,
    ) -> None:
        self.app = app
        self.backend = backend
        self.on_error: Callable[[HTTPConnection, AuthenticationError], Response] = (
            on_error if on_error is not None else self.default_on_error
        )
        self._on_error_is_async = is_async_callable(self.on_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then call the app (or reject the connection)."""
        scope_type = scope["type"]
        if scope_type not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn: HTTPConnection = HTTPConnection(scope)
        try:
            result = await self.backend.authenticate(conn)
        except AuthenticationError as exc:
            if scope_type == "websocket":
                await self._close_websocket(scope, receive, send, str(exc))
                return
            response = self.on_error(conn, exc)
            if self._on_error_is_async:
                response = await response  # type: ignore[misc]
            await response(scope, receive, send)
            return
        if result is None:
            scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
        else:
            scope["auth"], scope["user"] = result
        await self.app(scope, receive, send)

    @staticmethod
    async def _close_websocket(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        """Accept, then close with 1008 and ``reason``: the client sees why it was refused.

        (A close before accept would reach clients only as an HTTP 403 without the reason;
        browsers cannot read that at all.) The first offered subprotocol is echoed so that
        browsers do not fail the handshake before they see the close frame.
        """
        message = await receive()
        if message["type"] != "websocket.connect":
            return  # the client is already gone
        subprotocols = scope.get("subprotocols") or ()
        await send(
            {"type": "websocket.accept", "subprotocol": subprotocols[0] if subprotocols else None}
        )
        await send(
            {
                "type": "websocket.close",
                "code": WS_1008_POLICY_VIOLATION,
                "reason": truncate_close_reason(reason),
            }
        )

    @staticmethod
    def default_on_error(conn: HTTPConnection, exc: Exception) -> Response:
        """The default HTTP error answer: ``400`` with the exception message as plain text."""
        return PlainTextResponse(str(exc), status_code=400)
