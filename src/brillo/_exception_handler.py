"""Private: run an ASGI app and turn the exceptions it raises into responses or WebSocket closes.

Used twice on every request: once around the router (by
:class:`brillo.middleware.exceptions.ExceptionMiddleware`, or by the application's inlined default
stack, which calls these same helpers), and once per endpoint by the ``request_response`` /
``websocket_session`` wrappers, so that exceptions raised inside an endpoint are handled *inside*
the route's own middleware. ExceptionMiddleware stores its handler tables in the scope under
:data:`HANDLERS_KEY` (again before answering an exception, in case an application mounted inside
stored its own); without them only brillo's built-in WebSocket rules apply.

WebSocket rules, after any registered handler has had its chance:

* :class:`~brillo.websockets.WebSocketDisconnect`: the client went away; swallowed.
* :class:`~brillo.websockets.WebSocketClientError`: the client sent something unusable; the
  connection is closed with the error's ``code`` (1003, 1007, ...) and one INFO line is logged.
* anything else: closed with 1011 if the socket was accepted, then re-raised for the server to
  log (before accept the server answers the handshake with HTTP 500).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from brillo._utils import is_async_callable, truncate_close_reason
from brillo.concurrency import run_in_threadpool
from brillo.exceptions import HTTPException
from brillo.requests import Request
from brillo.types import ASGIApp, Message, Receive, Scope, Send
from brillo.websockets import (
    WebSocket,
    WebSocketClientError,
    WebSocketDisconnect,
    WebSocketState,
)

__all__ = [
    "HANDLERS_KEY",
    "ResponseTracker",
    "answer_http_error",
    "lookup_exception_handler",
    "websocket_error",
    "wrap_app_handling_exceptions",
]

#: Scope key under which ExceptionMiddleware publishes ``(class_handlers, status_handlers)``.
HANDLERS_KEY = "brillo.exception_handlers"
#: Attribute set on an exception once a WebSocket close was sent for it (avoid closing twice).
_HANDLED_ATTR = "_brillo_websocket_handled"

logger = logging.getLogger("brillo.websockets")

_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED
_CONNECTING = WebSocketState.CONNECTING

Handler = Callable[..., Any]


class ResponseTracker:
    """An HTTP ``send`` that records whether the response has started.

    The error layers (ServerErrorMiddleware, ExceptionMiddleware, each endpoint) must know whether
    a response already started before rendering one for an exception. Instead of each wrapping
    ``send`` again, a layer whose ``send`` *is* the tracker of a layer above (nothing in between
    wrapped it) reuses that tracker: one wrapper and one extra await per message for the whole
    stack. The tracker is handed down as the ``send`` argument only, never stored in the scope:
    the scope would then hold the server's send and, through it, the server's request object,
    which holds the scope — a reference cycle per request left to the garbage collector, whose
    pauses showed as a 3x worse p99 latency under load.
    """

    __slots__ = ("send", "started")

    def __init__(self, send: Send, started: bool = False) -> None:
        self.send = send
        self.started = started

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)

    @staticmethod
    def of(send: Send, started: bool = False) -> ResponseTracker:
        """The tracker for ``send``: ``send`` itself when it is one, else a new one around it.

        ``started`` says the caller already sent a response start through ``send`` by itself
        (the plain-response path does, without the tracker's extra hop).
        """
        if type(send) is ResponseTracker:
            if started:
                send.started = True
            return send
        return ResponseTracker(send, started)


def lookup_exception_handler(handlers: Mapping[Any, Handler], exc: BaseException) -> Handler | None:
    """The handler registered for the nearest class in ``type(exc).__mro__``, if any."""
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None


def _find_handler(scope: Scope, exc: Exception) -> Handler | None:
    tables = scope.get(HANDLERS_KEY)
    if tables is None:
        return None
    class_handlers, status_handlers = tables
    if isinstance(exc, HTTPException):
        handler: Handler | None = status_handlers.get(exc.status_code)
        if handler is not None:
            return handler
    return lookup_exception_handler(class_handlers, exc)


async def answer_http_error(
    exc: Exception,
    request: Request | None,
    scope: Scope,
    receive: Receive,
    sender: ResponseTracker,
) -> None:
    """Send the response of the handler registered for ``exc``; re-raise when there is none."""
    handler = _find_handler(scope, exc)
    if handler is None:
        raise exc
    if sender.started:
        raise RuntimeError("Caught handled exception, but response already started.") from exc
    if request is None:
        request = Request(scope, receive, sender.send)
    if is_async_callable(handler):
        response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    if response is not None:
        await response(scope, receive, sender)
    _forget_traceback(exc)


def _forget_traceback(exc: BaseException) -> None:
    """Drop a handled exception's traceback.

    It holds every frame it passed through (requests, bodies, locals) alive for as long as the
    exception object lives, and an exception instance raised again (a module-level
    ``HTTPException`` shared by every request, say) would grow it by one chain per raise.
    """
    exc.__traceback__ = None


def wrap_app_handling_exceptions(app: ASGIApp, conn: Request | WebSocket) -> ASGIApp:
    """Wrap ``app`` so that what it raises is handled right there, for the connection ``conn``.

    This is what :func:`brillo.routing.request_response` and
    :func:`brillo.routing.websocket_session` do around each endpoint, for frameworks that build
    their own endpoint wrappers (FastAPI imports it as
    ``starlette._exception_handler.wrap_app_handling_exceptions``):

    * HTTP (``conn`` a :class:`~brillo.requests.Request`): an exception with a handler registered
      in the enclosing :class:`~brillo.middleware.exceptions.ExceptionMiddleware` (by status code
      for :class:`~brillo.exceptions.HTTPException`, else by the nearest class in its MRO) is
      answered with the handler's response, which the handler gets ``conn`` to build. If the
      response had already started, ``RuntimeError("Caught handled exception, but response
      already started.")`` is raised instead. Unhandled exceptions propagate.
    * WebSocket (``conn`` a :class:`~brillo.websockets.WebSocket`): the registered handler runs,
      then brillo's WebSocket close rules apply (see :mod:`brillo.middleware.exceptions`);
      anything left over propagates.

    Handled exceptions lose their ``__traceback__``. Without an enclosing ExceptionMiddleware
    no handler is registered: HTTP exceptions all propagate.
    """
    if conn.scope["type"] == "websocket":
        session = cast(WebSocket, conn)

        async def websocket_app(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await app(scope, receive, send)
            except Exception as exc:
                if not await websocket_error(exc, session, scope, receive, send):
                    raise

        return websocket_app

    request = cast(Request, conn)

    async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
        sender = ResponseTracker.of(send)
        try:
            await app(scope, receive, sender)
        except Exception as exc:
            await answer_http_error(exc, request, scope, receive, sender)

    return http_app


async def _close(session: WebSocket | None, send: Send, code: int, reason: str = "") -> None:
    """Send a close frame if the socket can still take one; never raise for a gone client.

    ``reason`` is cut to fit a close frame (:func:`brillo._utils.truncate_close_reason`).
    """
    if session is not None:
        if session.application_state is _DISCONNECTED or session.client_state is _DISCONNECTED:
            return
        if session.application_state is WebSocketState.RESPONSE:
            return
    try:
        if session is not None:
            await session.close(code, reason)
        else:
            reason = truncate_close_reason(reason)
            await send({"type": "websocket.close", "code": code, "reason": reason})
    except (RuntimeError, OSError):
        # The server refused the message: the connection is already closed or gone.
        pass


async def _websocket_response(
    session: WebSocket | None,
    scope: Scope,
    receive: Receive,
    send: Send,
    response: Any,
    exc: Exception,
) -> None:
    """A handler returned an HTTP response for a WebSocket scope (e.g. an HTTPException).

    Before accept it becomes a denial response when the server supports the
    ``websocket.http.response`` extension, else a 1008 close (HTTP 403 for the client). After
    accept the socket is closed: 1011 for a 5xx status, 1008 otherwise.
    """
    status = getattr(response, "status_code", 500)
    accepted = session is not None and session.application_state is _CONNECTED
    if not accepted and (session is None or session.application_state is _CONNECTING):
        if "websocket.http.response" in (scope.get("extensions") or {}):
            if session is not None:
                session.application_state = WebSocketState.RESPONSE
            try:
                await response(scope, receive, send)
            except (RuntimeError, OSError):
                # The server refused it: the socket was accepted or closed behind our back.
                pass
            finally:
                if session is not None:
                    session.application_state = _DISCONNECTED
            return
        reason = getattr(exc, "detail", "") if isinstance(exc, HTTPException) else ""
        await _close(session, send, 1008, str(reason))
        return
    await _close(session, send, 1011 if status >= 500 else 1008)


async def websocket_error(
    exc: Exception, session: WebSocket | None, scope: Scope, receive: Receive, send: Send
) -> bool:
    """Deal with ``exc`` escaping a WebSocket app; False means: re-raise it.

    ``session`` is the endpoint's :class:`WebSocket` when there is one; its states tell whether a
    close frame can still be sent. Without it (a raw ASGI app) an unexpected error is simply
    re-raised: the server then closes with 1011 (after accept) or answers HTTP 500.
    """
    if getattr(exc, _HANDLED_ATTR, False):
        return False
    handler = _find_handler(scope, exc)
    if handler is not None:
        conn = WebSocket(scope, receive, send) if session is None else session
        if is_async_callable(handler):
            result = await handler(conn, exc)
        else:
            result = await run_in_threadpool(handler, conn, exc)
        if result is not None:
            await _websocket_response(session, scope, receive, send, result, exc)
        _forget_traceback(exc)
        return True
    if isinstance(exc, WebSocketDisconnect):
        _forget_traceback(exc)
        return True
    if isinstance(exc, WebSocketClientError):
        code = exc.code
        logger.info("WebSocket %s closed with code %d: %s", scope.get("path", ""), code, exc)
        await _close(session, send, code, str(exc))
        _forget_traceback(exc)
        return True
    if session is not None:
        if session.application_state is _CONNECTED:
            await _close(session, send, 1011)
        # Before accept, send nothing: the server answers the handshake with HTTP 500.
        try:
            setattr(exc, _HANDLED_ATTR, True)
        except (AttributeError, TypeError):  # pragma: no cover - exceptions without __dict__
            pass
    return False
