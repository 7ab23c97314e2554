"""Cross-Origin Resource Sharing: answer preflight requests and decorate simple responses."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from brillo._middleware_asgi import add_vary, get_header, mutable_headers, set_header
from brillo.datastructures import Headers, MutableHeaders
from brillo.responses import PlainTextResponse, Response
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALL_METHODS", "SAFELISTED_HEADERS", "CORSMiddleware"]

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
SAFELISTED_HEADERS = {"Accept", "Accept-Language", "Content-Language", "Content-Type"}
_SAFELISTED_ORDER = ("Accept", "Accept-Language", "Content-Language", "Content-Type")

_ACAO = b"access-control-allow-origin"
_ACAC = b"access-control-allow-credentials"
_ACAH = b"access-control-allow-headers"
_ACEH = b"access-control-expose-headers"
# A preflight's answer depends on these request headers, so caches must key on all of them.
_PREFLIGHT_VARY = (
    b"vary",
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    b"Access-Control-Request-Private-Network",
)


class CORSMiddleware:
    """Add CORS headers so browsers may call this app from other origins.

    * A **preflight** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is
      answered here without calling the app: ``200 OK`` with the allowed origin, methods, headers
      and ``Access-Control-Max-Age``, or ``400`` with a body naming what was disallowed, e.g.
      ``Disallowed CORS origin, method``.
    * A **simple** request (any other request with ``Origin``) reaches the app and its response
      gains ``Access-Control-Allow-Origin`` (and credentials / exposed headers) when the origin
      is allowed.
    * Every HTTP response passing through carries ``Vary: Origin`` (added to any ``Vary`` the
      app set), and every preflight answer ``Vary: Origin, Access-Control-Request-Method,
      Access-Control-Request-Headers, Access-Control-Request-Private-Network``, so a shared
      cache never serves one origin's answer to another.

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
        # Names keep the spelling they were configured with (the safelisted ones their canonical
        # spelling); duplicates differing only in case are listed once; matching ignores case.
        spelled: dict[str, str] = {}
        for name in (*_SAFELISTED_ORDER, *allow_headers):
            spelled.setdefault(name.lower(), name)
        spelled.pop("*", None)
        self.allow_headers = [spelled[key] for key in sorted(spelled)]
        self._allowed_header_set = frozenset(spelled)
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
        if get_header(scope, b"origin") is None:
            # Not a CORS request, but the same URL answers differently when one arrives.
            await self.app(scope, receive, functools.partial(_send_vary_origin, send=send))
            return
        request_headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in request_headers:
            response = self.preflight_response(request_headers)
            await response(scope, receive, send)
            return
        await self.simple_response(scope, receive, send, request_headers)

    def preflight_response(self, request_headers: Headers) -> Response:
        """The answer to a preflight request: ``200 OK``, or ``400`` naming what was disallowed."""
        headers = [*self._preflight_headers, _PREFLIGHT_VARY]
        failures: list[str] = []
        origin = request_headers["origin"]
        if self.is_allowed_origin(origin):
            acao = origin.encode("latin-1") if self._echo_origin else b"*"
            headers.append((_ACAO, acao))
        else:
            failures.append("origin")
        if request_headers["access-control-request-method"].upper() not in self.allow_methods:
            failures.append("method")
        requested_headers = request_headers.get("access-control-request-headers")
        if requested_headers is not None and requested_headers.strip():
            if self.allow_all_headers:
                headers.append((_ACAH, requested_headers.encode("latin-1")))
            else:
                names = (h.strip().lower() for h in requested_headers.split(","))
                if any(name and name not in self._allowed_header_set for name in names):
                    failures.append("headers")
        pna = request_headers.get("access-control-request-private-network")
        if pna is not None and pna.lower() == "true":
            if self.allow_private_network:
                headers.append((b"access-control-allow-private-network", b"true"))
            else:
                failures.append("private-network")
        if failures:
            response = PlainTextResponse("Disallowed CORS " + ", ".join(failures), 400)
        else:
            response = PlainTextResponse("OK", 200)
        response.raw_headers[:0] = headers
        return response

    async def simple_response(
        self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
    ) -> None:
        """Call the app; its response start passes through :meth:`send` to gain CORS headers."""
        await self.app(
            scope, receive, functools.partial(self.send, send=send, request_headers=request_headers)
        )

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        """Add the CORS headers to an ``http.response.start`` message, then pass it on."""
        if message["type"] != "http.response.start":
            await send(message)
            return
        origin = request_headers["origin"]
        echo = self._echo_origin or "cookie" in request_headers
        headers = mutable_headers(message)
        if self.is_allowed_origin(origin):
            headers.extend(self._simple_headers)
            if echo:
                self.allow_explicit_origin(MutableHeaders(raw=headers), origin)
                await send(message)
                return
            set_header(headers, _ACAO, b"*")
        add_vary(headers, b"Origin")
        await send(message)

    @staticmethod
    def allow_explicit_origin(headers: MutableHeaders, origin: str) -> None:
        """Allow exactly ``origin`` (not ``*``) and add ``Vary: Origin``."""
        raw = headers.raw
        set_header(raw, _ACAO, origin.encode("latin-1"))
        add_vary(raw, b"Origin")


async def _send_vary_origin(message: Message, send: Send) -> None:
    """Pass ``message`` on, adding ``Vary: Origin`` to a response start."""
    if message["type"] == "http.response.start":
        add_vary(mutable_headers(message), b"Origin")
    await send(message)
