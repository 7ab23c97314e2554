"""An in-process test client for brillo (and any ASGI) apps, HTTP and WebSocket.

:class:`TestClient` is an httpx ``Client`` whose transport calls the ASGI app directly, in an
event loop that runs in a helper thread (an anyio blocking portal, on asyncio or trio)::

    client = TestClient(app)
    assert client.get("/").status_code == 200

    with client.stream("GET", "/events") as response:   # streamed as the app sends it
        first = next(response.iter_lines())

    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}

Responses stream: a request returns as soon as the app sends ``http.response.start``, and each
body chunk reaches the test when it reads it (the app's ``send`` waits until then, as it would
on a socket). Closing a response whose body or trailers are unfinished cancels the app.

Use ``with TestClient(app) as client:`` to run the app's lifespan (startup on enter, shutdown on
exit). Every wait on the app is bounded by :attr:`TestClient.websocket_timeout` (reading a body
is the test's own pace): a WebSocket receive, say, gives up with a :class:`TimeoutError` naming
what it was waiting for.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import queue
import sys
import warnings
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, cast
from urllib.parse import unquote

import anyio
import anyio.abc
import anyio.from_thread
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from brillo._utils import is_async_callable
from brillo.exceptions import BrilloDeprecationWarning
from brillo.types import ASGIApp, Message, Receive, Scope, Send
from brillo.websockets import WebSocketDisconnect

if TYPE_CHECKING:
    import httpx2 as httpx
else:
    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - only plain httpx installed
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover
            raise RuntimeError(
                "brillo.testclient needs httpx2 (or httpx): pip install 'brillo[full]'"
            ) from exc

__all__ = [
    "ASGI2App",
    "ASGI3App",
    "ASGIInstance",
    "TestClient",
    "WebSocketDenialResponse",
    "WebSocketTestSession",
]

#: What an ASGI 2 app returns for a scope: a callable taking ``receive`` and ``send``.
ASGIInstance = Callable[[Receive, Send], Awaitable[None]]
#: An ASGI 2 ("double callable") application: ``app(scope)(receive, send)``.
ASGI2App = Callable[[Scope], ASGIInstance]
#: An ASGI 3 application: ``await app(scope, receive, send)``.
ASGI3App = Callable[[Scope, Receive, Send], Awaitable[None]]

PortalFactory = Callable[[], contextlib.AbstractContextManager[BlockingPortal]]

#: Default bound, in seconds, on every wait for the app (WebSocket receive, lifespan).
DEFAULT_TIMEOUT = 10.0

#: How long to wait for a cancelled app task to unwind.
_CANCEL_GRACE = 5.0

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
#: Request extension that marks a ``websocket_connect`` handshake (its value: the timeout).
_WEBSOCKET_TIMEOUT = "brillo.websocket_timeout"
#: Modules whose frames a warning skips to point at the test's own line.
_INTERNAL_MODULES = ("httpx", "contextlib", __name__)


class WebSocketDenialResponse(httpx.Response, WebSocketDisconnect):  # type: ignore[misc]
    """The app rejected the WebSocket handshake with an HTTP response.

    Raised by :meth:`TestClient.websocket_connect` when the app answers the handshake with
    ``websocket.http.response.start``/``body`` (``WebSocket.send_denial_response``). It is an
    httpx ``Response`` (``status_code``, ``headers``, ``content``, ``text``, ``json()``) and a
    :class:`~brillo.websockets.WebSocketDisconnect` whose ``code`` is 1006, the code a client
    sees for a connection that never opened.
    """

    # Constructed with httpx.Response's arguments; the WebSocketDisconnect side is derived.
    code = 1006

    @property
    def reason(self) -> str:  # type: ignore[override]
        """Why the connection never opened: the HTTP status of the denial."""
        return f"handshake denied with HTTP {self.status_code}"

    def __str__(self) -> str:
        return f"{self.reason}: {self.content[:200]!r}"


class _ProtocolError(AssertionError, RuntimeError):
    """The app broke the ASGI HTTP message order (an assertion about the app under test)."""


class _Upgrade(Exception):
    """Carries a WebSocket session out of the httpx transport to ``websocket_connect``."""

    def __init__(self, session: WebSocketTestSession) -> None:
        super().__init__()
        self.session = session


class _AppEnded:
    """Queue marker: the app's task finished, normally (``error`` None) or with an error."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def _asgi3(app: Any) -> ASGIApp:
    """Adapt an ASGI 2 (double-callable) app to ASGI 3.

    A class is ASGI 3 when its instances are awaitable (``Cls(scope, receive, send)`` then
    ``await``, as brillo's endpoint classes work), and ASGI 2 otherwise (``Cls(scope)`` gives
    the instance to call with ``receive`` and ``send``).
    """
    if inspect.isclass(app):
        if hasattr(app, "__await__"):
            return cast(ASGIApp, app)
    elif is_async_callable(app):
        ready: ASGIApp = app
        return ready

    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3


