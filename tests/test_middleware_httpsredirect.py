from __future__ import annotations

import pytest

from brillo.middleware.httpsredirect import HTTPSRedirectMiddleware
from tests.support.asgi import call_http, call_ws, hello_app, http_scope, ws_scope


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "https://example.com/p?q=1"),
        ("example.com:80", "https://example.com/p?q=1"),
        ("example.com:443", "https://example.com/p?q=1"),
        ("example.com:8080", "https://example.com:8080/p?q=1"),
        ("example.com:000080", "https://example.com/p?q=1"),
        ("example.com:08080", "https://example.com:8080/p?q=1"),
        ("[::1]:8443", "https://[::1]:8443/p?q=1"),
        # A Host header that is no host falls back to the server address.
        ("example.com:65536", "https://testserver/p?q=1"),
        ("evil.com/x", "https://testserver/p?q=1"),
        ("evil.com?", "https://testserver/p?q=1"),
        ("evil.com#", "https://testserver/p?q=1"),
        ("user@evil.com", "https://testserver/p?q=1"),
        ("[:::]", "https://testserver/p?q=1"),
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


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["evil.com/x", "evil.com:65536", "[:::]", "a b", ""])
async def test_bad_host_without_server_is_400(host: str) -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope("/p", host=host, server=None))
    assert (result.status, result.body) == (400, b"Invalid host header")


@pytest.mark.anyio
async def test_ipv6_server_is_bracketed() -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope("/p", host="[:::]", server=("::1", 80)))
    assert result.header("location") == "https://[::1]/p"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("@evil.com", "https://h/@evil.com"),
        ("//evil.com", "https://h//evil.com"),
        ("/a?b#c", "https://h/a%3Fb%23c"),
        ("/\u00fcber\r\n", "https://h/%C3%BCber%0D%0A"),
    ],
)
async def test_path_cannot_change_the_redirect_host(path: str, expected: str) -> None:
    app = HTTPSRedirectMiddleware(hello_app)
    result = await call_http(app, http_scope(path, host="h"))
    assert result.header("location") == expected
