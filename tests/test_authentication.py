from __future__ import annotations

from typing import Any

import pytest

from brillo.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
    UnauthenticatedUser,
    has_required_scope,
    requires,
)
from brillo.exceptions import HTTPException
from brillo.middleware.authentication import AuthenticationMiddleware
from brillo.requests import HTTPConnection, Request
from brillo.responses import JSONResponse, PlainTextResponse, Response
from brillo.routing import Route, Router, WebSocketRoute
from brillo.websockets import WebSocket
from tests.support.asgi import call_http, call_ws, http_scope, ws_scope


class TokenBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError(f"Unsupported scheme {scheme!r}")
        if token == "admin":
            return AuthCredentials(["authenticated", "admin"]), SimpleUser("root")
        if token == "user":
            return AuthCredentials(["authenticated"]), SimpleUser("ada")
        raise AuthenticationError("Invalid token " + token)


async def whoami(request: Request) -> Response:
    return JSONResponse(
        {
            "user": request.user.display_name,
            "authenticated": request.user.is_authenticated,
            "scopes": request.auth.scopes,
        }
    )


@requires("admin")
async def admin_async(request: Request) -> Response:
    return PlainTextResponse("admin area")


@requires(["authenticated", "admin"], status_code=404)
def admin_sync(request: Request) -> Response:
    return PlainTextResponse("admin sync")


@requires("authenticated", redirect="login")
async def dashboard(request: Request) -> Response:
    return PlainTextResponse("dashboard")


@requires("authenticated", redirect="login")
def dashboard_sync(request: Request) -> Response:
    return PlainTextResponse("dashboard sync")


async def login(request: Request) -> Response:
    return PlainTextResponse("login page")


class Handlers:
    @requires("authenticated")
    async def method(self, request: Request) -> Response:
        return PlainTextResponse("method ok")


@requires("admin")
async def ws_admin(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.user.display_name}")
    await websocket.close()


async def ws_open(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        {"user": websocket.user.display_name, "scopes": websocket.auth.scopes}
    )
    await websocket.close()


router = Router(
    routes=[
        Route("/whoami", whoami),
        Route("/admin", admin_async),
        Route("/admin-sync", admin_sync),
        Route("/dashboard", dashboard),
        Route("/dashboard-sync", dashboard_sync),
        Route("/login", login, name="login"),
        Route("/method", Handlers().method),
        WebSocketRoute("/ws-admin", ws_admin),
        WebSocketRoute("/ws", ws_open),
    ]
)
app = AuthenticationMiddleware(router, backend=TokenBackend())


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.mark.anyio
async def test_anonymous_and_authenticated_users() -> None:
    anon = await call_http(app, http_scope("/whoami"))
    assert anon.status == 200
    assert anon.body == b'{"user":"","authenticated":false,"scopes":[]}'
    user = await call_http(app, http_scope("/whoami", headers=auth("user")))
    assert user.body == b'{"user":"ada","authenticated":true,"scopes":["authenticated"]}'


@pytest.mark.anyio
async def test_authentication_error_default_400() -> None:
    result = await call_http(app, http_scope("/whoami", headers=auth("nope")))
    assert (result.status, result.body) == (400, b"Invalid token nope")
    assert result.header("content-type") == "text/plain; charset=utf-8"


@pytest.mark.anyio
async def test_custom_on_error_sync_and_async() -> None:
    def on_error(conn: HTTPConnection, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=401)

    async def on_error_async(conn: HTTPConnection, exc: Exception) -> Response:
        return PlainTextResponse("async " + str(exc), status_code=401)

    sync_app = AuthenticationMiddleware(router, TokenBackend(), on_error=on_error)
    result = await call_http(sync_app, http_scope("/whoami", headers=auth("x")))
    assert (result.status, result.body) == (401, b'{"error":"Invalid token x"}')
    async_app = AuthenticationMiddleware(router, TokenBackend(), on_error=on_error_async)  # type: ignore[arg-type]
    result = await call_http(async_app, http_scope("/whoami", headers=auth("x")))
    assert (result.status, result.body) == (401, b"async Invalid token x")


@pytest.mark.anyio
async def test_requires_async() -> None:
    ok = await call_http(app, http_scope("/admin", headers=auth("admin")))
    assert (ok.status, ok.body) == (200, b"admin area")
    with pytest.raises(HTTPException) as info:
        await call_http(app, http_scope("/admin", headers=auth("user")))
    assert info.value.status_code == 403


@pytest.mark.anyio
async def test_requires_sync_with_status_code() -> None:
    ok = await call_http(app, http_scope("/admin-sync", headers=auth("admin")))
    assert ok.body == b"admin sync"
    with pytest.raises(HTTPException) as info:
        await call_http(app, http_scope("/admin-sync"))
    assert info.value.status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/dashboard", "/dashboard-sync"])
