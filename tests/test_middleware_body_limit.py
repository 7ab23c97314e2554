from __future__ import annotations

from typing import Any

import pytest

from brillo.exceptions import HTTPException
from brillo.middleware.body_limit import (
    MAX_BODY_SIZE_SCOPE_KEY,
    BodySizeLimitMiddleware,
    RequestBodyLimitMiddleware,
)
from tests.support.asgi import call_http, call_ws, hello_app, http_scope, ws_scope


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    limit = str(scope.get(MAX_BODY_SIZE_SCOPE_KEY)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-limit", limit)]})
    await send({"type": "http.response.body", "body": body})


def post(length: int | None = None) -> dict:  # type: ignore[type-arg]
    headers = [] if length is None else [("content-length", str(length))]
    return http_scope("/", "POST", headers)


@pytest.mark.anyio
async def test_within_limit() -> None:
    app = RequestBodyLimitMiddleware(echo_app, max_body_size=10)
    result = await call_http(app, post(10), b"0123456789")
    assert (result.status, result.body) == (200, b"0123456789")
    assert result.header("x-limit") == "10"


@pytest.mark.anyio
async def test_content_length_over_limit() -> None:
    app = RequestBodyLimitMiddleware(echo_app, max_body_size=10)
    result = await call_http(app, post(11), b"01234567890")
    assert (result.status, result.body) == (413, b"Content Too Large")


@pytest.mark.anyio
async def test_streamed_body_over_limit_without_content_length() -> None:
    app = RequestBodyLimitMiddleware(echo_app, max_body_size=10)
    result = await call_http(app, post(), [b"012345", b"67890", b"x"])
    assert result.status == 413


@pytest.mark.anyio
async def test_understated_content_length() -> None:
    app = RequestBodyLimitMiddleware(echo_app, max_body_size=10)
    result = await call_http(app, post(5), [b"012345", b"67890"])
    assert result.status == 413


@pytest.mark.anyio
async def test_app_ignoring_body_still_gets_413() -> None:
    app = RequestBodyLimitMiddleware(hello_app, max_body_size=10)
    result = await call_http(app, post(1000), b"x" * 1000)
    assert result.status == 413
    assert result.body == b"Content Too Large"


@pytest.mark.anyio
async def test_inner_limit_wins() -> None:
    inner = RequestBodyLimitMiddleware(echo_app, max_body_size=100)
    app = RequestBodyLimitMiddleware(inner, max_body_size=10)
    result = await call_http(app, post(50), b"x" * 50)
    assert (result.status, result.header("x-limit")) == (200, "100")
    result = await call_http(app, post(101), b"x" * 101)
    assert result.status == 413


@pytest.mark.anyio
async def test_inner_limit_below_outer_wins() -> None:
    inner = RequestBodyLimitMiddleware(echo_app, max_body_size=10)
    app = RequestBodyLimitMiddleware(inner, max_body_size=100)
    assert (await call_http(app, post(50), b"x" * 50)).status == 413
    assert (await call_http(app, post(), [b"x" * 30, b"x" * 20])).status == 413
    result = await call_http(app, post(10), b"x" * 10)
    assert (result.status, result.header("x-limit")) == (200, "10")


@pytest.mark.anyio
async def test_inner_limit_below_bytes_already_read() -> None:
    async def read_then_limit(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # 6 bytes counted by the outer limiter
        await RequestBodyLimitMiddleware(echo_app, max_body_size=4)(scope, receive, send)

    app = RequestBodyLimitMiddleware(read_then_limit, max_body_size=100)
    result = await call_http(app, post(), [b"x" * 6, b"y"])
    assert (result.status, result.body) == (413, b"Content Too Large")


@pytest.mark.anyio
async def test_scope_limit_restored_afterwards() -> None:
    scope = post(1)
    scope[MAX_BODY_SIZE_SCOPE_KEY] = 7
    app = RequestBodyLimitMiddleware(RequestBodyLimitMiddleware(echo_app, 5), 3)
    result = await call_http(app, scope, b"x")
    assert result.header("x-limit") == "5"
    assert scope[MAX_BODY_SIZE_SCOPE_KEY] == 7
    assert not any(key.startswith("brillo._") for key in scope)


@pytest.mark.anyio
async def test_app_answer_to_streamed_overflow_is_kept() -> None:
    # Only an announced Content-Length overrides the app's own response; an app (or an
    # exception handler) that catches the overflow of a streamed body answers itself.
    async def forgiving(scope: Any, receive: Any, send: Any) -> None:
        try:
            while (await receive()).get("more_body"):
                pass
        except HTTPException as exc:
            status = exc.status_code
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": str(status).encode()})

    result = await call_http(RequestBodyLimitMiddleware(forgiving, 3), post(), [b"ab", b"cd"])
    assert (result.status, result.body) == (400, b"413")
    result = await call_http(RequestBodyLimitMiddleware(forgiving, 3), post(4), [b"ab", b"cd"])
    assert (result.status, result.body) == (413, b"Content Too Large")


@pytest.mark.anyio
async def test_zero_limit_and_empty_body() -> None:
    app = RequestBodyLimitMiddleware(echo_app, max_body_size=0)
    assert (await call_http(app, post(0))).status == 200
    assert (await call_http(app, post(), b"x")).status == 413


@pytest.mark.anyio
async def test_error_after_response_started_is_raised() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await receive()
        await receive()

    with pytest.raises(HTTPException) as info:
        await call_http(RequestBodyLimitMiddleware(app, 3), post(), [b"ab", b"cd"])
    assert info.value.status_code == 413


@pytest.mark.anyio
async def test_websocket_untouched() -> None:
    sent = await call_ws(RequestBodyLimitMiddleware(hello_app, 0), ws_scope())
    assert sent[0]["type"] == "websocket.accept"


def test_negative_limit() -> None:
    with pytest.raises(ValueError, match="max_body_size"):
        RequestBodyLimitMiddleware(hello_app, -1)
    assert BodySizeLimitMiddleware is RequestBodyLimitMiddleware
