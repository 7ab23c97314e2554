"""Redirect plain ``http``/``ws`` connections to ``https``/``wss``."""

from __future__ import annotations

from brillo._middleware_asgi import DENIAL_EXTENSION, reject
from brillo._utils import location_header, port_number, request_netloc, scope_url, split_host
from brillo.status import WS_1008_POLICY_VIOLATION
from brillo.types import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPSRedirectMiddleware"]

_SECURE = {"http": "https", "ws": "wss"}
_TYPES = frozenset(("http", "websocket"))


def _secure_netloc(scope: Scope) -> str:
    """The host to redirect to, with the port unless it is 80 or 443 (``""``: none known)."""
    netloc = request_netloc(scope)
    parts = split_host(netloc) if netloc else None
    if parts is None:
        return ""
    host, port_text = parts
    port = port_number(port_text) if port_text else None
    if port is None or port in (80, 443):
        return host
    return f"{host}:{port}"


class HTTPSRedirectMiddleware:
    """Enforce secure schemes: ``http`` -> ``https`` and ``ws`` -> ``wss``.

    HTTP requests get a ``307 Temporary Redirect`` to the same URL on the secure scheme (ports 80
    and 443 are dropped from the host). The host comes from the ``Host`` header when it is a
    well-formed ``host[:port]`` with a port in 0..65535, else from the server address; with
    neither the answer is ``400 Invalid host header``. A WebSocket handshake on ``ws`` gets the
    same 307 as a denial response when the server supports the ``websocket.http.response``
    extension; otherwise it is closed before accept with 1008 (HTTP 403 on the wire).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Redirect insecure connections; pass secure ones (and lifespan) to the app."""
        secure = _SECURE.get(scope.get("scheme", "")) if scope["type"] in _TYPES else None
        if secure is None:
            await self.app(scope, receive, send)
            return
        netloc = _secure_netloc(scope)
        if not netloc:
            await reject(scope, send, 400, "Invalid host header")
            return
        location = location_header(scope_url(scope, scheme=secure, netloc=netloc))
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
