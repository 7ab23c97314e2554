from __future__ import annotations

import pytest

from _mw_helpers import call_http, call_ws, hello_app, http_scope, ws_scope
from brillo.middleware.httpsredirect import HTTPSRedirectMiddleware


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "https://example.com/p?q=1"),
        ("example.com:80", "https://example.com/p?q=1"),
        ("example.com:443", "https://example.com/p?q=1"),
        ("example.com:8080", "https://example.com:8080/p?q=1"),
    ],
)
async def test_http_redirects_to_https(host: str, expected: str) -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope("/p", host=host, query=b"q=1"))
    assert result.status == 307
    assert result.header("location") == expected


@pytest.mark.anyio
async def test_https_passes() -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope(scheme="https"))
    assert (result.status, result.body) == (200, b"hello")


@pytest.mark.anyio
async def test_uses_server_when_no_host_header() -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope("/x", host=None, server=("10.0.0.1", 8000)))
    assert result.header("location") == "https://10.0.0.1:8000/x"


@pytest.mark.anyio
async def test_no_host_information_is_400() -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope(host=None, server=None))
    assert result.status == 400


@pytest.mark.anyio
async def test_root_path_kept() -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope("/x", root_path="/api", host="h"))
    assert result.header("location") == "https://h/api/x"


@pytest.mark.anyio
async def test_wss_passes() -> None:
    sent = await call_ws(HTTPSRedirectMiddleware(hello_app), ws_scope(scheme="wss"))
    assert sent[0]["type"] == "websocket.accept"


@pytest.mark.anyio
async def test_ws_redirect_denial_response() -> None:
    sent = await call_ws(HTTPSRedirectMiddleware(hello_app), ws_scope("/ws", denial=True))
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 307
    assert dict(sent[0]["headers"])[b"location"] == b"wss://testserver/ws"


@pytest.mark.anyio
async def test_ws_without_denial_support_is_closed() -> None:
    sent = await call_ws(HTTPSRedirectMiddleware(hello_app), ws_scope("/ws"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Use wss://"}]
