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


class RequestBodyTooLarge(HTTPException):
    """Raised from ``receive()`` once the request body is known to exceed the limit."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Content Too Large")


class _Limiter:
    """Counts one request's body bytes against the current limit."""

    __slots__ = ("content_length", "max_body_size", "receive", "started", "total")

    def __init__(self, receive: Receive, max_body_size: int, content_length: int | None) -> None:
        self.receive = receive
        self.max_body_size = max_body_size
        self.content_length = content_length
        self.total = 0
        self.started = False

    def exceeded(self) -> bool:
        limit = self.max_body_size
        return self.total > limit or (
            self.content_length is not None and self.content_length > limit
        )

    async def limited_receive(self) -> Message:
        if self.content_length is not None and self.content_length > self.max_body_size:
            raise RequestBodyTooLarge()
        message = await self.receive()
        if message["type"] == "http.request":
            self.total += len(message.get("body", b""))
            if self.total > self.max_body_size:
                raise RequestBodyTooLarge()
        return message


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


class RequestBodyLimitMiddleware:
    """Reject HTTP requests whose body is larger than ``max_body_size`` bytes with 413.

    A ``Content-Length`` above the limit is refused before any body byte is read; the bytes
    actually received are counted too, so chunked bodies and understated headers cannot slip
    through. Reading past the limit raises ``RequestBodyTooLarge`` (an ``HTTPException`` with
    status 413) from ``receive()``; uncaught, it becomes a ``413 Content Too Large`` response.

    Nest it to give a route a different limit: the innermost instance sets the limit for the
    request (stored in ``scope["brillo.max_body_size"]``). WebSocket and lifespan scopes pass
    through; WebSocket message size is capped by the server (e.g. uvicorn's ``ws_max_size``).
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
        scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_body_size
        active: _Limiter | None = scope.get(_LIMITER_KEY)
        if active is not None:
            # Nested: the inner limit wins; the outer instance enforces it.
            active.max_body_size = self.max_body_size
            if active.total > self.max_body_size:
                raise RequestBodyTooLarge()
            await self.app(scope, receive, send)
            return

        content_length: int | None = None
        raw = get_header(scope, b"content-length")
        if raw is not None:
            try:
                content_length = int(raw)
            except ValueError:
                content_length = None
        limiter = _Limiter(receive, self.max_body_size, content_length)
        scope[_LIMITER_KEY] = limiter
        dropping = False

        async def checked_send(message: Message) -> None:
            nonlocal dropping
            if dropping:
                return
            if message["type"] == "http.response.start":
                if not limiter.started and limiter.exceeded():
                    # The app answered without reading the oversized body: answer 413 instead.
                    limiter.started = True
                    dropping = True
                    await _send_413(send)
                    return
                limiter.started = True
            await send(message)

        try:
            await self.app(scope, limiter.limited_receive, checked_send)
        except RequestBodyTooLarge:
            if limiter.started:
                raise
            limiter.started = True
            await _send_413(send)
        finally:
            scope.pop(_LIMITER_KEY, None)


#: Alias under brillo's earlier name.
BodySizeLimitMiddleware = RequestBodyLimitMiddleware
