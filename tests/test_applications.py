"""Tests for brillo.applications: the middleware stack, handlers, state, routing helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from brillo.applications import Brillo, Starlette
from brillo.background import BackgroundTask
from brillo.datastructures import State
from brillo.exceptions import BrilloDeprecationWarning, HTTPException, WebSocketException
from brillo.middleware import Middleware
from brillo.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from brillo.middleware.errors import ServerErrorMiddleware
from brillo.middleware.exceptions import ExceptionMiddleware
from brillo.requests import Request
from brillo.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from brillo.routing import Host, Mount, Route, Router, WebSocketRoute
from brillo.testclient import TestClient, WebSocketDenialResponse
from brillo.types import ASGIApp, Receive, Scope, Send
from brillo.websockets import WebSocket, WebSocketDisconnect


async def homepage(request: Request) -> Response:
    return PlainTextResponse("home")


class Recorder:
    """A middleware that records the scope types and order it sees."""

    def __init__(self, app: ASGIApp, log: list[str], tag: str) -> None:
        self.app = app
        self.log = log
        self.tag = tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            self.log.append(self.tag)
        await self.app(scope, receive, send)


def test_starlette_alias() -> None:
    assert Starlette is Brillo


def test_defaults() -> None:
    app = Brillo()
    assert app.debug is False
    assert isinstance(app.state, State)
    assert isinstance(app.router, Router)
    assert app.routes == []
    assert app.user_middleware == []


def test_routes_and_helpers(client_factory: Callable[..., TestClient]) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("ws")
        await websocket.close()

    app = Brillo(routes=[Route("/", homepage, name="home")])
    app.add_route("/added", homepage, methods=["GET"], name="added")
    app.add_websocket_route("/ws", ws, name="ws")
    app.mount("/sub", Router([Route("/x", homepage, name="x")]), name="sub")
    app.host("api.example.org", Router([Route("/", homepage, name="api")]), name="api")
    assert [type(r) for r in app.routes] == [Route, Route, WebSocketRoute, Mount, Host]
    assert app.url_path_for("home") == "/"
    assert app.url_path_for("added") == "/added"
    assert app.url_path_for("ws") == "/ws"
    assert app.url_path_for("sub:x") == "/sub/x"
    with client_factory(app) as client:
        assert client.get("/added").text == "home"
        assert client.get("/sub/x").text == "home"
        with client.websocket_connect("/ws") as session:
            assert session.receive_text() == "ws"


def test_scope_app_and_state(client_factory: Callable[..., TestClient]) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Brillo) -> AsyncIterator[dict[str, Any]]:
        app.state.started = True
        yield {"counter": [0]}

    async def endpoint(request: Request) -> Response:
        counter = request.state.counter
        counter[0] += 1
        return JSONResponse(
            {
                "same_app": request.scope["app"] is app,
                "started": request.app.state.started,
                "count": counter[0],
            }
        )

    app = Brillo(routes=[Route("/", endpoint)], lifespan=lifespan)
    with client_factory(app) as client:
        assert client.get("/").json() == {"same_app": True, "started": True, "count": 1}
        assert client.get("/").json()["count"] == 2


def test_middleware_order(client_factory: Callable[..., TestClient]) -> None:
    log: list[str] = []
    app = Brillo(
        routes=[Route("/", homepage)],
        middleware=[Middleware(Recorder, log, "first"), Middleware(Recorder, log, tag="second")],
    )
    app.add_middleware(Recorder, log, "added")
    with client_factory(app) as client:
        client.get("/")
    assert log == ["added", "first", "second"]


def test_middleware_stack_shape() -> None:
    log: list[str] = []
    app = Brillo(middleware=[Middleware(Recorder, log, "user")])
    stack = app.build_middleware_stack()
    assert isinstance(stack, ServerErrorMiddleware)
    assert isinstance(stack.app, Recorder)
    assert isinstance(stack.app.app, ExceptionMiddleware)
    assert stack.app.app.app is app.router


def test_add_middleware_after_start(client_factory: Callable[..., TestClient]) -> None:
    app = Brillo(routes=[Route("/", homepage)])
    with client_factory(app) as client:
        client.get("/")
        with pytest.raises(RuntimeError, match="Cannot add middleware after an application has"):
            app.add_middleware(Recorder, [], "late")


def test_stack_built_once(client_factory: Callable[..., TestClient]) -> None:
    builds: list[int] = []

    class Counting:
        def __init__(self, app: ASGIApp) -> None:
            builds.append(1)
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

    app = Brillo(routes=[Route("/", homepage)], middleware=[Middleware(Counting)])
    with client_factory(app) as client:
        for _ in range(3):
            client.get("/")
    assert builds == [1]


def test_exception_handlers_by_code_and_class(client_factory: Callable[..., TestClient]) -> None:
    class AppError(Exception):
        pass

    class SpecificError(AppError):
        pass

    async def raise_specific(request: Request) -> Response:
        raise SpecificError("boom")

    async def raise_http(request: Request) -> Response:
        raise HTTPException(409, "conflict", headers={"X-Reason": "dup"})

    async def app_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"app error: {exc}", status_code=422)

    def conflict(request: Request, exc: Exception) -> Response:  # sync handler: thread pool
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(
            f"{exc.status_code} {exc.detail}", status_code=exc.status_code, headers=exc.headers
        )

    app = Brillo(
        routes=[Route("/specific", raise_specific), Route("/http", raise_http)],
        exception_handlers={AppError: app_error},
    )
    app.add_exception_handler(409, conflict)
    with client_factory(app) as client:
        response = client.get("/specific")
        assert (response.status_code, response.text) == (422, "app error: boom")
        response = client.get("/http")
        assert (response.status_code, response.text) == (409, "409 conflict")
        assert response.headers["x-reason"] == "dup"


def test_500_handler_goes_to_server_error_middleware(
    client_factory: Callable[..., TestClient],
) -> None:
    async def crash(request: Request) -> Response:
        raise RuntimeError("kaput")

    async def server_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"sorry: {exc}", status_code=500)

    for key in (500, Exception):
        app = Brillo(routes=[Route("/", crash)], exception_handlers={key: server_error})
        with client_factory(app, raise_server_exceptions=False) as client:
            response = client.get("/")
            assert (response.status_code, response.text) == (500, "sorry: kaput")
        with client_factory(app) as client, pytest.raises(RuntimeError, match="kaput"):
            client.get("/")


def test_debug_toggle_rebuilds_stack(client_factory: Callable[..., TestClient]) -> None:
    async def crash(request: Request) -> Response:
        raise ValueError("secret detail")

    app = Brillo(routes=[Route("/", crash)])
    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/")
        assert response.text == "Internal Server Error"
        assert "secret detail" not in response.text
        app.debug = True
        response = client.get("/", headers={"accept": "text/plain"})
        assert "ValueError: secret detail" in response.text
        assert "Traceback" in response.text


def test_websocket_exception_handlers(client_factory: Callable[..., TestClient]) -> None:
    class Kicked(Exception):
        pass

    async def ws_kick(websocket: WebSocket) -> None:
        await websocket.accept()
        raise Kicked()

    async def ws_exc(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(4001, "go away")

    async def on_kicked(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(code=4444, reason="kicked")

    app = Brillo(
        routes=[WebSocketRoute("/kick", ws_kick), WebSocketRoute("/exc", ws_exc)],
        exception_handlers={Kicked: on_kicked},
    )
    with client_factory(app) as client:
        with client.websocket_connect("/kick") as session:
            with pytest.raises(WebSocketDisconnect) as info:
                session.receive_text()
            assert (info.value.code, info.value.reason) == (4444, "kicked")
        with client.websocket_connect("/exc") as session:
            with pytest.raises(WebSocketDisconnect) as info:
                session.receive_text()
            assert (info.value.code, info.value.reason) == (4001, "go away")


def test_max_body_size_on_app(client_factory: Callable[..., TestClient]) -> None:
    async def echo(request: Request) -> Response:
        return PlainTextResponse(str(len(await request.body())))

    app = Brillo(routes=[Route("/", echo, methods=["POST"])], max_body_size=4)
    with client_factory(app) as client:
        assert client.post("/", content=b"1234").text == "4"
        assert client.post("/", content=b"12345").status_code == 413

        assert client.post("/", content=iter([b"12", b"345"])).status_code == 413


def test_max_body_size_is_outside_user_middleware(
    client_factory: Callable[..., TestClient],
) -> None:
    seen: list[object] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(scope.get(MAX_BODY_SIZE_SCOPE_KEY))
            await self.app(scope, receive, send)

    async def echo(request: Request) -> Response:
        return PlainTextResponse(str(len(await request.body())))

    app = Brillo(
        routes=[Route("/", echo, methods=["POST"])], middleware=[Middleware(Spy)], max_body_size=4
    )
    with client_factory(app) as client:
        assert client.post("/", content=b"1234").text == "4"
    assert seen == [4]
    limiters = []
    layer: Any = app.middleware_stack
    while layer is not None:
        if isinstance(layer, RequestBodyLimitMiddleware):
            limiters.append(layer)
        layer = getattr(layer, "app", None)
    assert [limiter.max_body_size for limiter in limiters] == [4]
    assert isinstance(app.middleware_stack, ServerErrorMiddleware)
    assert isinstance(app.middleware_stack.app, RequestBodyLimitMiddleware)

    unlimited = Brillo(routes=[Route("/", echo, methods=["POST"])])
    stack = unlimited.build_middleware_stack()
    assert isinstance(stack, ServerErrorMiddleware)
    assert isinstance(stack.app, ExceptionMiddleware)


def test_mounted_app_inside_app(client_factory: Callable[..., TestClient]) -> None:
    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "inner": request.app is inner,
                "url": str(request.url_for("leaf")),
                "root": request.scope["root_path"],
            }
        )

    inner = Brillo(routes=[Route("/leaf", info, name="leaf")])
    outer = Brillo(routes=[Mount("/inner", app=inner)])
    with client_factory(outer) as client:
        assert client.get("/inner/leaf").json() == {
            "inner": True,
            "url": "http://testserver/inner/leaf",
            "root": "/inner",
        }
        assert client.get("/inner/nothing").status_code == 404


class _LayeredErrors(ServerErrorMiddleware):
    """Same behaviour; its exact type keeps the application off its inlined default stack."""


class _LayeredExceptions(ExceptionMiddleware):
    """Same behaviour; its exact type keeps ServerErrorMiddleware's inlined path generic."""


