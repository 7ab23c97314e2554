"""An in-process test client for brillo (and any ASGI) apps, HTTP and WebSocket.

:class:`TestClient` is an httpx ``Client`` whose transport calls the ASGI app directly, in an
event loop that runs in a helper thread (an anyio blocking portal, on asyncio or trio)::

    client = TestClient(app)
    assert client.get("/").status_code == 200

    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}

Use ``with TestClient(app) as client:`` to run the app's lifespan (startup on enter, shutdown on
exit). Every wait on the app is bounded: a WebSocket receive gives up after
:attr:`TestClient.websocket_timeout` seconds with a :class:`TimeoutError` naming what it was
waiting for.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import unquote

import anyio
import anyio.from_thread
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from brillo._utils import is_async_callable
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

__all__ = ["TestClient", "WebSocketDenialResponse", "WebSocketTestSession"]

PortalFactory = Callable[[], contextlib.AbstractContextManager[BlockingPortal]]

#: Default bound, in seconds, on every wait for the app (WebSocket receive, lifespan).
DEFAULT_TIMEOUT = 10.0

#: How long to wait for a cancelled app task to unwind.
_CANCEL_GRACE = 5.0

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


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
    """Adapt an ASGI 2 (double-callable) app to ASGI 3."""
    if is_async_callable(app):
        return app  # type: ignore[no-any-return]

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
    port = url.port or _DEFAULT_PORTS.get(scheme, 80)
    raw_path = url.raw_path.split(b"?", 1)[0]
    headers = [(key.lower(), value) for key, value in request.headers.raw]
    if not any(key == b"host" for key, _ in headers):
        default = port == _DEFAULT_PORTS.get(scheme)
        headers.insert(0, (b"host", (host if default else f"{host}:{port}").encode()))
    path = unquote(raw_path.decode("ascii"))
    return {
        "asgi": _ASGI,
        "http_version": "1.1",
        "scheme": scheme,
        "server": (host, port),
        "client": client,
        "root_path": root_path,
        "path": root_path + path,
        "raw_path": root_path.encode() + raw_path,
        "query_string": url.query,
        "headers": headers,
        "state": state.copy(),
    }


class WebSocketTestSession:
    """One WebSocket connection to the app, driven synchronously from the test.

    Created by :meth:`TestClient.websocket_connect`; use it as a context manager. Entering runs
    the app until it accepts (or rejects) the connection; leaving closes the connection from
    the client side (code 1000) if it is still open, waits for the app to finish, and re-raises
    any exception the app raised that the test has not seen yet.
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
        self._closed = False
        self._close_message: Message | None = None
        self._ended: _AppEnded | None = None
        self._error_seen = False
        self._aborting = False

    # -- the app's side ----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._app_receive is not None
        receive = self._app_receive.receive
        try:
            await self.app(self.scope, receive, self._asgi_send)
        except Exception as exc:
            self._from_app.put(_AppEnded(exc))
        except BaseException:
            self._from_app.put(_AppEnded(None))
            raise
        else:
            self._from_app.put(_AppEnded(None))
        finally:
            # The app is gone: later client messages are dropped, as a server drops them.
            self._app_receive.close()
            if self._to_app is not None:
                self._to_app.close()

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
            self._future = portal.start_task_soon(self._run)
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
        """Wait (bounded) for the app's task to end; cancel it if it ignores the disconnect."""
        if self._future is None:
            return
        if not self._closed and not self._future.done():
            self._closed = True
            self._push({"type": "websocket.disconnect", "code": 1000, "reason": ""})
        try:
            self._future.result(self.timeout)
        except FutureCancelledError:
            return  # cancelled when the client's portal stopped
        except FutureTimeoutError:
            self._future.cancel()
            with contextlib.suppress(BaseException):
                self._future.result(max(self.timeout, _CANCEL_GRACE))
            if self._aborting:
                return  # the handshake already failed; that error is the one to report
            raise TimeoutError(
                f"the app did not return within {self.timeout} s of the WebSocket closing "
                "(does it ignore websocket.disconnect?)"
            ) from None

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
        if self.raise_server_exceptions:
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
            if self.raise_server_exceptions and not (
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


class _TestClientTransport(httpx.BaseTransport):
    """Turns each httpx request into one ASGI call (or a WebSocket session on upgrade)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        client = self.client
        scope = _scope_base(request, client.root_path, client.client_address, client.app_state)
        if request.headers.get("upgrade", "").lower() == "websocket":
            self._upgrade(request, scope)
        scope["type"] = "http"
        scope["method"] = request.method
        scope["extensions"] = {"http.response.debug": {}}
        body = request.read()

        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        debug: dict[str, Any] = {}
        request_sent = False
        complete: anyio.Event | None = None

        async def receive() -> Message:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            assert complete is not None
            await complete.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, headers
            kind = message["type"]
            if kind == "http.response.start":
                if status is not None:
                    raise RuntimeError("http.response.start sent twice")
                status = message["status"]
                headers = list(message.get("headers") or [])
            elif kind == "http.response.body":
                if status is None:
                    raise RuntimeError("http.response.body sent before http.response.start")
                assert complete is not None
                if complete.is_set():
                    raise RuntimeError("http.response.body sent after the response completed")
                if request.method != "HEAD":
                    chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    complete.set()
            elif kind == "http.response.debug":
                debug.update(message.get("info") or {})

        try:
            with client.portal_factory() as portal:
                complete = portal.call(anyio.Event)
                portal.call(client.app, scope, receive, send)
        except BaseException:
            if client.raise_server_exceptions:
                raise
        if status is None:
            if client.raise_server_exceptions:
                raise RuntimeError("the app returned without sending a response")
            status, headers, chunks = 500, [], []
        response = httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(b"".join(chunks)), request=request
        )
        if debug:
            response.template = debug.get("template")  # type: ignore[attr-defined]
            response.context = debug.get("context")  # type: ignore[attr-defined]
        return response

    def _upgrade(self, request: httpx.Request, scope: dict[str, Any]) -> None:
        client = self.client
        scope["type"] = "websocket"
        scope["scheme"] = {"http": "ws", "https": "wss"}.get(scope["scheme"], scope["scheme"])
        offered = request.headers.get("sec-websocket-protocol")
        scope["subprotocols"] = (
            [p.strip() for p in offered.split(",") if p.strip()] if offered else []
        )
        scope["extensions"] = {"websocket.http.response": {}}
        timeout = request.extensions.get("brillo.websocket_timeout", client.websocket_timeout)
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
    """

    __test__ = False
    #: The blocking portal running the app's event loop while inside ``with client:``.
    portal: BlockingPortal | None = None
    #: Default bound, in seconds, on each WebSocket receive and on lifespan startup/shutdown.
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
        ``params``) shape the handshake request as for :meth:`get`.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("connection", "upgrade")
        headers.setdefault("upgrade", "websocket")
        headers.setdefault("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        headers.setdefault("sec-websocket-version", "13")
        if subprotocols:
            headers["sec-websocket-protocol"] = ", ".join(subprotocols)
        extensions = dict(kwargs.pop("extensions", None) or {})
        extensions["brillo.websocket_timeout"] = (
            self.websocket_timeout if timeout is None else timeout
        )
        try:
            self.request("GET", url, headers=headers, extensions=extensions, **kwargs)
        except _Upgrade as upgrade:
            return upgrade.session
        raise RuntimeError("expected the transport to upgrade to a WebSocket")  # pragma: no cover

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
