"""Tests for brillo.routing: matching, 404/405/redirects, mounts, hosts, URL building, lifespan,
body limits, and the route index agreeing with a linear first-match scan."""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from brillo.applications import Brillo
from brillo.datastructures import URLPath
from brillo.endpoints import HTTPEndpoint
from brillo.exceptions import HTTPException
from brillo.middleware import Middleware
from brillo.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from brillo.requests import Request
from brillo.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from brillo.routing import (
    BaseRoute,
    Host,
    InvalidPathError,
    Match,
    Mount,
    NoMatchFound,
    Route,
    Router,
    WebSocketRoute,
    compile_path,
    get_name,
)
from brillo.testclient import TestClient
from brillo.types import ASGIApp, Message, Receive, Scope, Send
from brillo.websockets import WebSocket, WebSocketDisconnect


async def homepage(request: Request) -> Response:
    return PlainTextResponse("home")


async def echo_params(request: Request) -> Response:
    return JSONResponse({k: str(v) for k, v in request.path_params.items()})


def text(value: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(value)

    return endpoint


# -- compile_path ------------------------------------------------------------------------------


def test_compile_path() -> None:
    regex, fmt, convertors = compile_path("/users/{id:int}/posts/{slug}")
    assert fmt == "/users/{id}/posts/{slug}"
    assert set(convertors) == {"id", "slug"}
    match = regex.match("/users/12/posts/hello")
    assert match is not None
    assert match.groupdict() == {"id": "12", "slug": "hello"}
    assert regex.match("/users/x/posts/hello") is None
    assert regex.match("/users/1/posts/a/b") is None


def test_compile_path_escapes_literals() -> None:
    regex, fmt, _ = compile_path("/a.b+c/{x}")
    assert regex.match("/a.b+c/1") is not None
    assert regex.match("/aXb+c/1") is None
    assert fmt == "/a.b+c/{x}"


def test_compile_host_ignores_port() -> None:
    regex, fmt, convertors = compile_path("{sub}.example.org:8000")
    assert fmt == "{sub}.example.org:8000"
    assert regex.match("api.example.org") is not None
    assert regex.match("api.example.com") is None
    assert list(convertors) == ["sub"]


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("[::1]", "[::1]", "["),
        ("[::1]:8000", "[::1]", "[::1]:8000"),
        ("[2001:db8::1]", "[2001:db8::1]", "[2001"),
        ("example.org:", "example.org", "example.org:"),
    ],
)
def test_compile_host_keeps_ipv6_literals_whole(
    pattern: str, matching: str, not_matching: str
) -> None:
    regex, fmt, _ = compile_path(pattern)
    assert fmt == pattern
    assert regex.match(matching) is not None
    assert regex.match(not_matching) is None


def test_compile_path_duplicated_params() -> None:
    with pytest.raises(ValueError, match="Duplicated param name id at path /{id}/{id}"):
        compile_path("/{id}/{id}")
    with pytest.raises(ValueError, match="Duplicated param names a, b at path"):
        compile_path("/{a}/{b}/{a}/{b}")


def test_compile_path_errors_are_value_and_assertion_errors() -> None:
    # Starlette raises AssertionError for an unknown convertor: code catching either still works.
    for path in ("/{a:nope}", "/{a}/{a}"):
        with pytest.raises(AssertionError) as info:
            compile_path(path)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, InvalidPathError)
    with pytest.raises(AssertionError, match="Unknown path convertor 'nope'"):
        Route("/{a:nope}", homepage)


def test_route_path_must_start_with_slash() -> None:
    with pytest.raises(AssertionError, match="must start with '/'"):
        Route("users", homepage)
    with pytest.raises(AssertionError, match="must start with '/'"):
        Mount("users", routes=[])


def test_get_name() -> None:
    class Endpoint:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    assert get_name(homepage) == "homepage"
    assert get_name(Endpoint()) == "Endpoint"
    assert Route("/", homepage).name == "homepage"


# -- matching ----------------------------------------------------------------------------------


def test_path_params_are_converted(client_factory: Callable[..., TestClient]) -> None:
    async def endpoint(request: Request) -> Response:
        params = request.path_params
        return JSONResponse({k: [type(v).__name__, str(v)] for k, v in params.items()})

    uid = uuid.uuid4()
    app = Router(
        [
            Route("/int/{v:int}", endpoint),
            Route("/float/{v:float}", endpoint),
            Route("/uuid/{v:uuid}", endpoint),
            Route("/path/{v:path}", endpoint),
            Route("/str/{v}", endpoint),
        ]
    )
    with client_factory(app) as client:
        assert client.get("/int/5").json() == {"v": ["int", "5"]}
        assert client.get("/float/2.5").json() == {"v": ["float", "2.5"]}
        assert client.get(f"/uuid/{uid}").json() == {"v": ["UUID", str(uid)]}
        assert client.get("/path/a/b/c").json() == {"v": ["str", "a/b/c"]}
        assert client.get("/str/x%20y").json() == {"v": ["str", "x y"]}
        assert client.get("/int/x").status_code == 404


def test_first_declared_match_wins(client_factory: Callable[..., TestClient]) -> None:
    app = Router(
        [
            Route("/users/me", text("me")),
            Route("/users/{name}", text("param")),
            Route("/users/me", text("never")),
        ]
    )
    with client_factory(app) as client:
        assert client.get("/users/me").text == "me"
        assert client.get("/users/bob").text == "param"


def test_full_match_beats_earlier_partial(client_factory: Callable[..., TestClient]) -> None:
    app = Router(
        [
            Route("/item", text("post"), methods=["POST"]),
            Route("/item", text("get"), methods=["GET"]),
        ]
    )
    with client_factory(app) as client:
        assert client.get("/item").text == "get"
        assert client.post("/item").text == "post"
        response = client.put("/item")
        assert response.status_code == 405
        # The first partial match answers, listing its own methods.
        assert response.headers["allow"] == "POST"


