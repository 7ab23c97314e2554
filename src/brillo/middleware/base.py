"""``BaseHTTPMiddleware``: write HTTP middleware as ``dispatch(request, call_next)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from brillo.requests import Request
from brillo.responses import Response, StreamingResponse
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BaseHTTPMiddleware", "DispatchFunction", "RequestResponseEndpoint"]

RequestResponseEndpoint = Callable[[Request], Awaitable[Response]]
DispatchFunction = Callable[[Request, RequestResponseEndpoint], Awaitable[Response]]

_DISCONNECT: Message = {"type": "http.disconnect"}


class _StreamedResponse(StreamingResponse):
    """What ``call_next`` returns: the downstream response, its body still streaming."""

    def __init__(
        self,
        status_code: int,
        raw_headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes],
        info: dict[str, Any],
    ) -> None:
        self.status_code = status_code
        self.body_iterator = body
        self.background = None
        self.raw_headers = raw_headers
        self.info = info


class _Call:
    """State shared by one request's dispatch, call_next and the downstream app task."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self.recorded: list[bytes] = []
        self.record_done = False  # the whole body (or a disconnect) was read by dispatch
        self.record_disconnect = False
        self.replayed = False
        self.body_done = False  # the wrapped app has received the last body chunk
        self.response_sent = anyio.Event()
        # Set when the downstream app stops reading the client (it finished or saw a disconnect):
        # only then may the outgoing response listen on ``receive`` without stealing messages.
        self.handoff = anyio.Event()
        self.disconnected = False
        self.task_group: TaskGroup | None = None
        self.app_error: Exception | None = None
        self.app_error_raised = False
        self.streams: list[MemoryObjectReceiveStream[Message]] = []

    async def record_receive(self) -> Message:
        """``receive`` for the Request seen by dispatch: remembers the body it reads."""
        message = await self.receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                self.recorded.append(body)
            if not message.get("more_body", False):
                self.record_done = True
        elif message["type"] == "http.disconnect":
            self.record_done = self.record_disconnect = True
        return message

    async def downstream_receive(self) -> Message:
        """``receive`` for the wrapped app: replays what dispatch read, then the client's."""
        if not self.replayed:
            self.replayed = True
            self.body_done = self.record_done
            if self.recorded or self.record_done:
                if self.record_disconnect and not self.recorded:
                    return self._saw_disconnect()
                return {
                    "type": "http.request",
                    "body": b"".join(self.recorded),
                    "more_body": not self.record_done or self.record_disconnect,
                }
        if self.record_disconnect or self.response_sent.is_set():
            return self._saw_disconnect()
        if not self.body_done:
            # Still reading the request body: read directly (no task per chunk). Servers answer
            # a pending receive with http.disconnect once the response is complete.
            message = await self.receive()
            if message["type"] == "http.request":
                if not message.get("more_body", False):
                    self.body_done = True
                return message
            if message["type"] == "http.disconnect":
                return self._saw_disconnect()
            return message
        # Body complete: the app is now only listening for a disconnect. Stop waiting once the
        # response has been sent.
        latest: Message | None = None
        async with anyio.create_task_group() as tg:

            async def stop_when_sent() -> None:
                await self.response_sent.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(stop_when_sent)
            latest = await self.receive()
            tg.cancel_scope.cancel()
        if latest is None or latest["type"] == "http.disconnect":
            return self._saw_disconnect()
        return latest

    def _saw_disconnect(self) -> Message:
        self.disconnected = True
        self.handoff.set()
        return _DISCONNECT

    async def outer_receive(self) -> Message:
        """``receive`` for the response dispatch returns (it only listens for a disconnect)."""
        await self.handoff.wait()
        if self.disconnected:
            return _DISCONNECT
        return await self.receive()

    async def call_next(self, request: Request) -> Response:
        """Run the wrapped app in a task and return its response once it has started."""
        assert self.task_group is not None
        send_stream: MemoryObjectSendStream[Message]
        recv_stream: MemoryObjectReceiveStream[Message]
        send_stream, recv_stream = anyio.create_memory_object_stream[Message]()
        self.streams.append(recv_stream)
        scope = request.scope

        async def send_downstream(message: Message) -> None:
            try:
                await send_stream.send(message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the response is gone (sent, replaced or client left): drop the rest

        async def run_app() -> None:
            try:
                async with send_stream:
                    await self.app(scope, self.downstream_receive, send_downstream)
            except Exception as exc:
                self.app_error = exc
            finally:
                self.handoff.set()

        self.task_group.start_soon(run_app)

        start: Message | None = None
        async for message in recv_stream:
            if message["type"] == "http.response.start":
                start = message
                break
        if start is None:
            if self.app_error is not None:
                self.app_error_raised = True
                raise self.app_error
            raise RuntimeError("No response returned.")

        async def body() -> AsyncIterator[bytes]:
            async with recv_stream:
                async for message in recv_stream:
                    if message["type"] != "http.response.body":
                        continue
                    chunk = message.get("body", b"")
                    if chunk:
                        yield chunk
                    if not message.get("more_body", False):
                        break

        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", ())]
        return _StreamedResponse(start["status"], headers, body(), {"start": start})

    def finish(self) -> None:
        self.response_sent.set()
        self.handoff.set()
        for stream in self.streams:
            stream.close()


class BaseHTTPMiddleware:
    """Base class for HTTP middleware written against ``Request``/``Response``.

    Override :meth:`dispatch` (or pass ``dispatch=``)::

        class AddHeader(BaseHTTPMiddleware):
            async def dispatch(self, request, call_next):
                response = await call_next(request)
                response.headers["X-Example"] = "yes"
                return response

    ``call_next(request)`` runs the wrapped app in a task and returns as soon as the response
    has *started*: its body streams through without buffering. The body may be read in
    ``dispatch`` (``await request.body()``, ``request.stream()``, ``request.form()``) and the
    app still receives it. An exception the app raises before responding is raised from
    ``call_next``; one raised while the body streams is re-raised after the response. The
    app's background tasks run as usual. WebSocket and lifespan scopes are passed straight to
    the app: write pure ASGI middleware to act on them.
    """

    def __init__(self, app: ASGIApp, dispatch: DispatchFunction | None = None) -> None:
        self.app = app
        self.dispatch_func: DispatchFunction = self.dispatch if dispatch is None else dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``dispatch`` for HTTP requests; pass other scopes to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        call = _Call(self.app, scope, receive)
        request = Request(scope, call.record_receive)
        error: Exception | None = None
        async with anyio.create_task_group() as task_group:
            call.task_group = task_group
            try:
                response = await self.dispatch_func(request, call.call_next)
                await response(scope, call.outer_receive, send)
            except Exception as exc:
                error = exc
                task_group.cancel_scope.cancel()
            finally:
                call.finish()
        if error is not None:
            raise error
        if call.app_error is not None and not call.app_error_raised:
            raise call.app_error

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Handle one request; override this. Call ``await call_next(request)`` to run the app."""
        raise NotImplementedError()  # pragma: no cover
