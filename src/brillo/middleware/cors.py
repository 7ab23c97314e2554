"""Cross-Origin Resource Sharing: answer preflight requests and decorate simple responses."""

from __future__ import annotations

import re
from collections.abc import Sequence

from brillo._middleware_asgi import add_vary, get_header, mutable_headers, set_header
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALL_METHODS", "SAFELISTED_HEADERS", "CORSMiddleware"]

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
SAFELISTED_HEADERS = {"Accept", "Accept-Language", "Content-Language", "Content-Type"}

_ACAO = b"access-control-allow-origin"
_ACAC = b"access-control-allow-credentials"
_ACAH = b"access-control-allow-headers"
_ACEH = b"access-control-expose-headers"


class CORSMiddleware:
    """Add CORS headers so browsers may call this app from other origins.

    * A **preflight** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is
      answered here without calling the app: ``200 OK`` with the allowed origin, methods, headers
      and ``Access-Control-Max-Age``, or ``400`` with a body naming what was disallowed, e.g.
      ``Disallowed CORS origin, method``.
    * A **simple** request (any other request with ``Origin``) reaches the app and its response
      gains ``Access-Control-Allow-Origin`` (and credentials / exposed headers) when the origin
      is allowed. ``Vary: Origin`` is added whenever the answer depends on the origin.

    Origins match exactly against ``allow_origins`` (``"*"`` allows any) or fully against
    ``allow_origin_regex``. With ``allow_credentials`` the request's origin is echoed instead of
    ``*``, as browsers require. WebSocket and lifespan scopes pass through untouched (browsers do
    not apply CORS to WebSockets; check ``websocket.headers["origin"]`` yourself if needed).
    """

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Sequence[str] = (),
        allow_methods: Sequence[str] = ("GET",),
        allow_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | None = None,
        allow_private_network: bool = False,
        expose_headers: Sequence[str] = (),
        max_age: int = 600,
    ) -> None:
        if "*" in allow_methods:
            allow_methods = ALL_METHODS
        self.app = app
        self.allow_origins = tuple(allow_origins)
        self.allow_methods = tuple(m.upper() for m in allow_methods)
        self.allow_all_origins = "*" in allow_origins
        self.allow_all_headers = "*" in allow_headers
        self.allow_credentials = allow_credentials
        self.allow_private_network = allow_private_network
        self.allow_origin_regex = re.compile(allow_origin_regex) if allow_origin_regex else None
        self.allow_headers = sorted(
            {h.lower() for h in SAFELISTED_HEADERS} | {h.lower() for h in allow_headers}
        )
        self._allowed_header_set = frozenset(self.allow_headers)
        self._origin_set = frozenset(o for o in allow_origins if o != "*")
        # An explicit (echoed) origin is needed unless any origin is allowed without credentials.
        self._echo_origin = not self.allow_all_origins or allow_credentials

        simple: list[tuple[bytes, bytes]] = []
        if allow_credentials:
            simple.append((_ACAC, b"true"))
        if expose_headers:
            simple.append((_ACEH, ", ".join(expose_headers).encode("latin-1")))
        self._simple_headers = tuple(simple)

        preflight: list[tuple[bytes, bytes]] = [
            (b"access-control-allow-methods", ", ".join(self.allow_methods).encode("latin-1")),
            (b"access-control-max-age", str(max_age).encode("latin-1")),
        ]
        if self.allow_headers and not self.allow_all_headers:
            preflight.append((_ACAH, ", ".join(self.allow_headers).encode("latin-1")))
        if allow_credentials:
            preflight.append((_ACAC, b"true"))
        self._preflight_headers = tuple(preflight)

    def is_allowed_origin(self, origin: str) -> bool:
        """True when ``origin`` may make cross-origin requests."""
        if self.allow_all_origins or origin in self._origin_set:
            return True
        return self.allow_origin_regex is not None and bool(
            self.allow_origin_regex.fullmatch(origin)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer preflights, decorate simple responses, pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = get_header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            requested = get_header(scope, b"access-control-request-method")
            if requested is not None:
                await self._preflight(scope, send, origin, requested)
                return
        await self._simple(scope, receive, send, origin)

    async def _preflight(self, scope: Scope, send: Send, origin: bytes, method: bytes) -> None:
        headers = list(self._preflight_headers)
        failures: list[str] = []
        origin_text = origin.decode("latin-1")
        if self.is_allowed_origin(origin_text):
            if self._echo_origin:
                headers.append((_ACAO, origin))
        else:
            failures.append("origin")
        if self._echo_origin:
            headers.append((b"vary", b"Origin"))
        else:
            headers.append((_ACAO, b"*"))
        if method.decode("latin-1").upper() not in self.allow_methods:
            failures.append("method")
        requested_headers = get_header(scope, b"access-control-request-headers")
        if requested_headers is not None and requested_headers.strip():
            if self.allow_all_headers:
                headers.append((_ACAH, requested_headers))
            else:
                names = (h.strip().lower() for h in requested_headers.decode("latin-1").split(","))
                if any(name and name not in self._allowed_header_set for name in names):
                    failures.append("headers")
        pna = get_header(scope, b"access-control-request-private-network")
        if pna is not None and pna.lower() == b"true":
            if self.allow_private_network:
                headers.append((b"access-control-allow-private-network", b"true"))
            else:
                failures.append("private-network")
        if failures:
            status, body = 400, ("Disallowed CORS " + ", ".join(failures)).encode("utf-8")
        else:
            status, body = 200, b"OK"
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _simple(self, scope: Scope, receive: Receive, send: Send, origin: bytes) -> None:
        allowed = self.is_allowed_origin(origin.decode("latin-1"))
        echo = self._echo_origin or get_header(scope, b"cookie") is not None

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = mutable_headers(message)
                if allowed:
                    headers.extend(self._simple_headers)
                    set_header(headers, _ACAO, origin if echo else b"*")
                if echo:
                    add_vary(headers, b"Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)
