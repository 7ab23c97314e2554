"""Tests for brillo.middleware.errors.ServerErrorMiddleware."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from brillo.middleware.errors import ServerErrorMiddleware
from brillo.requests import Request
from brillo.responses import JSONResponse, PlainTextResponse, Response
from brillo.routing import Route, Router, WebSocketRoute
from brillo.testclient import TestClient
from brillo.types import Message, Receive, Scope, Send
from brillo.websockets import WebSocket


class SecretError(Exception):
    pass


async def crash(request: Request) -> Response:
    raise SecretError("password=<hunter2>")


async def streaming_crash(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise SecretError("mid-stream")


def test_plain_500_without_debug(client_factory: Callable[..., TestClient]) -> None:
    app = ServerErrorMiddleware(Router([Route("/", crash)]))
    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/", headers={"accept": "text/html"})
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
        assert response.headers["content-type"].startswith("text/plain")
        assert "hunter2" not in response.text


def test_exception_is_reraised(client_factory: Callable[..., TestClient]) -> None:
    app = ServerErrorMiddleware(Router([Route("/", crash)]))
    with client_factory(app) as client, pytest.raises(SecretError):
        client.get("/")


def test_debug_html_page(client_factory: Callable[..., TestClient]) -> None:
    app = ServerErrorMiddleware(Router([Route("/boom", crash)]), debug=True)
    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"accept": "text/html,*/*"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert "SecretError" in body
    # The exception text is escaped, not injected as markup.
    assert "password=&lt;hunter2&gt;" in body
    assert "<hunter2>" not in body
    assert "GET /boom" in body
    assert "test_middleware_errors.py" in body
    assert "raise SecretError" in body


def test_debug_plain_text(client_factory: Callable[..., TestClient]) -> None:
    app = ServerErrorMiddleware(Router([Route("/", crash)]), debug=True)
    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/", headers={"accept": "application/json"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("Traceback (most recent call last):")
    assert "SecretError: password=<hunter2>" in response.text


def test_custom_handler_async_and_sync(client_factory: Callable[..., TestClient]) -> None:
    async def async_handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": type(exc).__name__}, status_code=500)

    def sync_handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("sync " + request.url.path, status_code=503)

    for handler, expected in ((async_handler, '{"error":"SecretError"}'), (sync_handler, "sync /")):
        app = ServerErrorMiddleware(Router([Route("/", crash)]), handler=handler)
        with client_factory(app, raise_server_exceptions=False) as client:
            assert client.get("/").text == expected


def test_debug_wins_over_handler(client_factory: Callable[..., TestClient]) -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("handler")  # pragma: no cover

    app = ServerErrorMiddleware(Router([Route("/", crash)]), handler=handler, debug=True)
    with client_factory(app, raise_server_exceptions=False) as client:
        assert "Traceback" in client.get("/").text


def test_response_already_started(client_factory: Callable[..., TestClient]) -> None:
    sent_statuses: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await Router()(scope, receive, send)
            return

        async def spy(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent_statuses.append(message["status"])
            await send(message)

        await ServerErrorMiddleware(streaming_crash, debug=True)(scope, receive, spy)

    with client_factory(app) as client, pytest.raises(SecretError, match="mid-stream"):
        client.get("/")
    # No second response start was attempted.
    assert sent_statuses == [200]


@pytest.mark.parametrize("is_async", [True, False])
def test_handler_runs_after_response_started(
    client_factory: Callable[..., TestClient], is_async: bool
) -> None:
    seen: list[str] = []
    sent_statuses: list[int] = []

    def record(request: Request, exc: Exception) -> Response:
        seen.append(f"{request.url.path} {exc}")
        return PlainTextResponse("discarded", status_code=500)

    async def async_record(request: Request, exc: Exception) -> Response:
        return record(request, exc)

    handler = async_record if is_async else record

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def spy(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent_statuses.append(message["status"])
            await send(message)

        await ServerErrorMiddleware(streaming_crash, handler=handler)(scope, receive, spy)

    client = client_factory(app)  # no lifespan: the app is HTTP-only
    with pytest.raises(SecretError, match="mid-stream"):
        client.get("/late")
    # The handler saw the error (to report it), but its response was not sent.
    assert seen == ["/late mid-stream"]
    assert sent_statuses == [200]


@pytest.mark.parametrize("inlined", [True, False])
def test_background_task_failure_reaches_app_error_handler(
    client_factory: Callable[..., TestClient], inlined: bool
) -> None:
    from brillo.applications import Brillo
    from brillo.background import BackgroundTask
    from brillo.middleware import Middleware

    seen: list[Exception] = []

    def handler(request: Request, exc: Exception) -> Response:
        seen.append(exc)
        return PlainTextResponse("discarded", status_code=500)

    def fail() -> None:
        raise SecretError("in background")

    async def endpoint(request: Request) -> Response:
        return Response(status_code=204, background=BackgroundTask(fail))

    class Passthrough:
        def __init__(self, app: Callable[..., object]) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)  # type: ignore[misc]

    # Without user middleware the application runs its default stack inlined.
    app = Brillo(
        routes=[Route("/", endpoint)],
        exception_handlers={Exception: handler},
        middleware=[] if inlined else [Middleware(Passthrough)],
    )
    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/")
    assert response.status_code == 204
    assert [str(exc) for exc in seen] == ["in background"]


def test_debug_page_rendered_off_the_event_loop(
    client_factory: Callable[..., TestClient],
) -> None:
    import threading

    threads: dict[str, int] = {}

    class Recording(ServerErrorMiddleware):
        def debug_response(self, request: Request, exc: Exception) -> Response:
            threads["render"] = threading.get_ident()
            return super().debug_response(request, exc)

    async def boom(scope: Scope, receive: Receive, send: Send) -> None:
        threads["loop"] = threading.get_ident()
        raise SecretError("x")

    client = client_factory(Recording(boom, debug=True), raise_server_exceptions=False)
    response = client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    # Reading source files for the page blocks, so it happens in a worker thread.
    assert threads["render"] != threads["loop"]


def test_websocket_passes_through(client_factory: Callable[..., TestClient]) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("through")
        await websocket.close()

    app = ServerErrorMiddleware(Router([WebSocketRoute("/ws", endpoint)]), debug=True)
    with client_factory(app) as client, client.websocket_connect("/ws") as session:
        assert session.receive_text() == "through"


def test_generate_helpers() -> None:
    middleware = ServerErrorMiddleware(Router())
    try:
        raise SecretError("<b>x</b>")
    except SecretError as exc:
        page = middleware.generate_html(exc)
        text = middleware.generate_plain_text(exc)
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" in text


def test_format_line_numbers_and_highlights() -> None:
    middleware = ServerErrorMiddleware(Router())
    # Entry 2 of the context is the current line, number 40 in the file.
    current = middleware.format_line(2, "    if a < b:\n", 40, 2)
    before = middleware.format_line(0, "def f(a, b):\n", 40, 2)
    assert 'class="line current"' in current
    assert ">40<" in current
    assert "if a &lt; b:" in current
    assert "\n" not in current
    assert 'class="line"' in before
    assert ">38<" in before


def test_generate_frame_html() -> None:
    middleware = ServerErrorMiddleware(Router())
    try:
        raise SecretError("frame")
    except SecretError as exc:
        traceback = exc.__traceback__
    assert traceback is not None
    (frame,) = inspect.getinnerframes(traceback, 3)
    expanded = middleware.generate_frame_html(frame, is_collapsed=False)
    collapsed = middleware.generate_frame_html(frame, is_collapsed=True)
    assert expanded.startswith('<details class="frame" open>')
    assert " open" not in collapsed
    assert "test_middleware_errors.py" in expanded
    assert "in test_generate_frame_html" in expanded
    assert f">{frame.lineno}<" in expanded
    assert "raise SecretError(&quot;frame&quot;)" in expanded
    assert expanded.count('<div class="line') == 3


def test_generate_html_expands_only_the_innermost_frame() -> None:
    middleware = ServerErrorMiddleware(Router())

    def inner() -> None:
        raise SecretError("deep")

    try:
        inner()
    except SecretError as exc:
        page = middleware.generate_html(exc, limit=1)
    assert page.count("<details") == 2
    assert page.count('<details class="frame" open>') == 1
    assert page.index("in inner") < page.index("in test_generate_html_expands")
    # limit is the number of source lines shown per frame, as in Starlette.
    assert page.count('<div class="line') == 2
