from __future__ import annotations

import pytest

from brillo.middleware.cors import CORSMiddleware
from tests.support.asgi import call_http, call_ws, hello_app, http_scope, ws_scope

ORIGIN = "https://app.example.com"
PREFLIGHT_VARY = (
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    "Access-Control-Request-Private-Network"
)


def preflight(
    origin: str = ORIGIN, method: str = "GET", headers: str | None = None, **extra: str
) -> dict:  # type: ignore[type-arg]
    hdrs = [("origin", origin), ("access-control-request-method", method)]
    if headers is not None:
        hdrs.append(("access-control-request-headers", headers))
    hdrs.extend(extra.items())
    return http_scope("/", "OPTIONS", hdrs)


@pytest.mark.anyio
async def test_preflight_allowed() -> None:
    app = CORSMiddleware(
        hello_app,
        allow_origins=[ORIGIN],
        allow_methods=["GET", "POST"],
        allow_headers=["X-Token"],
        max_age=123,
    )
    result = await call_http(app, preflight(method="POST", headers="X-Token, content-type"))
    assert result.status == 200
    assert result.body == b"OK"
    assert result.header("access-control-allow-origin") == ORIGIN
    assert result.header("access-control-allow-methods") == "GET, POST"
    assert result.header("access-control-allow-headers") == (
        "Accept, Accept-Language, Content-Language, Content-Type, X-Token"
    )
    assert result.header("access-control-max-age") == "123"
    assert result.header("vary") == PREFLIGHT_VARY
    assert result.header("access-control-allow-credentials") is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scope_kwargs", "message"),
    [
        ({"origin": "https://evil.com"}, b"Disallowed CORS origin"),
        ({"method": "DELETE"}, b"Disallowed CORS method"),
        ({"headers": "X-Other"}, b"Disallowed CORS headers"),
        ({"origin": "https://evil.com", "method": "PUT"}, b"Disallowed CORS origin, method"),
    ],
)
async def test_preflight_rejections(scope_kwargs: dict, message: bytes) -> None:  # type: ignore[type-arg]
    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN], allow_headers=["X-Token"])
    result = await call_http(app, preflight(**scope_kwargs))
    assert result.status == 400
    assert result.body == message
    if "origin" in scope_kwargs:
        assert result.header("access-control-allow-origin") is None
    assert result.header("vary") == PREFLIGHT_VARY


@pytest.mark.anyio
async def test_preflight_private_network() -> None:
    scope = preflight(**{"access-control-request-private-network": "true"})
    denied = CORSMiddleware(hello_app, allow_origins=[ORIGIN])
    result = await call_http(denied, scope)
    assert (result.status, result.body) == (400, b"Disallowed CORS private-network")
    allowed = CORSMiddleware(hello_app, allow_origins=[ORIGIN], allow_private_network=True)
    result = await call_http(
        allowed, preflight(**{"access-control-request-private-network": "true"})
    )
    assert result.status == 200
    assert result.header("access-control-allow-private-network") == "true"


@pytest.mark.anyio
async def test_preflight_wildcards() -> None:
    app = CORSMiddleware(hello_app, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    result = await call_http(app, preflight(method="PATCH", headers="X-Anything, X-Else"))
    assert result.status == 200
    assert result.header("access-control-allow-origin") == "*"
    assert result.header("access-control-allow-headers") == "X-Anything, X-Else"
    # Even a wildcard answer varies: a request without Origin gets no CORS headers at all.
    assert result.header("vary") == PREFLIGHT_VARY
    assert "PATCH" in (result.header("access-control-allow-methods") or "")


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "PUT", "OPTIONS", "QUERY"])
async def test_preflight_wildcard_methods_cover_standard_ones(method: str) -> None:
    app = CORSMiddleware(hello_app, allow_origins=["*"], allow_methods=["*"])
    result = await call_http(app, preflight(method=method))
    assert result.status == 200
    allowed = (result.header("access-control-allow-methods") or "").split(", ")
    assert method in allowed


@pytest.mark.anyio
async def test_preflight_wildcard_methods_reject_unknown_method() -> None:
    app = CORSMiddleware(hello_app, allow_origins=["*"], allow_methods=["*"])
    result = await call_http(app, preflight(method="FROBNICATE"))
    assert (result.status, result.body) == (400, b"Disallowed CORS method")
    assert result.header("vary") == PREFLIGHT_VARY