def test_405_with_allow_header_outside_and_inside_app(
    client_factory: Callable[..., TestClient],
) -> None:
    routes = [Route("/", homepage, methods=["GET", "POST"])]
    with client_factory(Router(routes)) as client:
        response = client.delete("/")
        assert response.status_code == 405
        assert response.text == "Method Not Allowed"
        assert response.headers["allow"] == "GET, HEAD, POST"

    seen: list[int] = []

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        seen.append(exc.status_code)
        return PlainTextResponse("custom", status_code=exc.status_code, headers=exc.headers)

    app = Brillo(routes=routes, exception_handlers={405: handler})
    with client_factory(app) as client:
        response = client.delete("/")
        assert (response.status_code, response.text) == (405, "custom")
        assert response.headers["allow"] == "GET, HEAD, POST"
    assert seen == [405]


def test_head_is_implied_by_get(client_factory: Callable[..., TestClient]) -> None:
    route = Route("/", homepage)
    assert route.methods == {"GET", "HEAD"}
    with client_factory(Router([route])) as client:
        response = client.head("/")
        assert response.status_code == 200
        assert response.content == b""
    assert Route("/", homepage, methods=["post"]).methods == {"POST"}


def test_query_method_is_an_ordinary_method(client_factory: Callable[..., TestClient]) -> None:
    async def search(request: Request) -> Response:
        return PlainTextResponse(request.method + ":" + (await request.body()).decode())

    app = Router([Route("/search", search, methods=["QUERY"])])
    with client_factory(app) as client:
        assert client.request("QUERY", "/search", content=b"q").text == "QUERY:q"
        response = client.get("/search")
        assert response.status_code == 405
        assert response.headers["allow"] == "QUERY"


def test_not_found_outside_and_inside_app(client_factory: Callable[..., TestClient]) -> None:
    with client_factory(Router([Route("/", homepage)])) as client:
        response = client.get("/missing")
        assert (response.status_code, response.text) == (404, "Not Found")

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("nothing at " + request.url.path, status_code=404)

    app = Brillo(routes=[Route("/", homepage)], exception_handlers={404: not_found})
    with client_factory(app) as client:
        assert client.get("/missing").text == "nothing at /missing"


def test_custom_default_app(client_factory: Callable[..., TestClient]) -> None:
    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("fallback", status_code=418)(scope, receive, send)

    with client_factory(Router([], default=default)) as client:
        assert client.get("/anything").status_code == 418


