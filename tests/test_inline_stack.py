"""The application's inlined default stack and the separate layers send the same ASGI messages.

``Brillo.__call__`` runs its default stack (ServerErrorMiddleware, ExceptionMiddleware, the router,
``request_response`` and the plain-response sender) in one frame. ``Layered`` below builds the very
same stack but runs each layer as its own ASGI call. For many randomized applications (routes,
mounts, path parameters, methods, sync and async endpoints, streaming and background tasks,
exception handlers of every kind, ``debug``) and randomized requests (methods, HEAD, ``root_path``,
trailing slashes, bodies, WebSockets with and without the denial-response extension) both must
produce exactly the same thing: every message sent, in order, the exception raised (type,
message, cause), the side effects of endpoints and background tasks, and what the router put in
the scope.

A failure prints the seed and the request; re-run with ``SEED`` set to that seed to replay.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from brillo.applications import Brillo
from brillo.background import BackgroundTask
from brillo.endpoints import HTTPEndpoint, WebSocketEndpoint
from brillo.exceptions import HTTPException, WebSocketException
from brillo.middleware import Middleware
from brillo.middleware.errors import ServerErrorMiddleware
from brillo.middleware.exceptions import ExceptionMiddleware
from brillo.requests import Request
from brillo.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from brillo.routing import BaseRoute, Mount, Route, WebSocketRoute
from brillo.types import ASGIApp, Message, Receive, Scope, Send
from brillo.websockets import WebSocket

pytestmark = pytest.mark.anyio

APPS = 80
REQUESTS_PER_APP = 30


class Layered(Brillo):
    """The default stack, each layer a separate ASGI call (never the inlined path)."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        assert type(stack) is ServerErrorMiddleware
        inner = stack.app
        assert type(inner) is ExceptionMiddleware
        self.router._direct = False  # Router.__call__ -> middleware_stack -> app -> _resolve
        inner.__class__ = _Exceptions
        stack.__class__ = _Errors
        return stack


class _Errors(ServerErrorMiddleware):
    pass


class _Exceptions(ExceptionMiddleware):
    pass


class Boom(Exception):
    pass


class Teapot(Exception):
    pass


# -- the endpoints ------------------------------------------------------------------------------


def describe(request: Request) -> str:
    """What an endpoint sees of the routing: path, root path, params, route, url_for."""
    route = request.scope.get("route")
    return (
        f"{request.method} {request.url.path} root={request.scope.get('root_path')!r} "
        f"params={sorted((k, str(v)) for k, v in request.path_params.items())} "
        f"route={getattr(route, 'path', None)} endpoint="
        f"{getattr(request.scope.get('endpoint'), '__name__', None)} "
        f"query={request.query_params}"
    )


