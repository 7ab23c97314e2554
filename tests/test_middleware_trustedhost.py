from __future__ import annotations

import pytest

from brillo.middleware.trustedhost import InvalidHostPatternError, TrustedHostMiddleware
from tests.support.asgi import call_http, call_ws, hello_app, http_scope, ws_scope


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("example.com", 200),
        ("example.com:8000", 200),
        ("EXAMPLE.com", 200),
        ("api.example.org", 200),
        ("a.b.example.org", 200),
        ("example.org", 400),
        ("evil.com", 400),
        ("example.com.evil.com", 400),
        ("notexample.org", 400),
        ("[::1]:8000", 200),
        ("[0:0::1]", 200),
        ("[::2]", 400),
        # Not a host at all, whatever it ends with: rejected, never taken for a subdomain.
        ("evil.com/x.example.org", 400),
        ("evil.com?x.example.org", 400),
        ("evil.com#x.example.org", 400),
        ("evil.com\\x.example.org", 400),
        ("evil.com x.example.org", 400),
        ("evil.com@x.example.org", 400),
        ("x.example.org@evil.com", 400),
        ("example.com:evil", 400),
        ("example.com:", 400),
        ("example.com:8000:1", 400),
        ("[::1]evil.example.org", 400),
        ("[::1]:evil", 400),
        ("[::1", 400),
        ("[:::]", 400),
        ("", 400),
        # Any port digits: the host decides (the request URL falls back to the server).
        ("example.com:65536", 200),
        ("example.com:000080", 200),
    ],
)
async def test_http_hosts(host: str, status: int) -> None:
    app = TrustedHostMiddleware(hello_app, ["example.com", "*.example.org", "[::1]"])
    result = await call_http(app, http_scope(host=host))
    assert result.status == status
    if status == 400:
        assert result.body == b"Invalid host header"


@pytest.mark.anyio
async def test_missing_host_header_rejected() -> None:
    app = TrustedHostMiddleware(hello_app, ["example.com"])
    result = await call_http(app, http_scope(host=None))
    assert result.status == 400


@pytest.mark.anyio
async def test_default_allows_everything() -> None:
    app = TrustedHostMiddleware(hello_app)
    assert (await call_http(app, http_scope(host="anything"))).status == 200


@pytest.mark.anyio
async def test_www_redirect() -> None:
    app = TrustedHostMiddleware(hello_app, ["www.example.com"])
    result = await call_http(app, http_scope("/a/b", host="example.com", query=b"x=1"))
    assert result.status == 307
    assert result.header("location") == "http://www.example.com/a/b?x=1"


@pytest.mark.anyio
async def test_www_redirect_disabled() -> None:
    app = TrustedHostMiddleware(hello_app, ["www.example.com"], www_redirect=False)
    assert (await call_http(app, http_scope(host="example.com"))).status == 400


@pytest.mark.anyio
async def test_websocket_trusted_host_accepted() -> None:
    app = TrustedHostMiddleware(hello_app, ["example.com"])
    sent = await call_ws(app, ws_scope(host="example.com"))
    assert sent[0]["type"] == "websocket.accept"


@pytest.mark.anyio
async def test_websocket_untrusted_host_closed_before_accept() -> None:
    app = TrustedHostMiddleware(hello_app, ["example.com"])
    sent = await call_ws(app, ws_scope(host="evil.com"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Invalid host header"}]


@pytest.mark.anyio
async def test_websocket_untrusted_host_denial_response() -> None:
    app = TrustedHostMiddleware(hello_app, ["example.com"])
    sent = await call_ws(app, ws_scope(host="evil.com", denial=True))
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b"Invalid host header"


@pytest.mark.anyio
async def test_lifespan_passes_through() -> None:
    seen = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["type"])

    await TrustedHostMiddleware(app, ["example.com"])({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


@pytest.mark.parametrize("pattern", ["*example.com", "example.*", "a.*.example.com", "**.x.com"])
def test_bad_wildcard_patterns(pattern: str) -> None:
    with pytest.raises(InvalidHostPatternError, match=r"\*\.example\.com"):
        TrustedHostMiddleware(hello_app, [pattern])
    with pytest.raises(AssertionError):
        TrustedHostMiddleware(hello_app, [pattern])


def test_with_app_and_test_client() -> None:
    from brillo.applications import Brillo
    from brillo.middleware import Middleware
    from brillo.responses import PlainTextResponse
    from brillo.routing import Route, WebSocketRoute
    from brillo.testclient import TestClient, WebSocketDenialResponse

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("home")

    async def ws(websocket: object) -> None:  # never reached for an untrusted host
        raise AssertionError("unreachable")

    app = Brillo(
        routes=[Route("/", home), WebSocketRoute("/ws", ws)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["testserver"])],
    )
    assert TestClient(app).get("/").text == "home"
    evil = TestClient(app, base_url="http://evil.com")
    response = evil.get("/")
    assert (response.status_code, response.text) == (400, "Invalid host header")
    with pytest.raises(WebSocketDenialResponse) as info, evil.websocket_connect("/ws"):
        pass
    assert info.value.status_code == 400


def test_url_seen_by_the_app_has_the_trusted_host() -> None:
    # The subdomain check and request.url read the same parsed host: a Host header that
    # passes the check cannot point request.url at another site.
    from brillo.applications import Brillo
    from brillo.middleware import Middleware
    from brillo.requests import Request
    from brillo.responses import PlainTextResponse
    from brillo.routing import Route
    from brillo.testclient import TestClient

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.url.hostname} {request.url.path}")

    app = Brillo(
        routes=[Route("/", home)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["*.example.com"])],
    )
    with TestClient(app) as client:
        ok = client.get("/", headers={"host": "api.example.com"})
        assert (ok.status_code, ok.text) == (200, "api.example.com /")
        for host in ("evil.com/x.example.com", "evil.com?x.example.com", "evil.com#.example.com"):
            response = client.get("/", headers={"host": host})
            assert (response.status_code, response.text) == (400, "Invalid host header")


@pytest.mark.anyio
async def test_www_redirect_keeps_port_and_escapes_path() -> None:
    app = TrustedHostMiddleware(hello_app, ["www.example.com"])
    result = await call_http(app, http_scope("@evil.com", host="Example.com:8443"))
    assert result.status == 307
    assert result.header("location") == "http://www.example.com:8443/@evil.com"
    result = await call_http(app, http_scope("/caf\u00e9 x", host="example.com"))
    assert result.header("location") == "http://www.example.com/caf%C3%A9%20x"
