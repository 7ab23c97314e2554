"""``BaseHTTPMiddleware``: write HTTP middleware as ``dispatch(request, call_next)``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from brillo.requests import Request
from brillo.responses import (
    Response,
    StreamingResponse,
    _disconnect_aware_send,
    _supports_send_oserror,
)
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BaseHTTPMiddleware", "DispatchFunction", "RequestResponseEndpoint"]

RequestResponseEndpoint = Callable[[Request], Awaitable[Response]]
DispatchFunction = Callable[[Request, RequestResponseEndpoint], Awaitable[Response]]

_START = "http.response.start"
_BODY = "http.response.body"
_PATHSEND = "http.response.pathsend"
_TRAILERS = "http.response.trailers"
_DEBUG = "http.response.debug"
_REQUEST = "http.request"
_DISCONNECT = "http.disconnect"
_FILE_CHUNK = 64 * 1024


def _cause_of(error: BaseException) -> BaseException | None:
    """What to chain ``error`` to when re-raising it in another task: its own cause or context.

    Re-raised with ``raise error from _cause_of(error)``, the original chain stays in the
    traceback and brillo's internal plumbing (the exception being handled) is hidden.
    """
    return error.__cause__ or error.__context__


async def _read_file(path: str) -> AsyncGenerator[bytes, None]:
    """The content of ``path`` in chunks (a ``http.response.pathsend`` turned back into bytes)."""
    async with await anyio.open_file(path, "rb") as file:
        while chunk := await file.read(_FILE_CHUNK):
            yield chunk


class _Exchange:
    """One request's state, shared by dispatch, ``call_next``, the wrapped app and the response.

    The request body is read once, from the server's ``receive``, by whoever asks first:
    dispatch (through its :class:`Request`) or the app (through :meth:`app_receive`). A body that
    dispatch read with ``body()``/``json()`` is cached and handed to the app in one message; one
    dispatch consumed with ``stream()`` is gone (the app sees an empty body); chunks neither read
    yet go to whichever reads next. Only one party waits in the server's ``receive`` at a time;
    the others wait for what it gets. A disconnect seen by one side is known to all, so nobody
    waits on ``receive`` for a message that already came.
    """

    __slots__ = (
        "_changed",
        "app",
        "app_body_done",
        "app_disconnected",
        "app_error",
        "app_error_raised",
        "disconnected",
        "forward_tail",
        "reading",
        "receive",
        "released",
        "request",
        "send",
        "stash",
        "stream",
        "tail",
        "task_group",
        "trailers",
    )

    def __init__(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        self.app = app
        self.receive = receive
        self.send = send
        self.request: Request | None = None  # the Request dispatch sees
        self.task_group: TaskGroup | None = None
        self.disconnected = False  # the client's http.disconnect has been received
        self.reading = False  # someone is waiting in the server's receive
        # A body message read by a disconnect listener, kept for the next body reader. At most
        # one: after a chunk with more to come the listener waits until it is taken (an unread
        # upload is never buffered); after the last chunk only a disconnect can come.
        self.stash: list[Message] = []
        self._changed: anyio.Event | None = None  # set when reading/stash/disconnected change
        self.app_body_done = False  # the app has had the last chunk of the body
        self.app_disconnected = False  # the app has been told the client left
        # Set by call_next: the app's response stream and ``released``: the app's response is
        # out of our hands (sent, discarded, or the middleware is done).
        self.stream: MemoryObjectReceiveStream[Message] | None = None
        self.released: anyio.Event | None = None
        self.app_error: Exception | None = None
        self.app_error_raised = False
        self.trailers = False  # the app's start announced http.response.trailers
        self.forward_tail = False  # the response pipes pathsend on instead of reading the file
        self.tail: list[Message] = []  # pathsend / trailers messages that end the response

    # -- the server's receive, one reader at a time --------------------------------------------

    def _notify(self) -> None:
        event = self._changed
        if event is not None:
            self._changed = None
            event.set()

    async def _wait_change(self) -> None:
        event = self._changed
        if event is None:
            event = self._changed = anyio.Event()
        await event.wait()

    async def _receive_next(self) -> Message:
        """The server's next message (the caller made sure nobody else is reading)."""
        self.reading = True
        try:
            message = await self.receive()
        finally:
            self.reading = False
            self._notify()
        if message["type"] == _DISCONNECT:
            self._client_left()
        return message

    async def next_body_message(self) -> Message:
        """The next ``http.request`` message for a body reader (or the disconnect)."""
        while True:
            if self.stash:
                message = self.stash.pop()
                self._notify()
                return message
            if self.disconnected:
                return {"type": _DISCONNECT}
            if not self.reading:
                return await self._receive_next()
            await self._wait_change()

    def _busy(self) -> bool:
        """Someone is reading, or a body chunk with more to come waits for its reader."""
        return self.reading or (bool(self.stash) and self.stash[0].get("more_body", False))

    async def listen(self) -> Message:
        """Wait for the client to leave; a body chunk read meanwhile is kept for its reader."""
        while not self.disconnected:
            if self._busy():
                await self._wait_change()
                continue
            message = await self._receive_next()
            if message["type"] == _REQUEST:
                self.stash.append(message)
            elif message["type"] != _DISCONNECT:
                return message
        return {"type": _DISCONNECT}

    async def poll_disconnect(self) -> bool:
        """True if the client has left; never waits, and never loses a body chunk."""
        if not self.disconnected and not self._busy():
            with anyio.CancelScope() as scope:
                scope.cancel()
                message = await self._receive_next()
                if message["type"] == _REQUEST:
                    self.stash.append(message)
        return self.disconnected

    def _client_left(self) -> None:
        self.disconnected = True
        if self.request is not None:
            self.request._is_disconnected = True
        self._notify()

    # -- receive, as seen by each party --------------------------------------------------------

    async def app_receive(self) -> Message:
        """``receive`` of the wrapped app: the body (or what dispatch left), then disconnect."""
        if self.app_disconnected or (self.released is not None and self.released.is_set()):
            return self._tell_app_disconnect()
        request = self.request
        assert request is not None
        if not self.app_body_done:
            body: bytes | None = getattr(request, "_body", None)
            if body is not None:  # dispatch read and cached it: replay it whole
                self.app_body_done = True
                return {"type": _REQUEST, "body": body, "more_body": False}
            if request._stream_consumed:  # dispatch streamed it without keeping it
                self.app_body_done = True
                return {"type": _REQUEST, "body": b"", "more_body": False}
            message = await self.next_body_message()
            kind = message["type"]
            if kind == _REQUEST:
                if not message.get("more_body", False):
                    self.app_body_done = True
                    request._stream_consumed = True  # dispatch cannot stream it any more
            elif kind == _DISCONNECT:
                self.app_disconnected = True
            return message
        if self.disconnected:
            return self._tell_app_disconnect()
        return await self._wait_for_disconnect()

    async def _wait_for_disconnect(self) -> Message:
        """The app has the whole body and listens for a disconnect: the client's, or ours once
        its response is out of our hands (a server answers a disconnect after the response too).
        """
        released = self.released
        assert released is not None
        message: Message | None = None
        async with anyio.create_task_group() as task_group:

            async def stop_when_released() -> None:
                await released.wait()
                task_group.cancel_scope.cancel()

            task_group.start_soon(stop_when_released)
            message = await self.listen()
            task_group.cancel_scope.cancel()
        if message is None or message["type"] == _DISCONNECT:
            return self._tell_app_disconnect()
        return message

    def _tell_app_disconnect(self) -> Message:
        self.app_disconnected = True
        return {"type": _DISCONNECT}

    # -- running the app -------------------------------------------------------------------------

    async def call_next(self, request: Request) -> Response:
        """Run the wrapped app in a task; return its response once it has started."""
        assert self.task_group is not None
        send_stream: MemoryObjectSendStream[Message]
        send_stream, self.stream = anyio.create_memory_object_stream[Message]()
        released = self.released = anyio.Event()
        scope = request.scope

        async def send_to_response(message: Message) -> None:
            try:
                await send_stream.send(message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the response was discarded or is over: drop the rest
            kind = message["type"]
            if (
                (kind == _BODY and not self.trailers and not message.get("more_body", False))
                or kind == _PATHSEND
                or (kind == _TRAILERS and not message.get("more_trailers", False))
            ):
                # The last message: the app carries on (background tasks) once it is sent.
                await released.wait()

        async def run_app() -> None:
            try:
                await self.app(scope, self.app_receive, send_to_response)
            except Exception as exc:
                self.app_error = exc
            finally:
                send_stream.close()

        self.task_group.start_soon(run_app)

        info: Any = None
        while True:
            try:
                message = await self.stream.receive()
            except anyio.EndOfStream:
                error = self.app_error
                if error is not None:
                    self.app_error_raised = True
                    raise error from _cause_of(error)
                raise RuntimeError("No response returned.") from None
            kind = message["type"]
            if kind == _START:
                break
            if kind == _DEBUG:
                info = message.get("info")  # replayed before the start the response sends
            else:
                await self.send(message)  # early hints, push promises: straight to the server
        self.trailers = bool(message.get("trailers", False))
        return _StreamedResponse(self, message, info)

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The app's response body, chunk by chunk, as it sends it."""
        stream = self.stream
        assert stream is not None
        complete = False
        try:
            while True:
                try:
                    message = await stream.receive()
                except anyio.EndOfStream:
                    complete = True
                    error = self.app_error
                    if error is not None and not self.app_error_raised:
                        self.app_error_raised = True
                        raise error from _cause_of(error)
                    return
                kind = message["type"]
                if kind == _BODY:
                    chunk = message.get("body", b"")
                    if chunk:
                        yield chunk
                    if not self.trailers and not message.get("more_body", False):
                        complete = True
                        return
                elif kind == _PATHSEND:
                    complete = True
                    if self.forward_tail:
                        self.tail.append(message)
                        return
                    # Someone reads the body itself: give it the file's bytes, not nothing.
                    async for chunk in _read_file(message["path"]):
                        yield chunk
                    return
                elif kind == _TRAILERS:
                    self.tail.append(message)
                    if not message.get("more_trailers", False):
                        complete = True
                        return
                # Anything else after the start (an early hint, a debug message) is dropped.
        finally:
            if not complete:
                self.discard()  # closed early: the app's further sends are dropped

    def release(self) -> None:
        """The app's response is out of our hands: let the app go on (and hear a disconnect)."""
        if self.released is not None:
            self.released.set()
            self._notify()

    def discard(self) -> None:
        """Nobody will read the app's response any more."""
        if self.stream is not None:
            self.stream.close()
        self.release()


class _DispatchRequest(Request):
    """The Request dispatch sees; its body and disconnect state are shared with the app."""

    _exchange: _Exchange

    async def is_disconnected(self) -> bool:
        if not self._is_disconnected and await self._exchange.poll_disconnect():
            self._is_disconnected = True
        return self._is_disconnected


class _StreamedResponse(StreamingResponse):
    """What ``call_next`` returns: the app's response, its body still streaming from the app.

    ``status_code``, ``headers`` and ``background`` may be changed, and ``body_iterator``
    replaced or wrapped, before it is returned from dispatch. Sent as is, the app's messages
    pass through (a ``pathsend`` included); its ``background`` runs once the body is sent.
    """

    def __init__(self, exchange: _Exchange, start: Message, info: Any) -> None:
        self.status_code = start["status"]
        self.raw_headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", ())]
        self.background = None
        self.info = info
        self._exchange = exchange
        self.body_iterator = self._own_body = exchange.body()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self._exchange
        body = self.body_iterator
        exchange.forward_tail = body is self._own_body
        if _supports_send_oserror(scope):
            send = _disconnect_aware_send(send)
        if self.info is not None:
            await send({"type": _DEBUG, "info": self.info})
        start: Message = {"type": _START, "status": self.status_code, "headers": self.raw_headers}
        if exchange.trailers:
            start["trailers"] = True
        await send(start)
        try:
            async for chunk in body:
                if isinstance(chunk, str):
                    chunk = chunk.encode(self.charset)
                await send({"type": _BODY, "body": chunk, "more_body": True})
        except BaseException:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()
            raise
        tail = exchange.tail
        if not tail or tail[0]["type"] != _PATHSEND:
            await send({"type": _BODY, "body": b"", "more_body": False})
        for message in tail:
            await send(message)
        exchange.release()
        if self.background is not None:
            await self.background()


class BaseHTTPMiddleware:
    """Base class for HTTP middleware written against ``Request``/``Response``.

    Override :meth:`dispatch` (or pass ``dispatch=``)::

        class AddHeader(BaseHTTPMiddleware):
            async def dispatch(self, request, call_next):
                response = await call_next(request)
                response.headers["X-Example"] = "yes"
                return response

    ``call_next(request)`` runs the wrapped app in a task and returns as soon as the response
    has *started*: its body streams through without buffering, and so do early hints and an
    ``http.response.pathsend``. The request body is read once, by whichever side asks first:

    * ``await request.body()`` (or ``json()``) in dispatch caches it; the app receives it too,
      and dispatch can read it again after ``call_next``.
    * ``request.stream()`` (or ``form()``) in dispatch consumes it: the app receives an empty
      body. Chunks dispatch has not read yet go to the app.
    * Once the app has read the whole body, ``request.stream()`` in dispatch raises
      ``RuntimeError("Stream consumed")`` (never waits for a body that will not come).

    A client disconnect seen by the app is seen by ``request.is_disconnected()`` in dispatch,
    and the other way round. An exception the app raises before responding is raised from
    ``call_next``; one raised while the body streams is re-raised after the response. The
    app's background tasks run once its response has been sent. WebSocket and lifespan scopes
    are passed straight to the app: write pure ASGI middleware to act on them.
    """

    def __init__(self, app: ASGIApp, dispatch: DispatchFunction | None = None) -> None:
        self.app = app
        self.dispatch_func: DispatchFunction = self.dispatch if dispatch is None else dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``dispatch`` for HTTP requests; pass other scopes to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self.app, receive, send)
        request = exchange.request = _DispatchRequest(scope, exchange.next_body_message, send)
        request._exchange = exchange
        error: Exception | None = None
        async with anyio.create_task_group() as task_group:
            exchange.task_group = task_group
            try:
                response = await self.dispatch_func(request, exchange.call_next)
                await response(scope, exchange.listen, send)
            except Exception as exc:
                error = exc
                task_group.cancel_scope.cancel()
            finally:
                exchange.discard()
        if error is not None:
            raise error
        if exchange.app_error is not None and not exchange.app_error_raised:
            raise exchange.app_error

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Handle one request; override this. Call ``await call_next(request)`` to run the app."""
        raise NotImplementedError()  # pragma: no cover
