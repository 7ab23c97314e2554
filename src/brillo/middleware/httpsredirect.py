"""Redirect plain ``http``/``ws`` connections to ``https``/``wss``."""

from __future__ import annotations

from brillo._middleware_asgi import DENIAL_EXTENSION, get_header, reject, request_url
from brillo.status import WS_1008_POLICY_VIOLATION
from brillo.types import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPSRedirectMiddleware"]

_SECURE = {"http": "https", "ws": "wss"}


def _strip_default_port(netloc: str) -> str:
    if netloc.endswith((":80", ":443")) and not netloc.endswith("]"):
        return netloc.rsplit(":", 1)[0]
    return netloc


class HTTPSRedirectMiddleware:
    """Enforce secure schemes: ``http`` -> ``https`` and ``ws`` -> ``wss``.

    HTTP requests get a ``307 Temporary Redirect`` to the same URL on the secure scheme (ports 80
    and 443 are dropped from the host). A WebSocket handshake on ``ws`` gets the same 307 as a
    denial response when the server supports the ``websocket.http.response`` extension; otherwise
    it is closed before accept with 1008 (HTTP 403 on the wire). A request without any host
    information gets ``400 Invalid host header``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Redirect insecure connections; pass secure ones (and lifespan) to the app."""
        secure = _SECURE.get(scope.get("scheme", "")) if scope["type"] in _TYPES else None
        if secure is None:
            await self.app(scope, receive, send)
            return
        raw_host = get_header(scope, b"host")
        if raw_host is None and scope.get("server") is None:
            await reject(scope, send, 400, "Invalid host header")
            return
        netloc = raw_host.decode("latin-1") if raw_host is not None else None
        url = request_url(scope, scheme=secure, netloc=netloc)
        scheme, rest = url.split("://", 1)
        host, sep, tail = rest.partition("/")
        if not host:
            await reject(scope, send, 400, "Invalid host header")
            return
        location = f"{scheme}://{_strip_default_port(host)}{sep}{tail}".encode("latin-1")
        headers = [(b"location", location), (b"content-length", b"0")]
        if scope["type"] == "websocket":
            if DENIAL_EXTENSION not in (scope.get("extensions") or {}):
                await send(
                    {
                        "type": "websocket.close",
                        "code": WS_1008_POLICY_VIOLATION,
                        "reason": "Use wss://",
                    }
                )
                return
            await send({"type": "websocket.http.response.start", "status": 307, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 307, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


_TYPES = frozenset(("http", "websocket"))