def _scope_base(
    request: httpx.Request, root_path: str, client: tuple[str, int], state: dict[str, Any]
) -> dict[str, Any]:
    url = request.url
    scheme = url.scheme
    host = url.host
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(scheme, 80)
    raw_path = url.raw_path.split(b"?", 1)[0]
    headers = [(key.lower(), value) for key, value in request.headers.raw]
    if not any(key == b"host" for key, _ in headers):
        default = port == _DEFAULT_PORTS.get(scheme)
        netloc = f"[{host}]" if ":" in host else host
        headers.insert(0, (b"host", (netloc if default else f"{netloc}:{port}").encode()))
    return {
        "asgi": _ASGI,
        "http_version": "1.1",
        "scheme": scheme,
        "server": (host, port),
        "client": client,
        "root_path": root_path,
        # The URL's path as requested: root_path only tells the app where it is mounted.
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": url.query,
        "headers": headers,
        "state": state.copy(),
    }


def _reraise(error: BaseException, raise_server_exceptions: bool) -> bool:
    """Whether the test sees the app's ``error``.

    Always for what is not an ``Exception`` (a pytest failure inside the app, say), otherwise
    as ``raise_server_exceptions`` says.
    """
    return raise_server_exceptions or not isinstance(error, Exception)


def _stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside httpx and here."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        _INTERNAL_MODULES
    ):
        frame = frame.f_back
        level += 1
    return level