async def test_requires_redirect_with_next(path: str) -> None:
    result = await call_http(app, http_scope(path, query=b"tab=1"))
    assert result.status == 303
    expected = f"http://testserver/login?next=http%3A%2F%2Ftestserver{path.replace('/', '%2F')}"
    assert result.header("location") == expected + "%3Ftab%3D1"
    ok = await call_http(app, http_scope(path, headers=auth("user")))
    assert ok.status == 200


@pytest.mark.anyio
async def test_requires_on_methods() -> None:
    assert (await call_http(app, http_scope("/method", headers=auth("user")))).body == b"method ok"
    with pytest.raises(HTTPException):
        await call_http(app, http_scope("/method"))


@pytest.mark.anyio
async def test_requires_websocket() -> None:
    denied = await call_ws(app, ws_scope("/ws-admin", headers=auth("user")))
    assert denied == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    allowed = await call_ws(app, ws_scope("/ws-admin", headers=auth("admin")))
    assert allowed[0]["type"] == "websocket.accept"
    assert allowed[1] == {"type": "websocket.send", "text": "hello root"}


@pytest.mark.anyio
async def test_websocket_user_and_auth() -> None:
    sent = await call_ws(app, ws_scope("/ws", headers=auth("user")))
    assert sent[1]["text"] == '{"user":"ada","scopes":["authenticated"]}'


@pytest.mark.anyio
async def test_websocket_authentication_error_closes_1008_with_reason() -> None:
    sent = await call_ws(app, ws_scope("/ws", headers=auth("bad")))
    assert sent == [
        {"type": "websocket.accept", "subprotocol": None},
        {"type": "websocket.close", "code": 1008, "reason": "Invalid token bad"},
    ]


@pytest.mark.anyio
async def test_websocket_authentication_error_echoes_first_subprotocol() -> None:
    scope = ws_scope("/ws", headers=auth("bad"))
    scope["subprotocols"] = ["graphql-ws", "chat"]
    sent = await call_ws(app, scope)
    assert sent[0] == {"type": "websocket.accept", "subprotocol": "graphql-ws"}
    assert sent[1]["code"] == 1008


@pytest.mark.anyio
async def test_websocket_long_reason_truncated_to_123_utf8_bytes() -> None:
    token = "\u00e9" * 200  # 2 bytes each in UTF-8
    sent = await call_ws(app, ws_scope("/ws", headers=[("authorization", "Bearer x")]))
    assert sent[1]["reason"] == "Invalid token x"

    class LongBackend(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> None:
            raise AuthenticationError(token)

    sent = await call_ws(AuthenticationMiddleware(router, LongBackend()), ws_scope("/ws"))
    reason = sent[1]["reason"]
    assert len(reason.encode("utf-8")) <= 123
    assert reason == "\u00e9" * 61


@pytest.mark.anyio
async def test_lifespan_untouched() -> None:
    scopes: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)

    await AuthenticationMiddleware(inner, TokenBackend())({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert "user" not in scopes[0]


def test_requires_needs_request_or_websocket_parameter() -> None:
    with pytest.raises(TypeError, match='No "request" or "websocket" argument'):

        @requires("x")
        async def endpoint(req: Request) -> None: ...


@pytest.mark.anyio
async def test_requires_asserts_connection_type() -> None:
    @requires("x")
    async def endpoint(request: Any) -> None: ...

    with pytest.raises(AssertionError, match="must be a Request"):
        await endpoint("not a request")


def test_users_and_credentials() -> None:
    user = SimpleUser("ada")
    assert (user.is_authenticated, user.display_name, user.identity) == (True, "ada", "ada")
    anon = UnauthenticatedUser()
    assert (anon.is_authenticated, anon.display_name, anon.identity) == (False, "", "")
    assert AuthCredentials().scopes == []
    assert AuthCredentials(("a", "b")).scopes == ["a", "b"]
    conn = HTTPConnection({"type": "http", "auth": AuthCredentials(["a", "b"]), "headers": []})
    assert has_required_scope(conn, ["a", "b"])
    assert has_required_scope(conn, [])
    assert not has_required_scope(conn, ["a", "c"])


@pytest.mark.anyio
async def test_requires_on_http_endpoint_method() -> None:
    endpoints = pytest.importorskip("brillo.endpoints")

    class Profile(endpoints.HTTPEndpoint):  # type: ignore[misc,name-defined]
        @requires("authenticated")
        async def get(self, request: Request) -> Response:
            return PlainTextResponse(f"profile of {request.user.display_name}")

    profile_app = AuthenticationMiddleware(Router([Route("/p", Profile)]), TokenBackend())
    ok = await call_http(profile_app, http_scope("/p", headers=auth("user")))
    assert ok.body == b"profile of ada"
    with pytest.raises(HTTPException):
        await call_http(profile_app, http_scope("/p"))


@pytest.mark.anyio
async def test_websocket_auth_error_when_client_already_gone() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.disconnect", "code": 1001}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(ws_scope("/ws", headers=auth("bad")), receive, send)
    assert sent == []