class World:
    """One application's endpoints, writing their side effects to ``log``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.log: list[str] = []

    # HTTP endpoints: (request) -> response --------------------------------------------------

    def http_endpoint(self, kind: str) -> Callable[..., Any]:
        log = self.log
        status = self.rng.choice([200, 201, 204, 304, 404, 500])
        code = self.rng.choice([400, 401, 404, 405, 418, 204, 304, 503])
        with_headers = self.rng.random() < 0.5

        async def text(request: Request) -> Response:
            log.append("text")
            return PlainTextResponse("text " + describe(request))

        async def json(request: Request) -> Response:
            log.append("json")
            url = str(request.url_for("json_named")) if kind == "json_named" else None
            return JSONResponse({"seen": describe(request), "url": str(request.url), "for": url})

        def sync(request: Request) -> Response:
            log.append("sync")
            return HTMLResponse("<p>" + describe(request) + "</p>")

        async def raw_response(request: Request) -> Response:
            response = Response(
                b"raw body", status_code=status, media_type="text/x-raw", headers={"x-a": "1"}
            )
            response.set_cookie("k", "v", max_age=10)
            return response

        async def background(request: Request) -> Response:
            task = BackgroundTask(log.append, "bg " + request.url.path)
            return PlainTextResponse("bg", background=task)

        async def background_fails(request: Request) -> Response:
            def fail() -> None:
                log.append("bg failing")
                raise Boom("in the background")

            return PlainTextResponse("bg", background=BackgroundTask(fail))

        async def stream(request: Request) -> Response:
            async def chunks() -> AsyncIterator[str]:
                for part in ("a", "b", "c"):
                    yield part

            task = BackgroundTask(log.append, "stream done")
            return StreamingResponse(chunks(), media_type="text/plain", background=task)

        async def stream_fails(request: Request) -> Response:
            async def chunks() -> AsyncIterator[str]:
                yield "partial"
                raise Boom("mid-stream")

            return StreamingResponse(chunks())

        async def http_exc(request: Request) -> Response:
            log.append(f"raise {code}")
            headers = {"x-why": "because"} if with_headers else None
            raise HTTPException(code, detail=f"detail {code}", headers=headers)

        async def boom(request: Request) -> Response:
            raise Boom("kaput")

        async def teapot(request: Request) -> Response:
            raise Teapot("short and stout")

        def sync_key_error(request: Request) -> Response:
            raise KeyError("missing")

        class Custom(Response):
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                await send({"type": "http.response.start", "status": 299, "headers": []})
                await send({"type": "http.response.body", "body": b"custom", "more_body": True})
                await send({"type": "http.response.body", "body": b""})

        async def custom(request: Request) -> Response:
            return Custom()

        async def body(request: Request) -> Response:
            data = await request.body()
            return PlainTextResponse(f"{len(data)} bytes: {data[:20]!r}")

        async def redirect(request: Request) -> Response:
            return RedirectResponse("/elsewhere?x=1", status_code=302)

        async def returns_nothing(request: Request) -> Any:
            return None

        endpoints: dict[str, Callable[..., Any]] = {
            "text": text,
            "json": json,
            "json_named": json,
            "sync": sync,
            "raw_response": raw_response,
            "background": background,
            "background_fails": background_fails,
            "stream": stream,
            "stream_fails": stream_fails,
            "http_exc": http_exc,
            "boom": boom,
            "teapot": teapot,
            "sync_key_error": sync_key_error,
            "custom": custom,
            "body": body,
            "redirect": redirect,
            "returns_nothing": returns_nothing,
        }
        return endpoints[kind]

    def asgi_endpoint(self) -> ASGIApp:
        log = self.log

        class RawApp:
            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                log.append("raw app " + scope["path"])
                await PlainTextResponse("raw app")(scope, receive, send)

        return RawApp()

    def class_endpoint(self) -> type[HTTPEndpoint]:
        log = self.log

        class Items(HTTPEndpoint):
            async def get(self, request: Request) -> Response:
                log.append("Items.get")
                return PlainTextResponse("items " + describe(request))

            def post(self, request: Request) -> Response:
                raise HTTPException(409, "taken")

        return Items

    # WebSocket endpoints --------------------------------------------------------------------

    def websocket_endpoint(self, kind: str) -> Callable[..., Any]:
        log = self.log

        async def ws_echo(websocket: WebSocket) -> None:
            await websocket.accept()
            text = await websocket.receive_text()
            log.append("ws got " + text)
            await websocket.send_text("echo " + text + " " + str(websocket.path_params))
            await websocket.close(1000)

        async def ws_close_reason(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.close(4000, "é" * 100)

        async def ws_exception(websocket: WebSocket) -> None:
            await websocket.accept()
            raise WebSocketException(4001, "nope")

        async def ws_http_exception(websocket: WebSocket) -> None:
            raise HTTPException(403, "forbidden here", headers={"x-ws": "1"})

        async def ws_crash(websocket: WebSocket) -> None:
            await websocket.accept()
            raise Boom("ws crash")

        async def ws_crash_early(websocket: WebSocket) -> None:
            raise Boom("ws crash before accept")

        async def ws_bad_json(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.receive_json()

        async def ws_teapot(websocket: WebSocket) -> None:
            await websocket.accept()
            raise Teapot("ws teapot")

        endpoints: dict[str, Callable[..., Any]] = {
            "ws_echo": ws_echo,
            "ws_close_reason": ws_close_reason,
            "ws_exception": ws_exception,
            "ws_http_exception": ws_http_exception,
            "ws_crash": ws_crash,
            "ws_crash_early": ws_crash_early,
            "ws_bad_json": ws_bad_json,
            "ws_teapot": ws_teapot,
        }
        return endpoints[kind]

    def websocket_class(self) -> type[WebSocketEndpoint]:
        log = self.log

        class Chat(WebSocketEndpoint):
            encoding = "text"

            async def on_receive(self, websocket: WebSocket, data: Any) -> None:
                log.append("chat " + str(data))
                await websocket.send_text("chat " + str(data))

        return Chat

    # Exception handlers ---------------------------------------------------------------------

    def handlers(self) -> dict[Any, Callable[..., Any]]:
        rng, log = self.rng, self.log
        chosen: dict[Any, Callable[..., Any]] = {}

        async def on_500(request: Request, exc: Exception) -> Response:
            log.append(f"500 handler {type(exc).__name__}")
            return PlainTextResponse(f"handled {type(exc).__name__}: {exc}", status_code=500)

        def on_500_sync(request: Request, exc: Exception) -> Response:
            log.append("sync 500 handler")
            return JSONResponse({"error": str(exc)}, status_code=500)

        async def on_500_raises(request: Request, exc: Exception) -> Response:
            raise RuntimeError("the 500 handler failed too")

        async def on_http(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            log.append(f"http handler {exc.status_code}")
            return JSONResponse(
                {"detail": exc.detail, "path": request.url.path},
                status_code=exc.status_code,
                headers=exc.headers,
            )

        def on_404(request: Request, exc: Exception) -> Response:
            return HTMLResponse("<h1>not here</h1>", status_code=404)

        async def on_boom(request: Request, exc: Exception) -> Response:
            log.append("boom handler")
            return PlainTextResponse("boom handled", status_code=409)

        async def on_teapot_raises(request: Request, exc: Exception) -> Response:
            raise HTTPException(418, "teapot handler raised")

        async def on_teapot_ws(conn: Any, exc: Exception) -> None:
            log.append("teapot handler " + conn.scope["type"])
            if isinstance(conn, WebSocket):
                await conn.close(4418, "teapot")

        async def on_ws_exception(websocket: WebSocket, exc: Exception) -> None:
            assert isinstance(exc, WebSocketException)
            log.append("ws exception handler")
            await websocket.close(4999, "custom " + exc.reason)

        if rng.random() < 0.5:
            key = rng.choice([500, Exception])
            chosen[key] = rng.choice([on_500, on_500_sync, on_500_raises])
        if rng.random() < 0.4:
            chosen[HTTPException] = on_http
        if rng.random() < 0.3:
            chosen[404] = on_404
        if rng.random() < 0.5:
            chosen[Boom] = on_boom
        if rng.random() < 0.5:
            chosen[Teapot] = rng.choice([on_teapot_raises, on_teapot_ws])
        if rng.random() < 0.3:
            chosen[WebSocketException] = on_ws_exception
        return chosen


class PassThrough:
    """A pure ASGI middleware that does nothing but forward (a route's own middleware)."""

    def __init__(self, app: ASGIApp, tag: str) -> None:
        self.app = app
        self.tag = tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


HTTP_KINDS = [
    "text",
    "json",
    "sync",
    "raw_response",
    "background",
    "background_fails",
    "stream",
    "stream_fails",
    "http_exc",
    "boom",
    "teapot",
    "sync_key_error",
    "custom",
    "body",
    "redirect",
    "returns_nothing",
]
WS_KINDS = [
    "ws_echo",
    "ws_close_reason",
    "ws_exception",
    "ws_http_exception",
    "ws_crash",
    "ws_crash_early",
    "ws_bad_json",
    "ws_teapot",
]
LITERALS = ["a", "b", "items", "users", "x"]


@dataclass
class Built:
    app: Brillo
    world: World
    http_paths: list[str] = field(default_factory=list)
    ws_paths: list[str] = field(default_factory=list)


def random_path(rng: random.Random, with_params: bool) -> str:
    segments = [rng.choice(LITERALS) for _ in range(rng.randint(1, 2))]
    if with_params:
        segments.append(rng.choice(["{id:int}", "{name}", "{rest:path}"]))
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path += "/"
    return path


def build_routes(
    rng: random.Random,
    world: World,
    depth: int,
    app_class: type[Brillo],
    built: Built,
    prefix: str,
) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for _ in range(rng.randint(3, 9)):
        roll = rng.random()
        path = random_path(rng, with_params=rng.random() < 0.3)
        if roll < 0.55:
            kind = rng.choice(HTTP_KINDS)
            methods = rng.choice([None, None, ["GET"], ["POST"], ["GET", "POST"], ["PUT"]])
            middleware = [Middleware(PassThrough, tag="route")] if rng.random() < 0.15 else None
            endpoint = world.http_endpoint(kind)
            routes.append(Route(path, endpoint, methods=methods, middleware=middleware, name=kind))
            built.http_paths.append(prefix + path)
        elif roll < 0.62:
            routes.append(Route(path, world.asgi_endpoint()))
            built.http_paths.append(prefix + path)
        elif roll < 0.68:
            routes.append(Route(path, world.class_endpoint()))
            built.http_paths.append(prefix + path)
        elif roll < 0.85:
            if rng.random() < 0.8:
                routes.append(WebSocketRoute(path, world.websocket_endpoint(rng.choice(WS_KINDS))))
            else:
                routes.append(WebSocketRoute(path, world.websocket_class()))
            built.ws_paths.append(prefix + path)
        elif depth < 2:
            mount_path = "/" + rng.choice(LITERALS) + rng.choice(["", "/{tenant}"])
            inner = build_routes(rng, world, depth + 1, app_class, built, prefix + mount_path)
            if rng.random() < 0.3:
                # A whole application of the same kind mounted inside: its own stack.
                handlers, debug = world.handlers(), rng.random() < 0.5
                sub = app_class(routes=inner, exception_handlers=handlers, debug=debug)
                routes.append(Mount(mount_path, app=sub))
            else:
                routes.append(Mount(mount_path, routes=inner))
    if rng.random() < 0.5 and routes:
        routes.append(routes[0])  # a duplicate: the first one wins
    return routes


def build(seed: int, app_class: type[Brillo]) -> Built:
    rng = random.Random(seed)
    world = World(rng)
    built = Built(app=Brillo(), world=world)
    routes = build_routes(rng, world, 0, app_class, built, "")
    routes.append(Route("/named", world.http_endpoint("json_named"), name="json_named"))
    built.http_paths.append("/named")
    built.app = app_class(
        routes=routes, exception_handlers=world.handlers(), debug=rng.random() < 0.4
    )
    built.app.router.redirect_slashes = rng.random() < 0.8
    return built


# -- the requests -------------------------------------------------------------------------------


def concrete(rng: random.Random, template: str) -> str:
    """A path for ``template``: parameters filled (sometimes with values that do not convert),
    sometimes the other trailing-slash form, sometimes a path nothing matches."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(["/", "/nothing", "/a/b/c/d", "/items/notanumber", "//x"])
    out = []
    for segment in template.split("/"):
        if segment == "{id:int}":
            segment = rng.choice(["7", "42", "x7"])
        elif segment == "{name}":
            segment = rng.choice(["ada", "b%20c", "é"])
        elif segment == "{rest:path}":
            segment = rng.choice(["p", "p/q", ""])
        elif segment == "{tenant}":
            segment = rng.choice(["t1", "t2"])
        out.append(segment)
    path = "/".join(out) or "/"
    if roll < 0.2 and path != "/":
        path = path[:-1] if path.endswith("/") else path + "/"
    return path


def http_request(rng: random.Random, built: Built) -> tuple[Scope, list[Message]]:
    path = concrete(rng, rng.choice(built.http_paths))
    root_path = rng.choice(["", "", "", "/root"])
    headers = [(b"host", b"testserver")]
    if rng.random() < 0.3:
        headers.append((b"accept", b"text/html"))
    body = b""
    method = rng.choice(["GET", "GET", "HEAD", "POST", "PUT", "DELETE"])
    if method in ("POST", "PUT") and rng.random() < 0.7:
        body = b"payload-" * rng.randint(1, 5)
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": rng.choice(["2.3", "2.4"])},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": root_path,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": rng.choice([b"", b"q=1", b"a=1&a=2"]),
        "headers": headers,
        "state": {},
    }
    chunks: list[Message]
    if rng.random() < 0.5:
        chunks = [{"type": "http.request", "body": body, "more_body": False}]
    else:
        half = len(body) // 2
        chunks = [
            {"type": "http.request", "body": body[:half], "more_body": True},
            {"type": "http.request", "body": body[half:], "more_body": False},
        ]
    return scope, chunks


def websocket_request(rng: random.Random, built: Built) -> tuple[Scope, list[Message]]:
    path = concrete(rng, rng.choice(built.ws_paths))
    root_path = rng.choice(["", "", "/root"])
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": root_path,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
        "state": {},
        "extensions": {"websocket.http.response": {}} if rng.random() < 0.5 else {},
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    incoming.append({"type": "websocket.receive", "text": rng.choice(["hi", "{bad json"])})
    return scope, incoming


# -- running one request and recording everything it did -----------------------------------------


@dataclass
class Outcome:
    sent: list[Message]
    error: tuple[str, str, str | None] | None
    log: list[str]
    scope: dict[str, Any]


def normalized(sent: list[Message]) -> list[Message]:
    """The messages, with debug traceback pages reduced to their exception line (the frames
    shown differ between the two stacks by design)."""
    out: list[Message] = []
    for index, message in enumerate(sent):
        message = dict(message)
        if message["type"].endswith("response.start") and message["status"] == 500:
            following = sent[index + 1] if index + 1 < len(sent) else {}
            body = following.get("body", b"")
            if b"Traceback" in body or b"<!DOCTYPE html>" in body:
                message["headers"] = [h for h in message["headers"] if h[0] != b"content-length"]
        if message["type"].endswith("response.body"):
            body = message.get("body", b"")
            if b"<!DOCTYPE html>" in body:
                start = body.index(b"<h2>")
                message["body"] = body[start : body.index(b"</h2>", start)]
            elif body.startswith(b"Traceback"):
                message["body"] = body.strip().splitlines()[-1]
        out.append(message)
    return out


async def run(built: Built, scope: Scope, incoming: list[Message]) -> Outcome:
    built.world.log.clear()
    scope = dict(scope)
    queue = list(incoming)
    sent: list[Message] = []
    finished = anyio.Event()

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        if queue:
            return queue.pop(0)
        if scope["type"] == "websocket":
            return {"type": "websocket.disconnect", "code": 1000, "reason": ""}
        await finished.wait()  # the client stays until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        sent.append({k: list(v) if isinstance(v, list) else v for k, v in message.items()})
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    error = None
    try:
        with anyio.fail_after(10):
            await built.app(scope, receive, send)
    except Exception as exc:
        cause = exc.__cause__
        error = (type(exc).__name__, str(exc), type(cause).__name__ if cause else None)
    finished.set()
    route, endpoint = scope.get("route"), scope.get("endpoint")
    seen = {
        "path_params": {k: str(v) for k, v in (scope.get("path_params") or {}).items()},
        "root_path": scope.get("root_path"),
        "route": getattr(route, "path", type(route).__name__),
        "endpoint": "<app>"
        if isinstance(endpoint, Brillo)
        else getattr(endpoint, "__name__", type(endpoint).__name__),
        "app is the application": scope.get("app") is built.app,
    }
    return Outcome(normalized(sent), error, list(built.world.log), seen)


async def test_inlined_and_layered_stacks_send_the_same_messages() -> None:
    first = int(os.environ.get("SEED", "0"))
    seeds = [first] if "SEED" in os.environ else range(first, first + APPS)
    compared = kinds = 0
    seen_kinds: set[tuple[str, str | None]] = set()
    for seed in seeds:
        inlined, layered = build(seed, Brillo), build(seed, Layered)
        requests = random.Random(seed * 7919 + 1)
        for number in range(REQUESTS_PER_APP):
            use_ws = inlined.ws_paths and requests.random() < 0.25
            make = websocket_request if use_ws else http_request
            state = requests.getstate()
            scope, incoming = make(requests, inlined)
            requests.setstate(state)
            assert make(requests, layered) == (scope, incoming)
            one = await run(inlined, scope, incoming)
            other = await run(layered, scope, incoming)
            where = f"seed {seed}, request {number}: {scope['type']} {scope.get('method')} "
            where += f"{scope['path']!r} (root_path {scope['root_path']!r})"
            assert one == other, where
            compared += 1
            status = next((m.get("status") for m in one.sent if "status" in m), None)
            seen_kinds.add((scope["type"], one.error[0] if one.error else str(status)))
            kinds = len(seen_kinds)
    assert compared == len(seeds) * REQUESTS_PER_APP
    if "SEED" not in os.environ:
        # The mix reached what it is meant to: answers, handled errors, server errors, raised
        # exceptions after the response started, WebSocket closes and denials.
        assert kinds >= 15, sorted(seen_kinds, key=str)


def test_the_default_stack_is_the_inlined_one() -> None:
    # The comparison above is only meaningful if one side takes the inlined path and the other
    # does not: the application keeps an inline plan for exactly the default stack.
    from brillo.applications import _inline_plan

    inlined, layered = build(1, Brillo), build(1, Layered)
    assert _inline_plan(inlined.app.build_middleware_stack()) is not None
    assert _inline_plan(layered.app.build_middleware_stack()) is None


def test_the_request_the_endpoint_wrappers_build_is_a_plain_request() -> None:
    # request_response and the inlined stack build their Request with requests._http_request
    # (no class call); it must hold exactly what Request(scope, receive, send) holds.
    from brillo.requests import _http_request

    async def receive() -> Message:  # pragma: no cover - never called
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:  # pragma: no cover - never called
        pass

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    built, made = _http_request(scope, receive, send), Request(scope, receive, send)
    assert type(built) is Request
    assert vars(built) == vars(made)
    assert built.scope is scope
    assert built.receive is receive


def test_exception_middleware_does_not_import_the_router() -> None:
    import subprocess
    import sys

    code = (
        "import sys, brillo.middleware.exceptions, brillo.middleware.errors; "
        "print(sorted(m for m in sys.modules if m in ('brillo.routing', 'brillo.applications')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