def test_redirect_slashes(client_factory: Callable[..., TestClient]) -> None:
    app = Router([Route("/with/", text("with")), Route("/without", text("without"))])
    with client_factory(app) as client:
        response = client.get("/with?x=1", follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "http://testserver/with/?x=1"
        response = client.get("/without/", follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "http://testserver/without"
        assert client.get("/with").text == "with"
        assert client.get("/other/", follow_redirects=False).status_code == 404

    app = Router([Route("/with/", text("with"))], redirect_slashes=False)
    with client_factory(app) as client:
        assert client.get("/with", follow_redirects=False).status_code == 404


def test_redirect_to_partial_match(client_factory: Callable[..., TestClient]) -> None:
    # A path that matches with a slash, even only partially (wrong method), is redirected.
    app = Router([Route("/p/", text("p"), methods=["POST"])])
    with client_factory(app) as client:
        assert client.get("/p", follow_redirects=False).status_code == 307


def test_no_redirect_for_websockets(client_factory: Callable[..., TestClient]) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    app = Router([WebSocketRoute("/ws/", ws)])
    with client_factory(app) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
            pass  # pragma: no cover
        assert info.value.code == 1000


def test_sync_endpoint_runs_in_thread_pool(client_factory: Callable[..., TestClient]) -> None:
    loop_threads: list[int] = []

    def sync_endpoint(request: Request) -> Response:
        return PlainTextResponse(str(threading.get_ident()))

    async def async_endpoint(request: Request) -> Response:
        loop_threads.append(threading.get_ident())
        return PlainTextResponse(str(threading.get_ident()))

    app = Router([Route("/sync", sync_endpoint), Route("/async", async_endpoint)])
    with client_factory(app) as client:
        loop_thread = client.get("/async").text
        assert client.get("/sync").text != loop_thread


def test_class_endpoint_is_an_asgi_app(client_factory: Callable[..., TestClient]) -> None:
    class Items(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            return PlainTextResponse("list")

    class Raw:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await PlainTextResponse("raw " + scope["method"])(scope, receive, send)

    route = Route("/raw", Raw())
    assert route.methods is None
    app = Router([Route("/items", Items), route])
    with client_factory(app) as client:
        assert client.get("/items").text == "list"
        assert client.delete("/raw").text == "raw DELETE"


def test_partial_endpoint_is_wrapped(client_factory: Callable[..., TestClient]) -> None:
    async def greet(request: Request, word: str) -> Response:
        return PlainTextResponse(word)

    app = Router([Route("/", functools.partial(greet, word="hi"), name="greet")])
    with client_factory(app) as client:
        assert client.get("/").text == "hi"


def test_scope_entries_set_by_router(client_factory: Callable[..., TestClient]) -> None:
    captured: dict[str, Any] = {}

    async def endpoint(request: Request) -> Response:
        captured.update(request.scope)
        return PlainTextResponse("ok")

    route = Route("/x/{n:int}", endpoint)
    router = Router([route])
    with client_factory(router) as client:
        client.get("/x/3")
    assert captured["router"] is router
    assert captured["route"] is route
    assert captured["endpoint"] is endpoint
    assert captured["path_params"] == {"n": 3}


def test_route_and_router_middleware(client_factory: Callable[..., TestClient]) -> None:
    calls: list[str] = []

    class Tag:
        def __init__(self, app: ASGIApp, tag: str) -> None:
            self.app = app
            self.tag = tag

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                calls.append(self.tag)
            await self.app(scope, receive, send)

    router = Router(
        [
            Route("/r", homepage, middleware=[Middleware(Tag, "route")]),
            Mount("/m", routes=[Route("/", homepage)], middleware=[Middleware(Tag, tag="mount")]),
            Route("/plain", homepage),
        ],
        middleware=[Middleware(Tag, "router-outer"), Middleware(Tag, "router-inner")],
    )
    with client_factory(router) as client:
        client.get("/r")
        assert calls == ["router-outer", "router-inner", "route"]
        calls.clear()
        client.get("/m/")
        assert calls == ["router-outer", "router-inner", "mount"]
        calls.clear()
        client.get("/plain")
        assert calls == ["router-outer", "router-inner"]


def test_route_equality_and_repr() -> None:
    assert Route("/", homepage) == Route("/", homepage)
    assert Route("/", homepage) != Route("/", homepage, methods=["POST"])
    assert WebSocketRoute("/ws", homepage) == WebSocketRoute("/ws", homepage)
    assert repr(Route("/", homepage)) == "Route(path='/', name='homepage', methods=['GET', 'HEAD'])"
    assert repr(WebSocketRoute("/ws", homepage)) == "WebSocketRoute(path='/ws', name='homepage')"
    assert Router([Route("/", homepage)]) == Router([Route("/", homepage)])


@pytest.mark.anyio
async def test_route_used_alone_as_an_app() -> None:
    route = Route("/only", homepage)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/other",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    await route(scope, receive, send)
    assert sent[0]["status"] == 404

    sent.clear()
    await route({**scope, "path": "/only"}, receive, send)
    assert sent[0]["status"] == 200


# -- websockets --------------------------------------------------------------------------------


def test_websocket_route(client_factory: Callable[..., TestClient]) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(
            {"room": websocket.path_params["room"], "url": str(websocket.url_for("ws", room=9))}
        )
        await websocket.close()

    app = Router([Route("/ws/{room:int}", homepage), WebSocketRoute("/ws/{room:int}", ws)])
    with client_factory(app) as client:
        with client.websocket_connect("/ws/5") as session:
            assert session.receive_json() == {"room": 5, "url": "ws://testserver/ws/9"}
        assert client.get("/ws/5").text == "home"


def test_websocket_not_found_closes(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(Router([Route("/", homepage)]))
    with client, pytest.raises(WebSocketDisconnect), client.websocket_connect("/missing"):
        pass  # pragma: no cover


# -- mounts ------------------------------------------------------------------------------------


def test_mount_root_path_and_route_path(client_factory: Callable[..., TestClient]) -> None:
    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "root_path": request.scope["root_path"],
                "path": request.scope["path"],
                "params": {k: str(v) for k, v in request.path_params.items()},
                "url": str(request.url_for("api:users:detail", version=2, id=7)),
            }
        )

    users = Router([Route("/{id:int}", info, name="detail")])
    app = Brillo(
        routes=[
            Mount(
                "/api/v{version:int}",
                routes=[Mount("/users", app=users, name="users")],
                name="api",
            )
        ]
    )
    with client_factory(app) as client:
        assert client.get("/api/v1/users/3").json() == {
            "root_path": "/api/v1/users",
            "path": "/api/v1/users/3",
            "params": {"version": "1", "id": "3"},
            "url": "http://testserver/api/v2/users/7",
        }


def test_mount_under_server_root_path(client_factory: Callable[..., TestClient]) -> None:
    async def info(request: Request) -> Response:
        return JSONResponse({"root": request.scope["root_path"], "url": str(request.url)})

    app = Brillo(routes=[Mount("/sub", routes=[Route("/x", info)])])
    with client_factory(app, root_path="/prefix") as client:
        # The path includes the root path, as a proxy stripping nothing sends it.
        assert client.get("/prefix/sub/x").json() == {
            "root": "/prefix/sub",
            "url": "http://testserver/prefix/sub/x",
        }


def test_mount_raw_app_sees_remaining_path(client_factory: Callable[..., TestClient]) -> None:
    from brillo._utils import get_route_path

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(get_route_path(scope))(scope, receive, send)

    app = Router([Mount("/static", app=raw, name="static")])
    with client_factory(app) as client:
        assert client.get("/static/css/site.css").text == "/css/site.css"
        assert client.get("/static/").text == "/"
        # "/static" itself is not under the mount: redirected to "/static/".
        assert client.get("/static", follow_redirects=False).status_code == 307
    assert app.url_path_for("static", path="/css/a.css") == "/static/css/a.css"
    assert Mount("/static", app=raw).routes == []


def test_empty_mount_matches_everything(client_factory: Callable[..., TestClient]) -> None:
    app = Router([Route("/first", text("first")), Mount("", routes=[Route("/x", text("x"))])])
    with client_factory(app) as client:
        assert client.get("/first").text == "first"
        assert client.get("/x").text == "x"


def test_mount_routes_property() -> None:
    routes = [Route("/", homepage)]
    mount = Mount("/m", routes=routes)
    assert mount.routes == routes
    assert isinstance(mount.app, Router)
    with pytest.raises(AssertionError, match="Either 'app=...', or 'routes='"):
        Mount("/m")


def test_mount_with_websocket(client_factory: Callable[..., TestClient]) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.scope["root_path"])
        await websocket.close()

    app = Brillo(routes=[Mount("/live", routes=[WebSocketRoute("/feed", ws)])])
    with client_factory(app) as client, client.websocket_connect("/live/feed") as session:
        assert session.receive_text() == "/live"


# -- hosts -------------------------------------------------------------------------------------


def test_host_routing_and_urls(client_factory: Callable[..., TestClient]) -> None:
    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "params": request.path_params,
                "url": str(request.url_for("tenants:home", tenant="zed")),
            }
        )

    tenant = Router([Route("/", info, name="home")])
    app = Brillo(
        routes=[
            Host("{tenant}.example.org", tenant, name="tenants"),
            Route("/", text("main")),
        ]
    )
    with client_factory(app, base_url="http://acme.example.org") as client:
        assert client.get("/").json() == {
            "params": {"tenant": "acme"},
            "url": "http://zed.example.org/",
        }
    with client_factory(app, base_url="http://other.net") as client:
        assert client.get("/").text == "main"

    url = app.url_path_for("tenants:home", tenant="acme")
    assert url == "/"
    assert url.host == "acme.example.org"
    assert Host("api.example.org", tenant).routes == tenant.routes


