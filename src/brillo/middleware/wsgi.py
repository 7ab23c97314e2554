"""Serve a WSGI (PEP 3333) application from brillo, running it in a worker thread."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from brillo.types import Message, Receive, Scope, Send

__all__ = ["WSGIMiddleware", "build_environ"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _path_info(path: str, root_path: str) -> str:
    """``path`` below ``root_path``: ``SCRIPT_NAME + PATH_INFO`` gives the full path back.

    A prefix counts only on a segment boundary (``/app`` is not a prefix of ``/application``);
    a ``path`` that does not start with ``root_path`` (servers following the older ASGI wording
    send it relative) is used as is.
    """
    if not root_path:
        return path
    if root_path.endswith("/"):
        return path[len(root_path) :] if path.startswith(root_path) else path
    if path == root_path or path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


def build_environ(scope: Scope, body: Any) -> dict[str, Any]:
    """The WSGI ``environ`` for an ASGI HTTP ``scope``; ``body`` becomes ``wsgi.input``.

    ``body`` is the request body as ``bytes`` (wrapped in a readable stream) or a readable
    binary stream (used as is); ``None`` is an empty body. Text values are "native strings"
    per PEP 3333: the raw bytes decoded as latin-1; ``SERVER_PORT`` is a string too.
    """
    if body is None:
        body = io.BytesIO()
    elif isinstance(body, (bytes, bytearray, memoryview)):
        body = io.BytesIO(body)
    root_path: str = scope.get("root_path", "")
    script_name = root_path.encode("utf-8").decode("latin-1")
    path_info = _path_info(scope["path"], root_path).encode("utf-8").decode("latin-1")
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ","
            environ[key] = environ[key] + separator + value
        else:
            environ[key] = value
    return environ


class _RequestBody(io.RawIOBase):
    """``wsgi.input``: reads the ASGI request body on demand from the worker thread."""

    def __init__(self, receive: Receive) -> None:
        super().__init__()
        self._receive = receive
        self._buffer = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Fetch one more body chunk; False when the body is complete."""
        if self._done:
            return False
        message = anyio.from_thread.run(self._next_message)
        if message["type"] == "http.request":
            self._buffer += message.get("body", b"")
            if not message.get("more_body", False):
                self._done = True
        else:  # http.disconnect
            self._done = True
        return True

    async def _next_message(self) -> Message:
        return await self._receive()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end != -1:
                end += 1
                break
            if not self._fill():
                end = len(self._buffer)
                break
        if size is not None and 0 <= size < end:
            end = size
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data


class _WSGIResponder:
    """Runs one WSGI call in a worker thread, relaying its response to ASGI ``send``."""

    def __init__(self, app: WSGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self.send = send
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False
        # The error an app reported through start_response(..., exc_info) before the headers
        # went out: its error response is sent, then the error is raised for the server to log.
        self.exc_info: ExcInfo | None = None

    async def _send(self, message: Message) -> None:
        await self.send(message)

    def start_response(
        self,
        status: str,
        response_headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            if self.headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
            self.exc_info = exc_info
        elif self.status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        code = status.split(" ", 1)[0]
        if not (len(code) == 3 and code.isdigit()):
            raise ValueError(f"Invalid WSGI status line {status!r}")
        self.status = int(code)
        self.headers = [
            (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
            for name, value in response_headers
        ]
        return self.write

    def _send_headers(self) -> None:
        if self.status is None:
            raise RuntimeError("The WSGI application sent a body before calling start_response()")
        self.headers_sent = True
        message: Message = {
            "type": "http.response.start",
            "status": self.status,
            "headers": self.headers,
        }
        anyio.from_thread.run(self._send, message)

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self.headers_sent:
            self._send_headers()
        message: Message = {"type": "http.response.body", "body": bytes(data), "more_body": True}
        anyio.from_thread.run(self._send, message)

    def run(self) -> None:
        environ = build_environ(self.scope, _RequestBody(self.receive))
        result = self.app(environ, self.start_response)
        try:
            for chunk in result:
                self.write(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not self.headers_sent:
            self._send_headers()
        anyio.from_thread.run(self._send, {"type": "http.response.body", "body": b""})
        exc_info = self.exc_info
        if exc_info is not None:
            self.exc_info = None  # no reference cycle through the traceback
            raise exc_info[1].with_traceback(exc_info[2])


class WSGIMiddleware:
    """Run a WSGI application (Flask, Django, ...) inside an ASGI app.

    Each request runs the WSGI callable in a worker thread. The request body is streamed to
    ``wsgi.input`` as the app reads it; response chunks are sent as the app yields them
    (headers go out with the first non-empty chunk, per PEP 3333). ``start_response`` accepts
    ``exc_info`` to replace the status after an error: the error response is sent, then the
    error is raised so that the server logs it (at once, if the headers were already sent).
    WSGI cannot speak WebSocket: such connections are refused before accept (HTTP 403 on the
    wire). Lifespan events are acknowledged.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request through the WSGI app."""
        scope_type = scope["type"]
        if scope_type == "http":
            responder = _WSGIResponder(self.app, scope, receive, send)
            await anyio.to_thread.run_sync(responder.run)
        elif scope_type == "websocket":
            await send(
                {
                    "type": "websocket.close",
                    "code": 1000,
                    "reason": "WSGI applications cannot handle WebSocket connections",
                }
            )
        elif scope_type == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
