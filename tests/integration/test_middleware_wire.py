"""Middleware over the wire: real uvicorn on 127.0.0.1 and the ``websockets`` client."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from brillo.applications import Brillo
from brillo.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
    requires,
)
from brillo.middleware import Middleware
from brillo.middleware.authentication import AuthenticationMiddleware
from brillo.middleware.cors import CORSMiddleware
from brillo.middleware.gzip import GZipMiddleware
from brillo.middleware.sessions import SessionMiddleware
from brillo.middleware.trustedhost import TrustedHostMiddleware
from brillo.requests import HTTPConnection, Request
from brillo.responses import PlainTextResponse, Response, StreamingResponse
from brillo.routing import Route, WebSocketRoute
from brillo.testing import LiveServer
from brillo.websockets import WebSocket

TIMEOUT = 5.0


class QueryTokenBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        token = conn.query_params.get("token")
        if token is None:
            return None
        if token == "good":
            return AuthCredentials(["authenticated"]), SimpleUser("ada")
        raise AuthenticationError(f"Invalid token {token!r}")


async def login(request: Request) -> Response:
    request.session["user"] = request.query_params.get("name", "ada")
    return PlainTextResponse("logged in")


async def whoami(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        {"session": dict(websocket.session), "user": websocket.user.display_name}
    )
    await websocket.close()


@requires("authenticated")
async def private(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("secret")
    await websocket.close()


async def stream(request: Request) -> Response:
    async def chunks() -> Any:
        for i in range(5):
            yield (f"line {i} " * 40 + "\n").encode()

    return StreamingResponse(chunks(), media_type="text/plain")


def make_app(allowed_hosts: list[str]) -> Brillo:
    return Brillo(
        routes=[
            Route("/login", login),
            Route("/stream", stream),
            WebSocketRoute("/whoami", whoami),
            WebSocketRoute("/private", private),
        ],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts),
            Middleware(CORSMiddleware, allow_origins=["https://app.example"]),
            Middleware(GZipMiddleware, minimum_size=10),
            Middleware(SessionMiddleware, secret_key="wire-secret", https_only=False),
            Middleware(AuthenticationMiddleware, backend=QueryTokenBackend()),
        ],
    )


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    return live_server(make_app(["127.0.0.1", "localhost"]))


def http_get(
    server: LiveServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def test_session_cookie_is_read_on_websocket_handshake(server: LiveServer) -> None:
    status, headers, body = http_get(server, "/login?name=grace")
    assert (status, body) == (200, b"logged in")
    cookies = [value for name, value in headers if name.lower() == "set-cookie"]
    assert len(cookies) == 1
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert attributes[0].startswith("session=")
    assert {"path=/", "httponly", "samesite=lax", "max-age=1209600"} <= set(attributes[1:])
    cookie = cookies[0].split(";", 1)[0]

    with connect(
        server.ws_url + "/whoami?token=good",
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == '{"session":{"user":"grace"},"user":"ada"}'

    # A tampered cookie gives an empty session, not an error.
    tampered = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    with connect(
        server.ws_url + "/whoami", additional_headers={"Cookie": tampered}, open_timeout=TIMEOUT
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == '{"session":{},"user":""}'


def test_auth_error_closes_1008_with_reason(server: LiveServer) -> None:
    with (
        connect(server.ws_url + "/whoami?token=forged", open_timeout=TIMEOUT) as ws,
        pytest.raises(ConnectionClosed) as info,
    ):
        ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008
    assert info.value.rcvd.reason == "Invalid token 'forged'"


def test_requires_refuses_handshake(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(server.ws_url + "/private", open_timeout=TIMEOUT)
    assert info.value.response.status_code == 403
    with connect(server.ws_url + "/private?token=good", open_timeout=TIMEOUT) as ws:
        assert ws.recv(timeout=TIMEOUT) == "secret"


def test_trusted_host_rejects_websocket_handshake(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(make_app(["example.com"]))
    with pytest.raises(InvalidStatus) as info:
        connect(server.ws_url + "/whoami", open_timeout=TIMEOUT)
    # uvicorn supports denial responses: the client sees the 400 and its body.
    assert info.value.response.status_code == 400
    assert info.value.response.body == b"Invalid host header"
    status, _, body = http_get(server, "/login")
    assert (status, body) == (400, b"Invalid host header")
    status, _, _ = http_get(server, "/login", {"Host": "example.com"})
    assert status == 200


def test_gzip_streaming_and_cors_on_the_wire(server: LiveServer) -> None:
    status, headers, body = http_get(
        server, "/stream", {"Accept-Encoding": "gzip", "Origin": "https://app.example"}
    )
    header_map = {name.lower(): value for name, value in headers}
    assert status == 200
    assert header_map["content-encoding"] == "gzip"
    assert header_map["access-control-allow-origin"] == "https://app.example"
    assert "Accept-Encoding" in header_map["vary"]
    assert "Origin" in header_map["vary"]
    expected = "".join(f"line {i} " * 40 + "\n" for i in range(5)).encode()
    assert gzip.decompress(body) == expected


def test_https_redirect_on_websocket_handshake(live_server: Callable[..., LiveServer]) -> None:
    from brillo.middleware.httpsredirect import HTTPSRedirectMiddleware

    app = Brillo(
        routes=[WebSocketRoute("/whoami", whoami)],
        middleware=[Middleware(HTTPSRedirectMiddleware)],
    )
    server = live_server(app)
    # A raw handshake, so that no client follows the redirect.
    status, headers, _ = http_get(
        server,
        "/whoami?x=1",
        {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )
    assert status == 307
    location = {name.lower(): value for name, value in headers}["location"]
    assert location == f"wss://127.0.0.1:{server.port}/whoami?x=1"