def test_host_url_path_for_own_name() -> None:
    host = Host("{sub}.example.org", Router([]), name="site")
    url = host.url_path_for("site", sub="docs", path="/guide")
    assert (str(url), url.host) == ("/guide", "docs.example.org")
    with pytest.raises(NoMatchFound):
        host.url_path_for("other")


def test_host_port_is_ignored(client_factory: Callable[..., TestClient]) -> None:
    app = Router([Host("api.example.org", Router([Route("/", text("api"))]))])
    with client_factory(app, base_url="http://api.example.org:8080") as client:
        assert client.get("/").text == "api"
        for host in ("api.example.org:000080", "api.example.org:65536", "api.example.org:0"):
            assert client.get("/", headers={"host": host}).text == "api"


def _host_app() -> Router:
    return Router(
        [
            Host("{sub}.Example.org", Router([Route("/", echo_params)]), name="sub"),
            Host("[::1]", PlainTextResponse("loopback")),
            Host("[v1.foo]", PlainTextResponse("future")),
            Route("/", text("fallback")),
        ]
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("API.example.ORG", '{"sub":"api"}'),
        ("api.example.org:8000", '{"sub":"api"}'),
        ("[::1]", "loopback"),
        ("[::1]:8000", "loopback"),
        ("[0:0::1]", "loopback"),
        ("[v1.foo]", "future"),
        # Not well-formed hosts: no Host route matches them.
        ("api.example.org:evil", "fallback"),
        ("api.example.org:", "fallback"),
        ("evil.com/x.example.org", "fallback"),
        ("evil.com?.example.org", "fallback"),
        ("evil.com#.example.org", "fallback"),
        ("user@api.example.org", "fallback"),
        ("[::1]evil.example.org", "fallback"),
        ("[:::]", "fallback"),
        ("[::1", "fallback"),
        ("[::2]", "fallback"),
        ("[::ffff:999.1.1.1]", "fallback"),
        ("[V1.foo]", "fallback"),
        ("api .example.org", "fallback"),
    ],
)
def test_host_routing_parses_the_host_header(
    client_factory: Callable[..., TestClient], host: str, expected: str
) -> None:
    with client_factory(_host_app()) as client:
        assert client.get("/", headers={"host": host}).text == expected


def test_host_and_mount_repr_show_an_unnamed_route_as_empty_name() -> None:
    app = Router([])
    assert repr(Mount("/m", app=app)) == f"Mount(path='/m', name='', app={app!r})"
    assert repr(Mount("/m", app=app, name="n")) == f"Mount(path='/m', name='n', app={app!r})"
    assert repr(Host("e.com", app=app)) == f"Host(host='e.com', name='', app={app!r})"


# -- url_path_for ------------------------------------------------------------------------------


def test_url_path_for() -> None:
    router = Router(
        [
            Route("/", homepage, name="home"),
            Route("/users/{id:int}", homepage, name="user"),
            WebSocketRoute("/ws/{room}", homepage, name="room"),
            Mount("/files", app=Router([]), name="files"),
        ]
    )
    assert router.url_path_for("home") == "/"
    user = router.url_path_for("user", id=5)
    assert isinstance(user, URLPath)
    assert user == "/users/5"
    assert user.protocol == "http"
    room = router.url_path_for("room", room="lobby")
    assert room == "/ws/lobby"
    assert room.protocol == "websocket"
    assert router.url_path_for("files", path="a/b") == "/files/a/b"


def test_url_path_for_no_match_message() -> None:
    router = Router([Route("/users/{id:int}", homepage, name="user")])
    with pytest.raises(NoMatchFound, match='No route exists for name "user" and params "".'):
        router.url_path_for("user")
    with pytest.raises(NoMatchFound, match='name "user" and params "id, extra"'):
        router.url_path_for("user", id=1, extra=2)
    with pytest.raises(NoMatchFound, match='name "nobody"'):
        router.url_path_for("nobody")


def test_url_path_for_invalid_value() -> None:
    router = Router([Route("/users/{id:int}", homepage, name="user")])
    with pytest.raises(AssertionError, match="Negative"):
        router.url_path_for("user", id=-1)


def test_url_path_for_unnamed_mount_children() -> None:
    router = Router([Mount("/api", routes=[Route("/ping", homepage, name="ping")])])
    assert router.url_path_for("ping") == "/api/ping"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/evil.com/a", "/%2Fevil.com/a"),
        ("\\evil.com/a", "/%5Cevil.com/a"),
        ("/\\evil.com", "/%2F%5Cevil.com"),
        ("a/b", "/a/b"),
        ("a//b", "/a//b"),
    ],
)
def test_url_path_for_is_never_protocol_relative(value: str, expected: str) -> None:
    # "//evil.com/a" or "/\\evil.com" in a link or a Location header is another site.
    router = Router(
        [
            Route("/{rest:path}", homepage, name="page"),
            WebSocketRoute("/{rest:path}", homepage, name="socket"),
            Mount("", app=Router([]), name="files"),
            Mount("", routes=[Route("/{rest:path}", homepage, name="inner")], name="m"),
            Host("e.com", Router([]), name="site"),
        ]
    )
    assert router.url_path_for("page", rest=value) == expected
    assert router.url_path_for("socket", rest=value) == expected
    assert router.url_path_for("m:inner", rest=value) == expected
    assert router.url_path_for("site", path="/" + value) == expected
    assert not router.url_path_for("files", path=value).startswith("//")


