"""Cap the size of HTTP request bodies (``413 Content Too Large``)."""

from __future__ import annotations

from brillo._middleware_asgi import get_header
from brillo.exceptions import HTTPException
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_SIZE_SCOPE_KEY", "BodySizeLimitMiddleware", "RequestBodyLimitMiddleware"]

#: Scope key holding the limit in force for this request (innermost middleware wins).
MAX_BODY_SIZE_SCOPE_KEY = "brillo.max_body_size"
_LIMITER_KEY = "brillo._body_limiter"
_TOO_LARGE = b"Content Too Large"
_MISSING = object()


class RequestBodyTooLarge(HTTPException):
    """Raised from ``receive()`` once the request body is known to exceed the limit."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Content Too Large")


class _Limiter:
    """Counts one request's body bytes against the limit currently in force.

    One limiter serves a request, created by the outermost limit; nested limits (an inner
    middleware, a mount or a route with ``max_body_size``) only change ``max_body_size``.
    """

    __slots__ = ("content_length", "max_body_size", "receive", "started", "total")

    def __init__(self, receive: Receive, max_body_size: int, content_length: int | None) -> None:
        self.receive = receive
        self.max_body_size = max_body_size
        self.content_length = content_length
        self.total = 0
        self.started = False

    def declared_too_large(self) -> bool:
        """Whether the ``Content-Length`` header announces more than the limit."""
        return self.content_length is not None and self.content_length > self.max_body_size

    async def limited_receive(self) -> Message:
        if self.declared_too_large():
            raise RequestBodyTooLarge()
        message = await self.receive()
        if message["type"] == "http.request":
            self.total += len(message.get("body", b""))
            if self.total > self.max_body_size:
                raise RequestBodyTooLarge()
        return message


def _content_length(scope: Scope) -> int | None:
    raw = get_header(scope, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


async def _send_413(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_TOO_LARGE)).encode("latin-1")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE})


async def _run_limited(
    app: ASGIApp, max_body_size: int, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` for an HTTP scope with ``max_body_size`` as the body limit.

    The single implementation behind the middleware and ``max_body_size`` on routes, mounts,
    routers and applications. Inside another limit, this one replaces it for the rest of the
    request (the innermost limit wins) and the outer limiter keeps counting.
    """
    active: _Limiter | None = scope.get(_LIMITER_KEY)
    if active is not None:
        scope[MAX_BODY_SIZE_SCOPE_KEY] = max_body_size
        active.max_body_size = max_body_size
        if active.total > max_body_size:
            raise RequestBodyTooLarge()
        await app(scope, receive, send)
        return

    previous = scope.get(MAX_BODY_SIZE_SCOPE_KEY, _MISSING)
    scope[MAX_BODY_SIZE_SCOPE_KEY] = max_body_size
    limiter = _Limiter(receive, max_body_size, _content_length(scope))
    scope[_LIMITER_KEY] = limiter
    dropping = False

    async def checked_send(message: Message) -> None:
        nonlocal dropping
        if dropping:
            return
        if message["type"] == "http.response.start" and not limiter.started:
            limiter.started = True
            if limiter.declared_too_large():
                # The app answered without reading the announced oversized body: 413 instead.
                dropping = True
                await _send_413(send)
                return
        await send(message)

    try:
        await app(scope, limiter.limited_receive, checked_send)
    except RequestBodyTooLarge:
        if limiter.started:
            raise
        limiter.started = True
        await _send_413(send)
    finally:
        scope.pop(_LIMITER_KEY, None)
        if previous is _MISSING:
            scope.pop(MAX_BODY_SIZE_SCOPE_KEY, None)
        else:
            scope[MAX_BODY_SIZE_SCOPE_KEY] = previous


class RequestBodyLimitMiddleware:
    """Reject HTTP requests whose body is larger than ``max_body_size`` bytes with 413.

    A ``Content-Length`` above the limit fails the first ``receive()``, and a response the app
    starts without reading the body is replaced by the 413. The bytes actually received are
    counted too, so chunked bodies and understated headers cannot slip through. Reading past the
    limit raises ``RequestBodyTooLarge`` (an ``HTTPException`` with status 413) from
    ``receive()``: exception handlers may render it; uncaught, it becomes a plain
    ``413 Content Too Large`` response.

    Nested limits (this middleware, or ``max_body_size`` on an application, router, mount or
    route, which use it) replace the outer ones: the innermost limit reached by the request is
    in force, and is stored in ``scope["brillo.max_body_size"]``. WebSocket and lifespan scopes
    pass through; WebSocket message size is capped by the server (e.g. uvicorn's
    ``ws_max_size``).
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        if max_body_size < 0:
            raise ValueError("max_body_size must be greater than or equal to zero")
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a size-checked ``receive``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _run_limited(self.app, self.max_body_size, scope, receive, send)


#: Alias under brillo's earlier name.
BodySizeLimitMiddleware = RequestBodyLimitMiddleware

# FastAPI looks this name up (getattr, optional) to unwrap body-limit errors raised inside
# exception groups; brillo's public class is the same signal.
_RequestBodyTooLarge = RequestBodyTooLarge