class WebSocketTestSession:
    """One WebSocket connection to the app, driven synchronously from the test.

    Created by :meth:`TestClient.websocket_connect`; use it as a context manager. Entering runs
    the app until it accepts (or rejects) the connection; leaving closes the connection from
    the client side (code 1000) if it is still open, lets the app finish, and re-raises any
    exception the app raised that the test has not seen yet. An app that sits idle without
    reading the close (say it awaits something else forever) is cancelled then.
    """

    #: Set by the app's ``websocket.accept``.
    accepted_subprotocol: str | None
    #: Extra response headers from the app's ``websocket.accept``.
    extra_headers: list[tuple[bytes, bytes]]

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        portal_factory: PortalFactory,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        raise_server_exceptions: bool = True,
        request: httpx.Request | None = None,
    ) -> None:
        self.app = app
        self.scope = scope
        self.portal_factory = portal_factory
        self.timeout = timeout
        self.raise_server_exceptions = raise_server_exceptions
        self.accepted_subprotocol = None
        self.extra_headers = []
        self._request = request
        self._from_app: queue.SimpleQueue[Message | _AppEnded] = queue.SimpleQueue()
        self._to_app: MemoryObjectSendStream[Message] | None = None
        self._app_receive: MemoryObjectReceiveStream[Message] | None = None
        self._exit_stack: contextlib.ExitStack | None = None
        self._portal: BlockingPortal | None = None
        self._future: Future[None] | None = None
        self._cancel_scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._closed = False
        self._close_message: Message | None = None
        self._ended: _AppEnded | None = None
        self._error_seen = False
        self._aborting = False

    # -- the app's side ----------------------------------------------------------------------

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        assert self._app_receive is not None
        receive = self._app_receive.receive
        self._done = anyio.Event()
        try:
            with anyio.CancelScope() as self._cancel_scope:
                task_status.started()
                try:
                    await self.app(self.scope, receive, self._asgi_send)
                except anyio.get_cancelled_exc_class():
                    self._from_app.put(_AppEnded(None))
                    raise
                except BaseException as exc:  # even pytest's failures: they belong to the test
                    self._from_app.put(_AppEnded(exc))
                else:
                    self._from_app.put(_AppEnded(None))
        finally:
            # The app is gone: later client messages are dropped, as a server drops them.
            self._app_receive.close()
            if self._to_app is not None:
                self._to_app.close()
            self._done.set()

    async def _asgi_send(self, message: Message) -> None:
        kind = message["type"]
        if self._closed:
            raise OSError(f"the WebSocket is closed; cannot send {kind!r}")
        self._from_app.put(message)
        if kind == "websocket.close":
            # As a server does once the client answers the close: the app may now receive
            # websocket.disconnect (and further sends fail).
            self._app_closed(message.get("code", 1000), message.get("reason") or "")
        elif kind == "websocket.http.response.body" and not message.get("more_body", False):
            self._app_closed(1000, "")

    def _app_closed(self, code: int, reason: str) -> None:
        self._closed = True
        assert self._to_app is not None
        self._to_app.send_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    async def _wind_down(self) -> bool:
        """After the close, let the app return; False if it still runs after the timeout.

        An app that has read everything sent to it (the close included) gets the timeout to
        finish. Once every task of the event loop is blocked while the app leaves the close
        unread, it is not listening: it is cancelled, as a server would drop it.
        """
        assert self._done is not None
        assert self._cancel_scope is not None
        done = self._done
        with anyio.move_on_after(self.timeout):
            async with anyio.create_task_group() as tasks:

                async def watch_idle() -> None:
                    await anyio.wait_all_tasks_blocked()
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch_idle)
                await done.wait()
                tasks.cancel_scope.cancel()
            if done.is_set():
                return True
            assert self._to_app is not None
            if self._to_app.statistics().current_buffer_used:
                self._cancel_scope.cancel()  # idle, and the close still unread
            await done.wait()
            return True
        self._cancel_scope.cancel()
        with anyio.move_on_after(_CANCEL_GRACE, shield=True):
            await done.wait()
        return False

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        stack = contextlib.ExitStack()
        try:
            self._portal = portal = stack.enter_context(self.portal_factory())
            send_stream, receive_stream = anyio.create_memory_object_stream[Message](math.inf)
            stack.callback(send_stream.close)
            stack.callback(receive_stream.close)
            self._to_app, self._app_receive = send_stream, receive_stream
            send_stream.send_nowait({"type": "websocket.connect"})
            self._future, _ = portal.start_task(self._run)
            stack.callback(self._wait_app)
            self._handshake()
        except BaseException:
            self._aborting = True
            stack.close()
            raise
        self._exit_stack = stack
        return self

    def _handshake(self) -> None:
        message = self._next("the app to accept the WebSocket (websocket.accept)")
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = list(message.get("headers") or [])
            return
        if kind == "websocket.close":
            self._close_message = message
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        if kind == "websocket.http.response.start":
            body: list[bytes] = []
            while True:
                chunk = self._next("the denial response body (websocket.http.response.body)")
                if chunk["type"] != "websocket.http.response.body":
                    raise RuntimeError(
                        "expected websocket.http.response.body after "
                        f"websocket.http.response.start, got {chunk['type']!r}"
                    )
                body.append(chunk.get("body", b""))
                if not chunk.get("more_body", False):
                    break
            raise WebSocketDenialResponse(
                message["status"],
                headers=list(message.get("headers") or []),
                content=b"".join(body),
                request=self._request,
            )
        raise RuntimeError(f"unexpected ASGI message {kind!r} before websocket.accept")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            return
        try:
            if self._close_message is None and self._ended is None:
                self.close(1000)
        finally:
            stack.close()
        self._raise_pending(exc)

    def _wait_app(self) -> None:
        """Close from the client side if still open, then let the app finish (bounded)."""
        if self._future is None or self._future.done() or self._portal is None:
            return  # the app has ended (or its portal has stopped)
        if not self._closed:
            self._closed = True
            self._push({"type": "websocket.disconnect", "code": 1000, "reason": ""})
        if self._portal.call(self._wind_down) or self._aborting:
            return  # (when the handshake failed, that error is the one to report)
        raise TimeoutError(
            f"the app did not return within {self.timeout} s of the WebSocket closing "
            "(it read websocket.disconnect, or never went idle); it was cancelled"
        )

    def _raise_pending(self, exc: BaseException | None) -> None:
        """Re-raise an app exception the test has not seen (unless the test itself failed)."""
        while self._ended is None:
            try:
                item = self._from_app.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _AppEnded):
                self._ended = item
        error = self._ended.error
        if error is None or self._error_seen or exc is not None:
            return
        if isinstance(error, WebSocketDisconnect) and self._closed:
            return  # the app let the client's own close propagate: not a failure
        self._error_seen = True
        if _reraise(error, self.raise_server_exceptions):
            raise error

    # -- the test's side ---------------------------------------------------------------------

    def _push(self, message: Message) -> None:
        if self._to_app is None or self._portal is None:
            raise RuntimeError("use the WebSocket session inside its 'with' block")
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._portal.call(self._to_app.send_nowait, message)

    def _next(self, waiting_for: str) -> Message:
        if self._ended is not None:
            return self._after_end()
        try:
            item = self._from_app.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(
                f"timed out after {self.timeout} s waiting for {waiting_for}"
            ) from None
        if isinstance(item, _AppEnded):
            self._ended = item
            return self._after_end()
        return item

    def _after_end(self) -> Message:
        assert self._ended is not None
        error = self._ended.error
        if error is not None and not self._error_seen:
            if _reraise(error, self.raise_server_exceptions) and not (
                isinstance(error, WebSocketDisconnect) and self._closed
            ):
                self._error_seen = True
                raise error
            code = 1011
        elif self._close_message is not None:
            return self._close_message
        else:
            code = 1011 if error is not None else 1000
        # The app returned without closing: a server closes for it.
        self._close_message = {"type": "websocket.close", "code": code, "reason": ""}
        return self._close_message

    def send(self, message: Message) -> None:
        """Send a raw ASGI message to the app (e.g. ``{"type": "websocket.receive", ...}``)."""
        self._push(message)

    def send_text(self, data: str) -> None:
        """Send a text frame."""
        self._push({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        self._push({"type": "websocket.receive", "bytes": data})

    def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` as JSON in a text frame, or a binary frame with ``mode="binary"``."""
        if mode not in ("text", "binary"):
            raise ValueError('mode must be "text" or "binary"')
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            self._push({"type": "websocket.receive", "text": text})
        else:
            self._push({"type": "websocket.receive", "bytes": text.encode("utf-8")})

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection from the client side: the app receives ``websocket.disconnect``."""
        if self._closed:
            return
        self._closed = True
        self._push({"type": "websocket.disconnect", "code": code, "reason": reason or ""})

    def receive(self) -> Message:
        """The next raw ASGI message from the app (``websocket.send`` or ``websocket.close``)."""
        message = self._next("a message from the app (websocket.send or websocket.close)")
        if message["type"] == "websocket.close":
            self._close_message = message
        return message

    def _receive_data(self, waiting_for: str) -> Message:
        message = self._next(waiting_for)
        if message["type"] == "websocket.close":
            self._close_message = message
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        if message["type"] != "websocket.send":
            raise RuntimeError(f"expected websocket.send, got {message['type']!r}")
        return message

    def receive_text(self) -> str:
        """The next text frame; raises :class:`WebSocketDisconnect` if the app closed instead."""
        message = self._receive_data("a text message from the app")
        text = message.get("text")
        if text is None:
            raise TypeError(
                f"expected a text frame, the app sent a binary frame: {message.get('bytes')!r}"
            )
        return str(text)

    def receive_bytes(self) -> bytes:
        """The next binary frame; raises :class:`WebSocketDisconnect` if the app closed instead."""
        message = self._receive_data("a binary message from the app")
        data = message.get("bytes")
        if data is None:
            raise TypeError(
                f"expected a binary frame, the app sent a text frame: {message.get('text')!r}"
            )
        return bytes(data)

    def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next frame decoded as JSON (text frame by default, or binary with ``mode``)."""
        if mode not in ("text", "binary"):
            raise ValueError('mode must be "text" or "binary"')
        if mode == "text":
            return json.loads(self.receive_text())
        return json.loads(self.receive_bytes().decode("utf-8"))


class _HTTPExchange:
    """One HTTP request through the app, its response streamed back to the test thread.

    The app runs as a task in the client's portal. ``http.response.start`` releases the test
    thread with the response; body chunks then pass through a rendezvous channel (no buffer):
    the app's ``send`` returns once the test has taken the chunk, the backpressure a socket
    gives. Trailers and ``http.response.debug`` info are recorded as they arrive. The app's
    ``receive`` gives ``http.disconnect`` once the response is complete or the test closed it.
    """

    # Loop-side primitives, created in the app's task (anyio needs a running loop for them).
    _started: anyio.Event  # set at http.response.start, or when the app ends
    _finished: anyio.Event  # set when the response is complete, closed, or the app ends
    _done: anyio.Event  # set when the app's task ends
    _cancel_scope: anyio.CancelScope
    _chunks_in: MemoryObjectSendStream[tuple[bytes, bool]]
    _chunks_out: MemoryObjectReceiveStream[tuple[bytes, bool]]

    def __init__(self, client: TestClient, request: httpx.Request, scope: Scope) -> None:
        self.client = client
        self.app = client.app
        self.request = request
        self.scope = scope
        self.raise_server_exceptions = client.raise_server_exceptions
        self.head = request.method == "HEAD"
        self.body = request.read()
        self.portal: BlockingPortal | None = None
        self.response: httpx.Response | None = None
        self._stack = contextlib.ExitStack()
        # Written by the app's task (protocol state and what it sent).
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] | None = None  # None: none declared
        self.debug: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.protocol_error: _ProtocolError | None = None
        self._request_sent = False
        self._body_sent = False
        self._complete = False
        # Test-thread state.
        self._body_taken = False
        self._closed = False
        self._error_raised = False

    # -- the app's side ----------------------------------------------------------------------

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        self._started = anyio.Event()
        self._finished = anyio.Event()
        self._done = anyio.Event()
        self._chunks_in, self._chunks_out = anyio.create_memory_object_stream[tuple[bytes, bool]]()
        try:
            with anyio.CancelScope() as self._cancel_scope:
                task_status.started()
                try:
                    await self.app(self.scope, self._receive, self._send)
                except anyio.get_cancelled_exc_class():
                    raise
                except BaseException as exc:  # even pytest's failures: they belong to the test
                    self.error = exc
        finally:
            self._chunks_in.close()
            self._chunks_out.close()
            self._started.set()
            self._finished.set()
            self._done.set()

    async def _receive(self) -> Message:
        if not self._request_sent:
            self._request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if not self._finished.is_set():  # no checkpoint once set: is_disconnected() sees it
            await self._finished.wait()
        return {"type": "http.disconnect"}

    def _violation(self, text: str) -> _ProtocolError:
        error = _ProtocolError(text)
        if self.protocol_error is None:
            self.protocol_error = error
        return error

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.status is None:
                raise self._violation("http.response.body sent before http.response.start")
            if self._body_sent:
                raise self._violation("http.response.body sent after body completed")
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, bytearray | memoryview):
                    raise TypeError(
                        "http.response.body 'body' must be bytes (or a bytearray or "
                        f"memoryview), not {type(body).__name__}"
                    )
                body = bytes(body)  # a copy: the app may reuse a bytearray or memoryview
            more_body = bool(message.get("more_body", False))
            self._body_sent = not more_body
            await self._chunks_in.send((body, more_body))
            if not more_body and self.trailers is None:
                self._complete = True
                self._finished.set()
        elif kind == "http.response.start":
            if self.status is not None:
                raise self._violation("http.response.start sent twice")
            self.headers = list(message.get("headers") or [])
            if message.get("trailers", False):
                self.trailers = []
            self.status = message["status"]
            self._started.set()
        elif kind == "http.response.trailers":
            if self.trailers is None:
                raise self._violation(
                    "http.response.trailers sent without declaring trailers "
                    "(http.response.start needs 'trailers': True)"
                )
            if not self._body_sent:
                raise self._violation("http.response.trailers sent before body completed")
            if self._complete:
                raise self._violation("http.response.trailers sent after response completed")
            self.trailers.extend((bytes(k), bytes(v)) for k, v in message.get("headers") or ())
            if not message.get("more_trailers", False):
                self._complete = True
                self._finished.set()
        elif kind == "http.response.debug":
            info = message.get("info") or {}
            if self.debug is None:
                self.debug = dict(info)
            else:
                self.debug.update(info)
        # Anything else (extensions this client does not offer) is ignored, as servers do.

    async def _pull(self, timeout: float) -> bytes | None:
        """The next non-empty body chunk for the test; None once the response is over."""
        with anyio.move_on_after(timeout):
            while not self._body_taken:
                try:
                    body, more_body = await self._chunks_out.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    break  # the app ended before completing the body
                self._body_taken = not more_body
                if body and not self.head:
                    return body
            await self._finished.wait()  # the trailers, or the app's end
            return None
        waiting_for = "the trailers" if self._body_taken else "the next body chunk"
        raise TimeoutError(f"timed out after {timeout} s waiting for {waiting_for} from the app")

    async def _wait_started(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            await self._started.wait()
            return
        raise TimeoutError(
            f"timed out after {timeout} s waiting for the app to start the response "
            "(http.response.start)"
        )

    async def _hang_up(self, cancel: bool) -> bool:
        """The test closes the response: cancel the app if unfinished (or ``cancel``)."""
        if self._done.is_set() or (self._complete and not cancel):
            return False
        self._finished.set()
        self._cancel_scope.cancel()
        return True

    async def _stop(self, cancel: bool, timeout: float) -> Literal["done", "overdue", "stuck"]:
        """Wait for the app's task: ``timeout`` for it to return, then cancel it."""
        if not cancel:
            with anyio.move_on_after(timeout):
                await self._done.wait()
            if self._done.is_set():
                return "done"
        self._cancel_scope.cancel()
        with anyio.move_on_after(_CANCEL_GRACE):
            await self._done.wait()
        if not self._done.is_set():
            return "stuck"
        return "done" if cancel else "overdue"

    # -- the test's side ---------------------------------------------------------------------

    def start(self) -> httpx.Response:
        """Run the app until it starts the response (or ends); return the streaming response."""
        try:
            self.portal = portal = self._stack.enter_context(self.client.portal_factory())
            portal.start_task(self._run)
            portal.call(self._wait_started, self.client.websocket_timeout)
        except BaseException:
            self._end(cancel=True)
            raise
        if self.status is None:  # the app ended without starting a response
            self._end(cancel=False)
            if self.error is None and self.protocol_error is None:
                self.protocol_error = _ProtocolError(
                    "TestClient did not receive any response: the app returned without "
                    "sending a response (http.response.start)"
                )
            self._raise_error()
            return httpx.Response(500, request=self.request)
        extensions: dict[str, Any] = {}
        if self.trailers is not None:
            # The list the app's task fills: trailers show up as they are sent.
            extensions["http.response.trailers"] = self.trailers
        self.response = httpx.Response(
            self.status,
            headers=self.headers,
            stream=_ResponseStream(self),
            request=self.request,
            extensions=extensions,
        )
        self._show_debug()
        self.client._open_responses.add(self)
        return self.response

    def iter_body(self) -> Iterator[bytes]:
        assert self.portal is not None
        while not self._closed:
            chunk = self.portal.call(self._pull, self.client.websocket_timeout)
            self._show_debug()
            if chunk is None:
                break
            yield chunk
        if self._done.is_set():
            self._raise_error()  # the app failed before the response was over

    def close(self, *, cancel: bool = False) -> None:
        """Close the response: wait for a complete one's app, cancel an unfinished one's."""
        if self._closed:
            return
        self._closed = True
        self.client._open_responses.discard(self)
        assert self.portal is not None
        cancelled = self.portal.call(self._hang_up, cancel)
        self._end(cancel=cancelled)
        self._show_debug()
        self._raise_error()

    def _end(self, *, cancel: bool) -> None:
        """Wait (bounded) for the app's task, cancelling it first if asked; release the portal.

        An app still running :attr:`TestClient.websocket_timeout` seconds after its response
        completed (a background task that never ends, say) is cancelled, with a TimeoutError.
        """
        portal = self.portal
        outcome = "done"
        timeout = self.client.websocket_timeout
        try:
            if portal is not None and hasattr(self, "_done"):
                outcome = portal.call(self._stop, cancel, timeout)
        finally:
            if outcome != "stuck":  # (a per-request portal waits for the app when it stops)
                self._stack.close()
        if outcome == "stuck":
            raise TimeoutError(
                f"the app was cancelled but still runs after {_CANCEL_GRACE} s "
                "(does it shield itself from cancellation?)"
            )
        if outcome == "overdue":
            raise TimeoutError(
                f"the app still ran {timeout} s after its response was complete (a background "
                "task that never ends?); it was cancelled. Raise TestClient.websocket_timeout "
                "for longer background work."
            )

    def _raise_error(self) -> None:
        """Raise the app's failure (or protocol violation) to the test, once."""
        error = self.error or self.protocol_error
        if (
            error is not None
            and not self._error_raised
            and _reraise(error, self.raise_server_exceptions)
        ):
            self._error_raised = True
            raise error

    def _show_debug(self) -> None:
        """Expose the app's ``http.response.debug`` info on the response (test thread)."""
        debug, response = self.debug, self.response
        if debug is None or response is None:
            return
        response.extensions["http.response.debug"] = debug
        # Starlette's names, set as plain attributes on the httpx response:
        extra = vars(response)
        if "template" in debug:
            extra["template"] = debug["template"]
        if "context" in debug:
            extra["context"] = debug["context"]


class _ResponseStream(httpx.SyncByteStream):
    """The body of a streamed response: pulled from the app as the test reads it."""

    def __init__(self, exchange: _HTTPExchange) -> None:
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        return self._exchange.iter_body()

    def close(self) -> None:
        self._exchange.close()


class _TestClientTransport(httpx.BaseTransport):
    """Turns each httpx request into one ASGI call (or a WebSocket session on upgrade)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        client = self.client
        scope = _scope_base(request, client.root_path, client.client_address, client.app_state)
        if _WEBSOCKET_TIMEOUT in request.extensions or scope["scheme"] in ("ws", "wss"):
            self._upgrade(request, scope)
        scope["type"] = "http"
        scope["method"] = request.method
        scope["extensions"] = {"http.response.debug": {}, "http.response.trailers": {}}
        return _HTTPExchange(client, request, scope).start()

    def close(self) -> None:
        """Closing the client cancels the apps of responses the test left open."""
        self.client._close_open_responses()

    def _upgrade(self, request: httpx.Request, scope: dict[str, Any]) -> None:
        client = self.client
        scope["type"] = "websocket"
        scope["scheme"] = {"http": "ws", "https": "wss"}.get(scope["scheme"], scope["scheme"])
        offered = request.headers.get("sec-websocket-protocol")
        scope["subprotocols"] = (
            [p.strip() for p in offered.split(",") if p.strip()] if offered else []
        )
        scope["extensions"] = {"websocket.http.response": {}}
        timeout = request.extensions.get(_WEBSOCKET_TIMEOUT, client.websocket_timeout)
        session = WebSocketTestSession(
            client.app,
            scope,
            client.portal_factory,
            timeout=timeout,
            raise_server_exceptions=client.raise_server_exceptions,
            request=request,
        )
        raise _Upgrade(session)


class TestClient(httpx.Client):
    """An httpx client that calls an ASGI app in-process (see the module docstring).

    ``backend`` is ``"asyncio"`` or ``"trio"``; ``backend_options`` go to
    ``anyio.from_thread.start_blocking_portal``. With ``raise_server_exceptions=False`` an app
    exception becomes a 500 response (HTTP) or a 1011 close (WebSocket) instead of re-raising.
    ``root_path`` goes to ``scope["root_path"]``; request paths are sent as given, so include
    the root path in them (``client.get("/api/items")`` with ``root_path="/api"``).
    """

    __test__ = False
    #: The blocking portal running the app's event loop while inside ``with client:``.
    portal: BlockingPortal | None = None
    #: Bound, in seconds, on every wait for the app: the start of an HTTP response and each
    #: body chunk, an app still running after its response is complete, each WebSocket
    #: receive (the default; ``websocket_connect(timeout=...)`` overrides it), lifespan
    #: startup and shutdown.
    websocket_timeout: float = DEFAULT_TIMEOUT

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        self.async_backend: dict[str, Any] = {
            "backend": backend,
            "backend_options": backend_options or {},
        }
        self.app = _asgi3(app)
        self.app_state: dict[str, Any] = {}
        self.raise_server_exceptions = raise_server_exceptions
        self.root_path = root_path
        self.client_address = client
        self.portal = None
        self._lifespan: _Lifespan | None = None
        self._lifespan_stack: contextlib.ExitStack | None = None
        self._open_responses: set[_HTTPExchange] = set()
        merged = {"user-agent": "testclient"}
        if headers:
            merged.update(headers)
        super().__init__(
            base_url=base_url,
            headers=merged,
            transport=_TestClientTransport(self),
            follow_redirects=follow_redirects,
            cookies=cookies,
        )

    @contextlib.contextmanager
    def portal_factory(self) -> Generator[BlockingPortal, None, None]:
        """The running portal inside ``with client:``; otherwise a fresh one for one call."""
        if self.portal is not None:
            yield self.portal
        else:
            with anyio.from_thread.start_blocking_portal(**self.async_backend) as portal:
                yield portal

    _portal_factory = portal_factory  # the name Starlette's WebSocketTestSession users know

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: httpx._types.RequestContent | None = None,
        data: httpx._types.RequestData | None = None,
        files: httpx._types.RequestFiles | None = None,
        json: Any | None = None,
        params: httpx._types.QueryParamTypes | None = None,
        headers: httpx._types.HeaderTypes | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        timeout: httpx._types.TimeoutTypes | httpx._client.UseClientDefault = (
            httpx.USE_CLIENT_DEFAULT
        ),
        extensions: httpx._types.RequestExtensions | None = None,
    ) -> httpx.Request:
        """Build a request as httpx does; an explicit ``timeout`` is deprecated here."""
        if not isinstance(timeout, httpx._client.UseClientDefault):
            warnings.warn(
                "You should not use the 'timeout' argument with the TestClient. The app runs "
                "in-process, so there is no network to time out; every wait on the app is "
                "bounded by TestClient.websocket_timeout instead.",
                BrilloDeprecationWarning,
                stacklevel=_stacklevel(),
            )
        return super().build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            extensions=extensions,
        )

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] | None = None,
        *,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> WebSocketTestSession:
        """Open a WebSocket to ``url`` (relative to ``base_url``); use the result with ``with``.

        ``subprotocols`` are offered in ``Sec-WebSocket-Protocol``; ``timeout`` bounds each
        receive (default :attr:`websocket_timeout`); other keyword arguments (``headers``,
        ``params``, ``auth``) shape the handshake request as for :meth:`get`.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("connection", "upgrade")
        headers.setdefault("sec-websocket-key", "testserver==")
        headers.setdefault("sec-websocket-version", "13")
        if subprotocols:
            headers["sec-websocket-protocol"] = ", ".join(subprotocols)
        extensions = dict(kwargs.pop("extensions", None) or {})
        extensions[_WEBSOCKET_TIMEOUT] = self.websocket_timeout if timeout is None else timeout
        try:
            self.request("GET", url, headers=headers, extensions=extensions, **kwargs)
        except _Upgrade as upgrade:
            return upgrade.session
        raise RuntimeError("expected the transport to upgrade to a WebSocket")  # pragma: no cover

    def _close_open_responses(self, *, raise_errors: bool = True) -> None:
        """Cancel the apps behind streamed responses the test never closed."""
        error: Exception | None = None
        while self._open_responses:
            try:
                self._open_responses.pop().close(cancel=True)
            except KeyError:  # pragma: no cover - emptied by another thread
                break
            except Exception as exc:
                error = error or exc
        if error is not None and raise_errors:
            raise error

    # -- lifespan ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        stack = contextlib.ExitStack()
        try:
            self.portal = portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(**self.async_backend)
            )

            @stack.callback
            def reset_portal() -> None:
                self.portal = None

            # Cancel whatever still runs at exit (say, a WebSocket session never closed)
            # instead of waiting for it forever.
            stack.callback(portal.call, portal.stop, True)

            self._lifespan = lifespan = _Lifespan(self.app, self.app_state, self.websocket_timeout)
            lifespan.future = portal.start_task_soon(self.lifespan)
            stack.callback(lifespan.finish, portal)
            portal.call(self.wait_startup)
            stack.callback(portal.call, self.wait_shutdown)
        except BaseException:
            try:
                stack.close()
            finally:
                self._lifespan = None
            raise
        self._lifespan_stack = stack
        return self

    def _lifespan_driver(self) -> _Lifespan:
        if self._lifespan is None:
            self._lifespan = _Lifespan(self.app, self.app_state, self.websocket_timeout)
        return self._lifespan

    async def lifespan(self) -> None:
        """Run the app with a ``lifespan`` scope (``with client:`` starts this as a task)."""
        await self._lifespan_driver().run()

    async def wait_startup(self) -> None:
        """Send ``lifespan.startup`` and wait (bounded) for the app's answer; raise on failure."""
        await self._lifespan_driver().startup()

    async def wait_shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait (bounded) for the app's answer; raise on failure."""
        await self._lifespan_driver().shutdown()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        stack, self._lifespan_stack = self._lifespan_stack, None
        try:
            # Responses left open are cancelled first, as a server cancels requests still in
            # flight before it runs the lifespan shutdown.
            self._close_open_responses(raise_errors=exc is None)
        finally:
            if stack is not None:
                try:
                    stack.close()
                finally:
                    self._lifespan = None


class _Lifespan:
    """Drives the ASGI lifespan protocol from the test thread, with bounded waits."""

    def __init__(self, app: ASGIApp, state: dict[str, Any], timeout: float) -> None:
        self.app = app
        self.state = state
        self.timeout = timeout
        self.to_app, self.app_receive = anyio.create_memory_object_stream[Message](math.inf)
        self.from_app, self.test_receive = anyio.create_memory_object_stream[Message | _AppEnded](
            math.inf
        )
        self.future: Future[None] | None = None
        self.ended: _AppEnded | None = None
        self.started = False

    async def run(self) -> None:
        """Call the app with the lifespan scope; record how it ended."""
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(scope, self.app_receive.receive, self.from_app.send)
        except Exception as exc:
            self.from_app.send_nowait(_AppEnded(exc))
        else:
            self.from_app.send_nowait(_AppEnded(None))

    async def _expect(self, phase: str) -> None:
        with anyio.fail_after(self.timeout):
            await self.to_app.send({"type": f"lifespan.{phase}"})
            if self.ended is None:
                item = await self.test_receive.receive()
            else:
                item = self.ended
        if isinstance(item, _AppEnded):
            self.ended = item
            if item.error is not None and (phase == "startup" or self.started):
                raise item.error
            return  # the app does not support lifespan: nothing to do
        kind = item["type"]
        if kind == f"lifespan.{phase}.complete":
            if phase == "startup":
                self.started = True
            return
        if kind == f"lifespan.{phase}.failed":
            # An app usually re-raises the error after reporting it: surface that one.
            with anyio.move_on_after(self.timeout):
                ended = await self.test_receive.receive()
                if isinstance(ended, _AppEnded):
                    self.ended = ended
                    if ended.error is not None:
                        raise ended.error
            raise RuntimeError(f"lifespan {phase} failed: {item.get('message', '')}")
        raise RuntimeError(f"unexpected ASGI message {kind!r} during lifespan {phase}")

    async def startup(self) -> None:
        await self._expect("startup")

    async def shutdown(self) -> None:
        if self.ended is None:
            await self._expect("shutdown")

    def finish(self, portal: BlockingPortal) -> None:
        """Wait (bounded) for the lifespan task; cancel it if it is still running."""
        assert self.future is not None
        try:
            self.future.result(self.timeout)
        except FutureTimeoutError:
            self.future.cancel()
            with contextlib.suppress(BaseException):
                self.future.result(max(self.timeout, _CANCEL_GRACE))
        finally:
            portal.call(self._close)

    async def _close(self) -> None:
        for stream in (self.to_app, self.app_receive, self.from_app, self.test_receive):
            stream.close()