@pytest.mark.anyio
async def test_preflight_allowed_headers_keep_configured_spelling() -> None:
    app = CORSMiddleware(
        hello_app, allow_origins=[ORIGIN], allow_headers=["X-Token", "content-TYPE", "x-token"]
    )
    result = await call_http(app, preflight(headers="x-TOKEN, Content-Type"))
    assert result.status == 200
    # Each name once, sorted case-insensitively, spelled as first configured/safelisted.
    assert result.header("access-control-allow-headers") == (
        "Accept, Accept-Language, Content-Language, Content-Type, X-Token"
    )


@pytest.mark.anyio
async def test_preflight_wildcard_with_credentials_echoes_origin() -> None:
    app = CORSMiddleware(hello_app, allow_origins=["*"], allow_credentials=True)
    result = await call_http(app, preflight())
    assert result.header("access-control-allow-origin") == ORIGIN
    assert result.header("access-control-allow-credentials") == "true"
    assert result.header("vary") == PREFLIGHT_VARY


@pytest.mark.anyio
async def test_simple_request_allowed() -> None:
    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN], expose_headers=["X-Count", "X-Page"])
    result = await call_http(app, http_scope(headers=[("origin", ORIGIN)]))
    assert (result.status, result.body) == (200, b"hello")
    assert result.header("access-control-allow-origin") == ORIGIN
    assert result.header("access-control-expose-headers") == "X-Count, X-Page"
    assert result.header("vary") == "Origin"


@pytest.mark.anyio
async def test_simple_request_disallowed_origin_gets_no_cors_headers() -> None:
    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN])
    result = await call_http(app, http_scope(headers=[("origin", "https://evil.com")]))
    assert result.status == 200
    assert result.header("access-control-allow-origin") is None
    assert result.header("vary") == "Origin"


@pytest.mark.anyio
async def test_simple_request_wildcard() -> None:
    app = CORSMiddleware(hello_app, allow_origins=["*"])
    result = await call_http(app, http_scope(headers=[("origin", ORIGIN)]))
    assert result.header("access-control-allow-origin") == "*"
    assert result.header("vary") == "Origin"


@pytest.mark.anyio
async def test_simple_request_wildcard_with_cookie_echoes_origin() -> None:
    app = CORSMiddleware(hello_app, allow_origins=["*"])
    scope = http_scope(headers=[("origin", ORIGIN), ("cookie", "a=b")])
    result = await call_http(app, scope)
    assert result.header("access-control-allow-origin") == ORIGIN
    assert result.header("vary") == "Origin"


@pytest.mark.anyio
async def test_simple_request_credentials() -> None:
    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN], allow_credentials=True)
    result = await call_http(app, http_scope(headers=[("origin", ORIGIN)]))
    assert result.header("access-control-allow-credentials") == "true"
    assert result.header("access-control-allow-origin") == ORIGIN


@pytest.mark.anyio
async def test_vary_merged_with_existing() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"vary", b"Accept")]}
        )
        await send({"type": "http.response.body", "body": b""})

    result = await call_http(
        CORSMiddleware(app, allow_origins=[ORIGIN]), http_scope(headers=[("origin", ORIGIN)])
    )
    assert result.headers_list("vary") == ["Accept, Origin"]