def test_url_for_with_slashes_in_a_value_stays_on_this_host(
    client_factory: Callable[..., TestClient],
) -> None:
    # An app redirecting to url_for(...).path with a user-chosen value: "/%2Fevil.com" is a
    # path on this site, where "//evil.com" would send the browser to evil.com.
    async def go(request: Request) -> Response:
        target = request.url_for("page", rest=request.query_params["to"])
        return RedirectResponse(target.path, status_code=302)

    app = Brillo(routes=[Route("/go", go), Route("/{rest:path}", homepage, name="page")])
    with client_factory(app) as client:
        response = client.get("/go", params={"to": "/evil.com"}, follow_redirects=False)
        assert response.headers["location"] == "/%2Fevil.com"
        response = client.get("/go", params={"to": "\\evil.com"}, follow_redirects=False)
        assert response.headers["location"] == "/%5Cevil.com"


def test_url_path_for_keeps_values_that_look_like_slots() -> None:
    route = Route("/{a}/{b}", homepage, name="r")
    assert route.url_path_for("r", a="{b}", b="1") == "/{b}/1"
    assert route.url_path_for("r", a="{a}", b="{a}") == "/{a}/{a}"
    host = Host("{sub}.e.com", Router([Route("/", homepage, name="home")]), name="h")
    url = host.url_path_for("h:home", sub="{sub}")
    assert url.host == "{sub}.e.com"


def test_url_path_for_mount_keeps_missing_params() -> None:
    mount = Mount("/{tenant}/{area}", routes=[Route("/users/{id}", homepage, name="users")])
    assert mount.url_path_for("users", id="7") == "/{tenant}/{area}/users/7"
    assert mount.url_path_for("users", id="7", area="x") == "/{tenant}/x/users/7"
    with pytest.raises(NoMatchFound):
        mount.url_path_for("users")  # the route's own parameter is still required


@pytest.mark.anyio
async def test_redirect_slashes_never_redirects_off_site() -> None:
    app = Router([Route("/{rest:path}/", homepage)])

    async def location(path: str) -> str:
        # No Host header and no server address: the redirect can only be a path.
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "root_path": "",
            "query_string": b"",
            "headers": [],
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 307
        location: bytes = dict(sent[0]["headers"])[b"location"]
        return location.decode()

    assert await location("//evil.com") == "/%2Fevil.com/"
    assert await location("/\\evil.com") == "/%5Cevil.com/"
    assert await location("/a/b") == "/a/b/"


def test_route_subclass_without_route_init_answers_405(
    client_factory: Callable[..., TestClient],
) -> None:
    # FastAPI's APIRoute sets up its own attributes and never calls Route.__init__.
    class OwnRoute(Route):
        def __init__(self, path: str, endpoint: Callable[..., Any]) -> None:
            self.path = path
            self.endpoint = endpoint
            self.name = "own"
            self.methods = {"POST"}
            self.app = endpoint
            self.path_regex, self.path_format, self.param_convertors = compile_path(path)

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return super().matches(scope)

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("posted")(scope, receive, send)

    for app in (Router([OwnRoute("/x", raw)]), Brillo(routes=[OwnRoute("/x", raw)])):
        with client_factory(app) as client:
            assert client.post("/x").text == "posted"
            response = client.get("/x")
            assert response.status_code == 405
            assert response.headers["allow"] == "POST"


def test_router_subclass_without_router_init_routes(
    client_factory: Callable[..., TestClient],
) -> None:
    class OwnRouter(Router):
        def __init__(self, routes: list[BaseRoute]) -> None:
            self.routes = routes
            self.redirect_slashes = False
            self.default = self.not_found
            self.middleware_stack = self.app

    app = Brillo(routes=[Mount("/m", app=OwnRouter([Route("/x", text("x"))]))])
    with client_factory(app) as client:
        assert client.get("/m/x").text == "x"
        assert client.get("/m/y").status_code == 404


# -- route table changes -----------------------------------------------------------------------


def test_routes_appended_after_first_request(client_factory: Callable[..., TestClient]) -> None:
    router = Router([Route("/a", text("a"))])
    with client_factory(router) as client:
        assert client.get("/b").status_code == 404
        router.routes.append(Route("/b", text("b")))
        assert client.get("/b").text == "b"
        router.routes.insert(0, Route("/b", text("b0")))
        assert client.get("/b").text == "b0"
        del router.routes[0]
        assert client.get("/b").text == "b"
        router.routes[0] = Route("/a", text("a2"))
        assert client.get("/a").text == "a2"
        router.routes += [Route("/c", text("c"))]
        assert client.get("/c").text == "c"
        router.routes.remove(router.routes[-1])
        assert client.get("/c").status_code == 404
        router.routes = [Route("/d", text("d"))]
        assert client.get("/d").text == "d"
        assert client.get("/a").status_code == 404
        router.add_route("/e", text("e"))
        router.mount("/f", Router([Route("/", text("f"))]))
        assert client.get("/e").text == "e"
        assert client.get("/f/").text == "f"
        router.routes.clear()
        assert client.get("/d").status_code == 404
    assert isinstance(router.routes, list)


# -- the index agrees with linear first-match --------------------------------------------------

SEGMENTS = ["a", "b", "c", "", "{x}", "{n:int}", "{p:path}", "a{y}"]
REQUEST_SEGMENTS = ["a", "b", "c", "", "1", "zz", "ab", "a1", "a.b"]


def random_path(rng: random.Random, *, allow_path_param: bool = True) -> str:
    segments: list[str] = []
    names: set[str] = set()
    for _ in range(rng.randint(0, 3)):
        segment = rng.choice(SEGMENTS)
        if segment == "{p:path}" and not allow_path_param:
            continue
        name = segment[1:].split(":")[0].rstrip("}") if segment.startswith("{") else None
        if segment == "a{y}":
            name = "y"
        if name is not None:
            if name in names:
                continue
            names.add(name)
        segments.append(segment)
    return "/" + "/".join(segments)