class _LayeredBrillo(Brillo):
    """An application that runs every layer of the default stack as a separate ASGI call."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        assert type(stack) is ServerErrorMiddleware
        inner = stack.app
        assert type(inner) is ExceptionMiddleware
        self.router._direct = False  # Router.__call__ instead of the router's resolver
        inner.__class__ = _LayeredExceptions
        stack.__class__ = _LayeredErrors
        return stack


@pytest.mark.parametrize("app_class", [Brillo, _LayeredBrillo], ids=["inlined", "layered"])
def test_default_stack_inlined_and_layered_agree(
    client_factory: Callable[..., TestClient], app_class: type[Brillo]
) -> None:
    """The app inlines its default stack (error layers and router); behaviour is unchanged."""

    class Teapot(Exception):
        pass

    async def crash(request: Request) -> Response:
        raise RuntimeError("kaput")

    async def teapot(request: Request) -> Response:
        raise Teapot()

    async def on_teapot(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("short and stout", status_code=418)

    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["id"], "route": request.scope["route"].path})

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("raw")(scope, receive, send)

    async def ws_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())

    async def ws_deny(websocket: WebSocket) -> None:
        raise HTTPException(403, "no")

    ran: list[str] = []

    async def background(request: Request) -> Response:
        return PlainTextResponse("bg", background=BackgroundTask(ran.append, "task"))

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[str]:
            yield "a"
            yield "b"

        return StreamingResponse(chunks())

    def sync_endpoint(request: Request) -> Response:
        return PlainTextResponse(f"sync {request.method}")

    shared = HTTPException(410, "gone for good")

    async def raise_shared(request: Request) -> Response:
        raise shared

    class Rethrown(Exception):
        pass

    async def rethrow(request: Request) -> Response:
        raise Rethrown()

    async def on_rethrown(request: Request, exc: Exception) -> Response:
        raise HTTPException(409, "handled twice")

    async def late_failure(request: Request) -> Response:
        async def chunks() -> AsyncIterator[str]:
            yield "partial"
            raise Teapot()

        return StreamingResponse(chunks())

    app = app_class(
        routes=[
            Route("/", homepage),
            Route("/crash", crash),
            Route("/teapot", teapot),
            Route("/items/{id:int}", item),
            Route("/post", homepage, methods=["POST"]),
            Route("/slash/", homepage),
            Mount("/raw", raw),
            WebSocketRoute("/ws", ws_echo),
            WebSocketRoute("/deny", ws_deny),
            Route("/bg", background),
            Route("/stream", stream),
            Route("/sync", sync_endpoint),
            Route("/rethrow", rethrow),
            Route("/late", late_failure),
            Route("/shared", raise_shared),
        ],
        exception_handlers={Teapot: on_teapot, Rethrown: on_rethrown},
    )
    with client_factory(app, raise_server_exceptions=False) as client:
        assert client.get("/").text == "home"
        assert client.get("/items/7").json() == {"id": 7, "route": "/items/{id:int}"}
        assert client.get("/raw/anything").text == "raw"
        assert (client.get("/teapot").status_code, client.get("/teapot").text) == (
            418,
            "short and stout",
        )
        response = client.get("/crash")
        assert (response.status_code, response.text) == (500, "Internal Server Error")
        response = client.get("/post")
        assert (response.status_code, response.headers["allow"]) == (405, "POST")
        assert client.get("/nowhere").status_code == 404
        assert client.get("/bg").text == "bg"
        assert ran == ["task"]
        assert client.get("/stream").text == "ab"
        assert client.get("/sync").text == "sync GET"
        response = client.get("/rethrow")
        assert (response.status_code, response.text) == (409, "handled twice")
        for _ in range(2):
            assert client.get("/shared").status_code == 410
            assert shared.__traceback__ is None  # handled: its traceback is let go
        response = client.get("/slash", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (
            307,
            "http://testserver/slash/",
        )
        with client.websocket_connect("/ws") as session:
            session.send_text("hi")
            assert session.receive_text() == "hi"
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/nowhere"):
            pass  # pragma: no cover - the handshake is refused
        assert info.value.code == 1000
        with pytest.raises(WebSocketDenialResponse) as denial, client.websocket_connect("/deny"):
            pass  # pragma: no cover - the handshake is refused
        assert (denial.value.status_code, denial.value.text) == (403, "no")
    with client_factory(app) as client, pytest.raises(RuntimeError, match="kaput"):
        client.get("/crash")
    with client_factory(app) as client, pytest.raises(RuntimeError, match="already started"):
        client.get("/late")
    with client_factory(app) as client:
        response = client.get("/nowhere")
        assert (response.status_code, response.text) == (404, "Not Found")


# -- subclasses that skip Brillo.__init__ (FastAPI's FastAPI does) ------------------------------


class SetsItselfUp(Brillo):
    """Sets up only what the documented contract asks for, without ``Brillo.__init__``."""

    def __init__(self, routes: list[Any], middleware: list[Middleware] | None = None) -> None:
        self.router = Router(routes)
        self.state = State()
        self.exception_handlers = {}
        self.user_middleware = list(middleware or [])
        self.middleware_stack = None


@pytest.mark.parametrize("with_middleware", [False, True], ids=["inlined", "layered"])
def test_subclass_without_parent_init_serves(
    client_factory: Callable[..., TestClient], with_middleware: bool
) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("ws")
        await websocket.close()

    log: list[str] = []
    middleware = [Middleware(Recorder, log, "mw")] if with_middleware else []
    app = SetsItselfUp([Route("/", homepage), WebSocketRoute("/ws", ws)], middleware)
    assert app.debug is False
    assert app.max_body_size is None
    with client_factory(app) as client:
        assert client.get("/").text == "home"
        assert client.get("/missing").status_code == 404
        with client.websocket_connect("/ws") as session:
            assert session.receive_text() == "ws"
    assert log == (["mw", "mw", "mw"] if with_middleware else [])
    app.debug = True  # the setter works without __init__ too, and drops the built stack
    assert app.middleware_stack is None


# -- generator lifespans (deprecated, still run) ------------------------------------------------


def test_async_generator_lifespan_runs_with_a_deprecation_warning(
    client_factory: Callable[..., TestClient],
) -> None:
    steps: list[str] = []

    async def lifespan(app: Brillo) -> AsyncIterator[dict[str, str]]:
        steps.append("startup")
        yield {"source": "async generator"}
        steps.append("shutdown")

    async def source(request: Request) -> Response:
        return PlainTextResponse(request.state.source)

    with pytest.warns(BrilloDeprecationWarning, match=r"^async generator function lifespans") as w:
        app = Brillo(routes=[Route("/", source)], lifespan=lifespan)  # type: ignore[arg-type]
    assert f"lifespan={__name__}.test_async_generator_lifespan" in str(w[0].message)
    assert "asynccontextmanager" in str(w[0].message)
    with client_factory(app) as client:
        assert steps == ["startup"]
        assert client.get("/").text == "async generator"
    assert steps == ["startup", "shutdown"]


def test_sync_generator_lifespan_runs_with_a_deprecation_warning(
    client_factory: Callable[..., TestClient],
) -> None:
    steps: list[str] = []

    def lifespan(app: Brillo) -> Iterator[None]:
        steps.append("startup")
        try:
            yield
        finally:
            steps.append("shutdown")

    with pytest.warns(BrilloDeprecationWarning, match=r"^generator function lifespans"):
        app = Brillo(routes=[Route("/", homepage)], lifespan=lifespan)  # type: ignore[arg-type]
    with client_factory(app) as client:
        assert steps == ["startup"]
        assert client.get("/").text == "home"
    assert steps == ["startup", "shutdown"]


def test_async_context_manager_lifespan_does_not_warn() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Brillo) -> AsyncIterator[None]:
        yield

    app = Brillo(lifespan=lifespan)  # the suite turns warnings into errors
    assert app.router.lifespan_context is lifespan