@pytest.mark.anyio
@pytest.mark.parametrize("credentials", [False, True])
@pytest.mark.parametrize("origins", [["*"], [ORIGIN]])
async def test_vary_origin_joins_several_vary_headers(
    credentials: bool,
    origins: list[str],
) -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        headers = [(b"vary", b"Accept-Encoding"), (b"vary", b"Accept-Language")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    cors = CORSMiddleware(app, allow_origins=origins, allow_credentials=credentials)
    result = await call_http(cors, http_scope(headers=[("origin", ORIGIN)]))
    assert ", ".join(result.headers_list("vary")) == "Accept-Encoding, Accept-Language, Origin"

    # Origin is listed once even when the app already names it (in any case).
    async def app_with_origin(scope, receive, send):  # type: ignore[no-untyped-def]
        headers = [(b"vary", b"Accept"), (b"vary", b"origin")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    cors = CORSMiddleware(app_with_origin, allow_origins=origins, allow_credentials=credentials)
    result = await call_http(cors, http_scope(headers=[("origin", ORIGIN)]))
    assert result.headers_list("vary") == ["Accept", "origin"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://a.example.org", True),
        ("https://a-b.example.org", True),
        ("https://example.org", False),
        ("https://a.example.org.evil.com", False),
        ("http://a.example.org", False),
    ],
)
async def test_origin_regex_is_fullmatch(origin: str, allowed: bool) -> None:
    app = CORSMiddleware(hello_app, allow_origin_regex=r"https://[a-z0-9-]+\.example\.org")
    result = await call_http(app, http_scope(headers=[("origin", origin)]))
    assert (result.header("access-control-allow-origin") == origin) is allowed
    pre = await call_http(app, preflight(origin=origin))
    assert (pre.status == 200) is allowed


@pytest.mark.anyio
@pytest.mark.parametrize("origins", [["*"], [ORIGIN]])
async def test_no_origin_gets_only_vary_origin(origins: list[str]) -> None:
    # Without Origin the response has no CORS headers, but with one it would: caches must know.
    result = await call_http(CORSMiddleware(hello_app, allow_origins=origins), http_scope())
    assert result.header("access-control-allow-origin") is None
    assert result.header("vary") == "Origin"
    scope = http_scope("/", "OPTIONS", [("access-control-request-method", "GET")])
    result = await call_http(CORSMiddleware(hello_app, allow_origins=origins), scope)
    assert (result.body, result.header("vary")) == (b"hello", "Origin")


@pytest.mark.anyio
async def test_options_without_request_method_is_simple() -> None:
    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN])
    result = await call_http(app, http_scope("/", "OPTIONS", [("origin", ORIGIN)]))
    assert result.body == b"hello"
    assert result.header("access-control-allow-origin") == ORIGIN


@pytest.mark.anyio
async def test_websocket_passes_through() -> None:
    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN])
    sent = await call_ws(app, ws_scope(headers=[("origin", "https://evil.com")]))
    assert sent[0]["type"] == "websocket.accept"


# -- the overridable hooks Starlette exposes ---------------------------------------------------


def test_preflight_response_is_a_response() -> None:
    from brillo.datastructures import Headers
    from brillo.responses import Response

    app = CORSMiddleware(hello_app, allow_origins=[ORIGIN])
    ok = app.preflight_response(Headers({"origin": ORIGIN, "access-control-request-method": "GET"}))
    assert isinstance(ok, Response)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert ok.headers["content-type"] == "text/plain; charset=utf-8"
    bad = app.preflight_response(
        Headers({"origin": "https://evil.com", "access-control-request-method": "GET"})
    )
    assert (bad.status_code, bad.body) == (400, b"Disallowed CORS origin")


def test_allow_explicit_origin() -> None:
    from brillo.datastructures import MutableHeaders

    headers = MutableHeaders({"vary": "Accept-Encoding", "access-control-allow-origin": "*"})
    CORSMiddleware.allow_explicit_origin(headers, ORIGIN)
    assert headers.getlist("access-control-allow-origin") == [ORIGIN]
    assert headers["vary"] == "Accept-Encoding, Origin"
    CORSMiddleware.allow_explicit_origin(headers, ORIGIN)  # Vary is not repeated
    assert headers["vary"] == "Accept-Encoding, Origin"


@pytest.mark.anyio
async def test_subclass_hooks_are_used() -> None:
    from brillo.datastructures import Headers
    from brillo.responses import PlainTextResponse, Response
    from brillo.types import Message, Receive, Scope, Send

    calls: list[str] = []

    class Custom(CORSMiddleware):
        def preflight_response(self, request_headers: Headers) -> Response:
            calls.append("preflight")
            return PlainTextResponse("custom", 204)

        async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
            calls.append(message["type"])
            await super().send(message, send, request_headers)

        async def simple_response(
            self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
        ) -> None:
            calls.append("simple")
            await super().simple_response(scope, receive, send, request_headers)

    app = Custom(hello_app, allow_origins=[ORIGIN])
    assert (await call_http(app, preflight())).status == 204
    result = await call_http(app, http_scope("/", "GET", [("origin", ORIGIN)]))
    assert result.header("access-control-allow-origin") == ORIGIN
    assert calls == ["preflight", "simple", "http.response.start", "http.response.body"]
