from __future__ import annotations

import json
import time
from base64 import b64encode
from collections.abc import Callable
from typing import Any

import itsdangerous
import pytest

from brillo.middleware.sessions import Session, SessionMiddleware
from tests.support.asgi import HTTPResult, call_http, call_ws, http_scope, ws_scope

SECRET = "s3cret"


def session_app(action: Callable[[dict[str, Any]], Any]) -> Any:
    """HTTP app that applies ``action`` to the session and returns it as JSON."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        action(scope["session"])
        body = json.dumps(dict(scope["session"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def set_cookie_value(result: HTTPResult) -> str:
    (header,) = result.headers_list("set-cookie")
    return header.split(";", 1)[0].split("=", 1)[1]


def attributes(result: HTTPResult) -> dict[str, str]:
    (header,) = result.headers_list("set-cookie")
    attrs = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attrs[key.lower()] = value
    return attrs


def with_cookie(value: str, name: str = "session") -> dict[str, Any]:
    return http_scope(headers=[("cookie", f"other=1; {name}={value}")])


def signed(payload: bytes, secret: str = SECRET, age: int = 0) -> str:
    class Signer(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    return Signer(secret).sign(payload).decode()


def encode(data: Any) -> bytes:
    return b64encode(json.dumps(data).encode())


def write(session: dict[str, Any]) -> None:
    session["user"] = "ada"


@pytest.mark.anyio
async def test_roundtrip_and_default_flags() -> None:
    app = SessionMiddleware(session_app(write), secret_key=SECRET)
    first = await call_http(app, http_scope())
    assert first.header("vary") == "Cookie"
    attrs = attributes(first)
    assert attrs == {"path": "/", "httponly": "", "samesite": "lax", "max-age": "1209600"}
    cookie = set_cookie_value(first)

    reader = SessionMiddleware(session_app(lambda s: s.get("user")), secret_key=SECRET)
    second = await call_http(reader, with_cookie(cookie))
    assert json.loads(second.body) == {"user": "ada"}
    assert second.headers_list("set-cookie") == []  # unchanged: nothing written back
    assert second.header("vary") == "Cookie"


@pytest.mark.anyio
async def test_all_cookie_flags() -> None:
    app = SessionMiddleware(
        session_app(write),
        secret_key=SECRET,
        session_cookie="sid",
        max_age=60,
        path="/app",
        same_site="strict",
        https_only=True,
        domain="example.com",
        partitioned=True,
    )
    result = await call_http(app, http_scope())
    (header,) = result.headers_list("set-cookie")
    assert header.startswith("sid=")
    assert attributes(result) == {
        "path": "/app",
        "httponly": "",
        "samesite": "strict",
        "secure": "",
        "domain": "example.com",
        "partitioned": "",
        "max-age": "60",
    }


@pytest.mark.anyio
@pytest.mark.parametrize("max_age", [0, 60])
async def test_set_cookie_lists_lifetime_right_after_path(max_age: int) -> None:
    app = SessionMiddleware(session_app(write), secret_key=SECRET, max_age=max_age, https_only=True)
    result = await call_http(app, http_scope())
    (header,) = result.headers_list("set-cookie")
    _, attrs = header.split("; ", 1)
    assert attrs == f"path=/; Max-Age={max_age}; httponly; samesite=lax; secure"


@pytest.mark.anyio
async def test_deletion_cookie_lists_expiry_right_after_path() -> None:
    app = SessionMiddleware(session_app(lambda s: s.clear()), secret_key=SECRET, path="/app")
    result = await call_http(app, with_cookie(signed(encode({"a": 1}))))
    (header,) = result.headers_list("set-cookie")
    assert header == (
        "session=null; path=/app; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; "
        "httponly; samesite=lax"
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cookie_headers",
    [
        ["session={first}; session={second}"],
        ["session={first}", "session={second}"],
        ["other=1; session={first}", "session={second}; more=2"],
    ],
)
async def test_duplicate_session_cookie_read_like_request_cookies(
    cookie_headers: list[str],
) -> None:
    from brillo.requests import Request

    first, second = signed(encode({"n": 1})), signed(encode({"n": 2}))
    lines = [line.format(first=first, second=second) for line in cookie_headers]
    scope = http_scope(headers=[("cookie", line) for line in lines])
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((dict(scope["session"]), Request(scope).cookies["session"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await call_http(SessionMiddleware(app, SECRET), scope)
    # The middleware and request.cookies agree: the later duplicate wins for both.
    assert seen == [({"n": 2}, second)]


@pytest.mark.anyio
async def test_browser_session_cookie_when_max_age_none() -> None:
    app = SessionMiddleware(session_app(write), secret_key=SECRET, max_age=None)
    result = await call_http(app, http_scope())
    assert "max-age" not in attributes(result)
    assert "expires" not in attributes(result)
    # And an old signature is still accepted (no expiry check).
    reader = SessionMiddleware(session_app(lambda s: None), secret_key=SECRET, max_age=None)
    old = signed(encode({"a": 1}), age=10**6)
    assert json.loads((await call_http(reader, with_cookie(old))).body) == {"a": 1}


def reader_app() -> SessionMiddleware:
    return SessionMiddleware(session_app(lambda s: None), secret_key=SECRET, max_age=100)


@pytest.mark.anyio
async def test_valid_cookie_is_read() -> None:
    result = await call_http(reader_app(), with_cookie(signed(encode({"a": 1}))))
    assert json.loads(result.body) == {"a": 1}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(signed(encode({"a": 1}), age=101), id="expired"),
        pytest.param(signed(encode({"a": 1}), secret="other"), id="wrong-secret"),
        pytest.param(signed(b"!!!not base64!!!"), id="garbage-base64"),
        pytest.param(signed(b64encode(b"\xff\xfe not json")), id="not-json"),
        pytest.param(signed(encode([1, 2, 3])), id="json-not-object"),
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param("a.b.c.d", id="dots"),
        pytest.param("\u00e9\u00e9", id="non-ascii"),
    ],
)
async def test_bad_cookies_give_empty_session(cookie: str) -> None:
    result = await call_http(reader_app(), with_cookie(cookie))
    assert result.status == 200
    assert json.loads(result.body) == {}
    assert result.headers_list("set-cookie") == []


@pytest.mark.anyio
async def test_flipped_byte_gives_empty_session() -> None:
    good = signed(encode({"admin": False}))
    assert json.loads((await call_http(reader_app(), with_cookie(good))).body) == {"admin": False}
    for index in range(len(good)):
        char = good[index]
        flipped = good[:index] + ("A" if char != "A" else "B") + good[index + 1 :]
        result = await call_http(reader_app(), with_cookie(flipped))
        assert json.loads(result.body) in ({}, {"admin": False}), index
        if index < len(good) - 30:  # payload and timestamp bytes are all covered by the MAC
            assert json.loads(result.body) == {}, index


@pytest.mark.anyio
async def test_forged_payload_rejected() -> None:
    good = signed(encode({"admin": False}))
    _, rest = good.split(".", 1)
    forged = encode({"admin": True}).decode() + "." + rest
    assert json.loads((await call_http(reader_app(), with_cookie(forged))).body) == {}


@pytest.mark.anyio
async def test_clearing_deletes_cookie() -> None:
    app = SessionMiddleware(session_app(lambda s: s.clear()), secret_key=SECRET)
    result = await call_http(app, with_cookie(signed(encode({"a": 1}))))
    (header,) = result.headers_list("set-cookie")
    assert header.startswith("session=null;")
    attrs = attributes(result)
    assert attrs["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert attrs["max-age"] == "0"
    assert attrs["path"] == "/"


@pytest.mark.anyio
async def test_clearing_empty_session_writes_nothing() -> None:
    app = SessionMiddleware(session_app(lambda s: s.clear()), secret_key=SECRET)
    result = await call_http(app, http_scope())
    assert result.headers_list("set-cookie") == []


@pytest.mark.anyio
async def test_untouched_session_no_vary_no_cookie() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    result = await call_http(SessionMiddleware(app, SECRET), with_cookie(signed(encode({"a": 1}))))
    assert result.raw_headers == []


@pytest.mark.anyio
async def test_nested_mutation_detected() -> None:
    app = SessionMiddleware(session_app(lambda s: s["cart"].append(2)), secret_key=SECRET)
    result = await call_http(app, with_cookie(signed(encode({"cart": [1]}))))
    cookie = set_cookie_value(result)
    again = await call_http(reader_app(), with_cookie(cookie))
    assert json.loads(again.body) == {"cart": [1, 2]}


@pytest.mark.anyio
async def test_replaced_session_dict_is_written() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"] = {"fresh": True}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    result = await call_http(SessionMiddleware(app, SECRET), http_scope())
    again = await call_http(reader_app(), with_cookie(set_cookie_value(result)))
    assert json.loads(again.body) == {"fresh": True}


@pytest.mark.parametrize(
    "read",
    [
        lambda s: list(s),
        lambda s: dict(s),
        lambda s: len(s),
        lambda s: bool(s),
        lambda s: list(s.items()),
        lambda s: list(s.keys()),
        lambda s: list(s.values()),
        lambda s: "a" in s,
        lambda s: s.get("a"),
    ],
)
def test_reads_mark_accessed(read: Callable[[Session], Any]) -> None:
    session = Session({"a": 1})
    read(session)
    assert session.accessed
    assert not session.modified


def test_session_tracking() -> None:
    session = Session({"a": 1})
    assert not session.accessed
    assert not session.modified
    assert session["a"] == 1
    assert session.accessed
    assert not session.modified
    session.pop("missing", None)
    session.setdefault("a", 5)
    assert not session.modified
    session.setdefault("b", 2)
    assert session.modified
    for mutate in (
        lambda s: s.update(x=1),
        lambda s: s.pop("a"),
        lambda s: s.__delitem__("a"),
        lambda s: s.popitem(),
        lambda s: s.clear(),
    ):
        fresh = Session({"a": 1})
        mutate(fresh)
        assert fresh.modified
        assert fresh.accessed


@pytest.mark.anyio
async def test_websocket_reads_handshake_cookie() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["session"]))
        scope["session"]["changed"] = True  # cannot be persisted on a websocket
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    cookie = signed(encode({"user": "ada"}))
    sent = await call_ws(
        SessionMiddleware(app, SECRET), ws_scope(headers=[("cookie", f"session={cookie}")])
    )
    assert seen == [{"user": "ada"}]
    assert sent[0] == {"type": "websocket.accept"}


@pytest.mark.anyio
async def test_websocket_bad_cookie_gives_empty_session() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["session"]))
        await send({"type": "websocket.close", "code": 1000})

    await call_ws(SessionMiddleware(app, SECRET), ws_scope(headers=[("cookie", "session=x")]))
    assert seen == [{}]


@pytest.mark.anyio
async def test_lifespan_untouched() -> None:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)

    await SessionMiddleware(app, SECRET)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert "session" not in scopes[0]


def test_with_app_and_test_client() -> None:
    from brillo.applications import Brillo
    from brillo.middleware import Middleware
    from brillo.requests import Request
    from brillo.responses import JSONResponse, PlainTextResponse, Response
    from brillo.routing import Route, WebSocketRoute
    from brillo.testclient import TestClient
    from brillo.websockets import WebSocket

    async def login(request: Request) -> Response:
        request.session["user"] = request.query_params["name"]
        return PlainTextResponse("ok")

    async def logout(request: Request) -> Response:
        request.session.clear()
        return PlainTextResponse("bye")

    async def me(request: Request) -> Response:
        return JSONResponse(dict(request.session))

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        await websocket.close()

    app = Brillo(
        routes=[
            Route("/login", login),
            Route("/logout", logout),
            Route("/me", me),
            WebSocketRoute("/ws", ws),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
    )
    with TestClient(app) as client:
        assert client.get("/me").json() == {}
        client.get("/login", params={"name": "ada"})
        assert client.get("/me").json() == {"user": "ada"}
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"user": "ada"}
        response = client.get("/logout")
        assert "expires=Thu, 01 Jan 1970" in response.headers["set-cookie"]
        assert client.get("/me").json() == {}