def random_table(rng: random.Random) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for _ in range(rng.randint(1, 25)):
        kind = rng.random()
        if kind < 0.55:
            methods = rng.choice([None, ["GET"], ["POST"], ["GET", "POST"]])
            routes.append(Route(random_path(rng), homepage, methods=methods))
        elif kind < 0.75:
            routes.append(WebSocketRoute(random_path(rng), homepage))
        elif kind < 0.95:
            mount_path = random_path(rng, allow_path_param=False).rstrip("/")
            if "{x}" in mount_path or "{n:int}" in mount_path:
                mount_path = mount_path.replace("{x}", "{mx}").replace("{n:int}", "{mn:int}")
            routes.append(Mount(mount_path, routes=[]))
        else:
            routes.append(Host(rng.choice(["a.example", "{h}.example"]), Router([])))
    return routes


def linear_match(routes: list[BaseRoute], scope: Scope) -> tuple[BaseRoute | None, Match]:
    partial: BaseRoute | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, Match.FULL
        if match is Match.PARTIAL and partial is None:
            partial = route
    return (partial, Match.PARTIAL) if partial is not None else (None, Match.NONE)


def indexed_match(router: Router, scope: Scope) -> tuple[BaseRoute | None, Match]:
    from brillo._utils import get_route_path

    candidates = router._candidates(get_route_path(scope))
    # Candidates are always in declaration order.
    positions = [next(i for i, r in enumerate(router.routes) if r is c) for c in candidates]
    assert positions == sorted(positions)
    return linear_match(list(candidates), scope)


def random_request_path(rng: random.Random, routes: list[BaseRoute]) -> str:
    if rng.random() < 0.5:
        # Instantiate a route's own pattern, so that matches are frequent.
        route = rng.choice(routes)
        pattern = getattr(route, "path", "/")
        parts = []
        for segment in pattern.split("/")[1:]:
            if segment.startswith("{") or "{" in segment:
                parts.append(rng.choice(["1", "zz", "a1", "x/y"]))
            else:
                parts.append(segment)
        path = "/" + "/".join(parts)
        if isinstance(route, Mount):
            path += "/" + rng.choice(["", "q", "1/2"])
        return path
    count = rng.randint(0, 4)
    return "/" + "/".join(rng.choice(REQUEST_SEGMENTS) for _ in range(count))


def test_index_agrees_with_linear_first_match() -> None:
    rng = random.Random(20240601)
    checked = 0
    for _ in range(300):
        routes = random_table(rng)
        router = Router(routes)
        for _ in range(40):
            path = random_request_path(rng, routes)
            if rng.random() < 0.05:
                path += "\n"
            scope_type = rng.choice(["http", "http", "websocket"])
            scope: Scope = {
                "type": scope_type,
                "path": path,
                "root_path": "",
                "headers": [(b"host", rng.choice([b"a.example", b"b.example"]))],
            }
            if scope_type == "http":
                scope["method"] = rng.choice(["GET", "POST", "DELETE"])
            expected = linear_match(routes, scope)
            assert indexed_match(router, scope) == expected, (path, routes)
            assert resolved_match(router, scope) == expected, (path, routes)
            checked += 1
    assert checked == 12000


def resolved_match(router: Router, scope: Scope) -> tuple[BaseRoute | None, Match]:
    """What ``Router._resolve`` (the dispatcher, with its own inlined matching) picks."""
    resolved = dict(scope)
    target = router._resolve(resolved)
    for route in router.routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        exact = type(route) in (Route, WebSocketRoute)  # a subclass may override handle
        served = route.app if exact else route.handle  # type: ignore[attr-defined]
        if match is Match.FULL and target == served:
            assert resolved["path_params"] == child_scope["path_params"]
            assert resolved["endpoint"] is child_scope["endpoint"]
            return route, Match.FULL
        if match is Match.PARTIAL and target == route.handle:
            return route, Match.PARTIAL
    assert target == router.default or isinstance(target, RedirectResponse)
    return None, Match.NONE


def test_index_respects_overridden_matches() -> None:
    class Anything(Route):
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return Match.FULL, {"endpoint": self.endpoint, "path_params": {}}

    special = Anything("/never/literal", homepage)
    router = Router([Route("/x", homepage), special])
    assert special in router._candidates("/completely/else")


# -- max_body_size -----------------------------------------------------------------------------


async def read_body(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(str(len(body)))


def chunks(total: int, size: int = 10) -> Any:
    def generate() -> Any:
        sent = 0
        while sent < total:
            step = min(size, total - sent)
            sent += step
            yield b"x" * step

    return generate()


def test_max_body_size_app_route_mount(client_factory: Callable[..., TestClient]) -> None:
    app = Brillo(
        routes=[
            Route("/default", read_body, methods=["POST"]),
            Route("/big", read_body, methods=["POST"], max_body_size=100),
            Mount(
                "/m",
                routes=[
                    Route("/r", read_body, methods=["POST"]),
                    Route("/tiny", read_body, methods=["POST"], max_body_size=2),
                ],
                max_body_size=50,
            ),
        ],
        max_body_size=20,
    )
    with client_factory(app) as client:
        assert client.post("/default", content=b"x" * 20).text == "20"
        response = client.post("/default", content=b"x" * 21)
        assert (response.status_code, response.text) == (413, "Content Too Large")
        # Without Content-Length the bytes are counted as they arrive.
        assert client.post("/default", content=chunks(15)).text == "15"
        assert client.post("/default", content=chunks(35)).status_code == 413
        assert client.post("/big", content=b"x" * 100).text == "100"
        assert client.post("/big", content=chunks(101)).status_code == 413
        assert client.post("/m/r", content=b"x" * 50).text == "50"
        assert client.post("/m/r", content=b"x" * 51).status_code == 413
        assert client.post("/m/tiny", content=b"xxx").status_code == 413


def test_max_body_size_on_mounted_raw_app(client_factory: Callable[..., TestClient]) -> None:
    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await read_body(Request(scope, receive))
        await response(scope, receive, send)

    app = Brillo(routes=[Mount("/raw", app=raw_app, max_body_size=5)])
    with client_factory(app) as client:
        assert client.post("/raw/x", content=b"12345").text == "5"
        assert client.post("/raw/x", content=b"123456").status_code == 413
        assert client.post("/raw/x", content=chunks(6, 2)).status_code == 413


def test_max_body_size_bare_router(client_factory: Callable[..., TestClient]) -> None:
    router = Router([Route("/", read_body, methods=["POST"], max_body_size=3)])
    with client_factory(router) as client:
        response = client.post("/", content=b"1234")
        assert (response.status_code, response.text) == (413, "Content Too Large")
        assert client.post("/", content=chunks(4, 1)).status_code == 413
        assert client.post("/", content=b"123").text == "3"


def test_max_body_size_on_router(client_factory: Callable[..., TestClient]) -> None:
    router = Router(
        [
            Route("/", read_body, methods=["POST"]),
            Route("/big", read_body, methods=["POST"], max_body_size=100),
        ],
        max_body_size=10,
    )
    with client_factory(router) as client:
        assert client.post("/", content=b"x" * 10).text == "10"
        assert client.post("/", content=b"x" * 11).status_code == 413
        assert client.post("/", content=chunks(11, 3)).status_code == 413
        assert client.post("/big", content=b"x" * 50).text == "50"
        assert client.post("/big", content=chunks(50)).text == "50"


async def limit_in_scope(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"size": len(body), "limit": request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)})


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "streamed"])
def test_route_limit_above_app_limit_wins(
    client_factory: Callable[..., TestClient], streamed: bool
) -> None:
    app = Brillo(
        routes=[
            Route("/small", limit_in_scope, methods=["POST"]),
            Route("/upload", limit_in_scope, methods=["POST"], max_body_size=100),
        ],
        max_body_size=10,
    )

    def body(size: int) -> Any:
        return chunks(size) if streamed else b"x" * size

    with client_factory(app) as client:
        assert client.post("/upload", content=body(50)).json() == {"size": 50, "limit": 100}
        assert client.post("/upload", content=body(101)).status_code == 413
        assert client.post("/small", content=body(10)).json() == {"size": 10, "limit": 10}
        assert client.post("/small", content=body(50)).status_code == 413


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "streamed"])
def test_route_limit_below_middleware_limit_wins(
    client_factory: Callable[..., TestClient], streamed: bool
) -> None:
    app = Brillo(
        routes=[
            Route("/", limit_in_scope, methods=["POST"]),
            Route("/tiny", limit_in_scope, methods=["POST"], max_body_size=10),
        ],
        middleware=[Middleware(RequestBodyLimitMiddleware, max_body_size=100)],
    )

    def body(size: int) -> Any:
        return chunks(size) if streamed else b"x" * size

    with client_factory(app) as client:
        response = client.post("/tiny", content=body(50))
        assert (response.status_code, response.text) == (413, "Content Too Large")
        assert client.post("/tiny", content=body(10)).json() == {"size": 10, "limit": 10}
        assert client.post("/", content=body(50)).json() == {"size": 50, "limit": 100}
        assert client.post("/", content=body(101)).status_code == 413


def test_middleware_inside_route_limit_wins(client_factory: Callable[..., TestClient]) -> None:
    # max_body_size wraps the route's middleware, so a limit in that middleware is innermost.
    route = Route(
        "/",
        limit_in_scope,
        methods=["POST"],
        middleware=[Middleware(RequestBodyLimitMiddleware, max_body_size=5)],
        max_body_size=100,
    )
    app = Brillo(routes=[Mount("/m", routes=[route], max_body_size=1000)], max_body_size=1)
    with client_factory(app) as client:
        assert client.post("/m/", content=b"x" * 5).json() == {"size": 5, "limit": 5}
        assert client.post("/m/", content=b"x" * 6).status_code == 413
        assert client.post("/m/", content=chunks(6, 2)).status_code == 413


def test_body_limit_when_endpoint_ignores_body(client_factory: Callable[..., TestClient]) -> None:
    app = Brillo(routes=[Route("/", homepage, methods=["POST"], max_body_size=10)])
    with client_factory(app) as client:
        # A Content-Length over the limit is refused even though the body is never read...
        assert client.post("/", content=b"x" * 11).status_code == 413
        # ... while unread streamed bytes are never counted.
        assert client.post("/", content=chunks(11)).text == "home"
        assert client.post("/", content=b"x" * 10).text == "home"


def test_body_limit_rendered_by_413_handler(client_factory: Callable[..., TestClient]) -> None:
    async def too_large(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("custom", status_code=413)

    app = Brillo(
        routes=[Route("/", read_body, methods=["POST"], max_body_size=10)],
        exception_handlers={413: too_large},
    )
    with client_factory(app) as client:
        response = client.post("/", content=chunks(20))
        assert (response.status_code, response.text) == (413, "custom")


def test_body_limit_checked_after_method(client_factory: Callable[..., TestClient]) -> None:
    app = Brillo(routes=[Route("/", read_body, methods=["POST"], max_body_size=1)])
    with client_factory(app) as client:
        assert client.put("/", content=b"x" * 10).status_code == 405


def test_no_limit_wrapper_without_max_body_size() -> None:
    plain = Route("/", read_body)
    limited = Route("/", read_body, max_body_size=5)
    assert not isinstance(plain.app, RequestBodyLimitMiddleware)
    assert isinstance(limited.app, RequestBodyLimitMiddleware)
    assert limited.app.max_body_size == limited.max_body_size == 5
    assert Mount("/m", app=plain).app is plain
    assert isinstance(Mount("/m", app=plain, max_body_size=5).app, RequestBodyLimitMiddleware)
    router = Router([plain])
    assert router.middleware_stack == router.app
    assert isinstance(Router(max_body_size=5).middleware_stack, RequestBodyLimitMiddleware)
    with pytest.raises(ValueError, match="max_body_size"):
        Route("/", read_body, max_body_size=-1)


# -- lifespan ----------------------------------------------------------------------------------


class LifespanDriver:
    """The server side of the lifespan protocol, scripted."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.incoming = ["lifespan.startup", "lifespan.shutdown"]
        self.startup_done = anyio.Event()

    async def receive(self) -> Message:
        if self.incoming:
            kind = self.incoming.pop(0)
            if kind == "lifespan.shutdown":
                await self.startup_done.wait()
            return {"type": kind}
        raise AssertionError("received after shutdown")  # pragma: no cover

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"].startswith("lifespan.startup"):
            self.startup_done.set()


@pytest.mark.anyio
async def test_lifespan_state_and_order() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        events.append(f"start {type(app).__name__}")
        yield {"db": "conn"}
        events.append("stop")

    app = Brillo(lifespan=lifespan)
    driver = LifespanDriver()
    state: dict[str, Any] = {}
    with anyio.fail_after(5):
        await app({"type": "lifespan", "state": state}, driver.receive, driver.send)
    assert events == ["start Brillo", "stop"]
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert state == {"db": "conn"}


@pytest.mark.anyio
async def test_lifespan_startup_failure_is_reported_and_raised() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        raise ConnectionError("database unreachable")
        yield  # pragma: no cover

    router = Router(lifespan=lifespan)
    driver = LifespanDriver()
    with anyio.fail_after(5), pytest.raises(ConnectionError, match="unreachable"):
        await router({"type": "lifespan", "state": {}}, driver.receive, driver.send)
    assert [m["type"] for m in driver.sent] == ["lifespan.startup.failed"]
    assert "ConnectionError: database unreachable" in driver.sent[0]["message"]


@pytest.mark.anyio
async def test_lifespan_shutdown_failure_is_reported_and_raised() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        raise RuntimeError("flush failed")

    router = Router(lifespan=lifespan)
    driver = LifespanDriver()
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="flush failed"):
        await router({"type": "lifespan"}, driver.receive, driver.send)
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.failed",
    ]
    assert "flush failed" in driver.sent[1]["message"]


@pytest.mark.anyio
async def test_lifespan_state_without_server_support() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, int]]:
        yield {"x": 1}

    driver = LifespanDriver()
    with anyio.fail_after(5), pytest.raises(RuntimeError, match='does not support "state"'):
        await Router(lifespan=lifespan)({"type": "lifespan"}, driver.receive, driver.send)
    assert driver.sent[0]["type"] == "lifespan.startup.failed"


@pytest.mark.anyio
async def test_default_lifespan() -> None:
    driver = LifespanDriver()
    with anyio.fail_after(5):
        await Router()({"type": "lifespan"}, driver.receive, driver.send)
    assert [m["type"] for m in driver.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_lifespan_state_reaches_requests(client_factory: Callable[..., TestClient]) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello"}

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(request.state.greeting)

    app = Brillo(routes=[Route("/", endpoint)], lifespan=lifespan)
    with client_factory(app) as client:
        assert client.get("/").text == "hello"


def test_route_list_mutators_rebuild_the_index() -> None:
    a, b, c = Route("/a", homepage), Route("/b", homepage), Route("/c", homepage)
    router = Router([a])
    assert router._candidates("/a") == (a,)
    router.routes.extend([b, c])
    assert router._candidates("/c") == (c,)
    assert router.routes.pop() is c
    assert router._candidates("/c") == ()
    router.routes.reverse()
    assert list(router.routes) == [b, a]
    router.routes.sort(key=lambda route: getattr(route, "path", ""))
    assert list(router.routes) == [a, b]
    router.routes *= 2
    assert router._candidates("/a") == (a, a)


def test_url_path_for_mount_and_host_mismatches() -> None:
    inner = Router([Route("/x/{id:int}", homepage, name="x")])
    router = Router(
        [
            Mount("/m/{tenant}", app=inner, name="m"),
            Host("{sub}.example.org", inner, name="h"),
            Host("plain.example.org", inner),
        ]
    )
    assert router.url_path_for("m:x", tenant="t", id=1) == "/m/t/x/1"
    assert router.url_path_for("m", tenant="t", path="/p/q") == "/m/t/p/q"
    url = router.url_path_for("h:x", sub="api", id=2)
    assert (url, url.host) == ("/x/2", "api.example.org")
    # A mount parameter without a value keeps its slot (as in Starlette) ...
    assert router.url_path_for("m:x", id=1) == "/m/{tenant}/x/1"
    with pytest.raises(NoMatchFound):  # ... but the mount's own name needs all of them
        router.url_path_for("m", path="/p")  # tenant missing
    with pytest.raises(NoMatchFound):
        router.url_path_for("m:nothing", tenant="t")
    with pytest.raises(NoMatchFound):
        router.url_path_for("h", path="/y")  # sub missing


def test_class_endpoint_name() -> None:
    class Items(HTTPEndpoint):
        pass

    assert Route("/items", Items).name == "Items"


def test_websocket_route_middleware_and_mount_params(
    client_factory: Callable[..., TestClient],
) -> None:
    seen: list[str] = []

    class Tag:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["type"])
            await self.app(scope, receive, send)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(websocket.path_params)
        await websocket.close()

    app = Brillo(
        routes=[
            Mount(
                "/org/{org}",
                routes=[WebSocketRoute("/room/{room:int}", ws, middleware=[Middleware(Tag)])],
            )
        ]
    )
    with client_factory(app) as client, client.websocket_connect("/org/acme/room/7") as session:
        assert session.receive_json() == {"org": "acme", "room": 7}
    assert seen == ["websocket"]
