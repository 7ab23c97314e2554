"""Reject requests and WebSocket handshakes whose ``Host`` header is not on an allow-list."""

from __future__ import annotations

from collections.abc import Sequence

from brillo._middleware_asgi import reject
from brillo._utils import header_host, host_key, location_header, port_number, scope_url
from brillo.types import ASGIApp, Receive, Scope, Send

__all__ = ["ENFORCE_DOMAIN_WILDCARD", "InvalidHostPatternError", "TrustedHostMiddleware"]

ENFORCE_DOMAIN_WILDCARD = "Domain wildcard patterns must be like '*.example.com'."


class InvalidHostPatternError(ValueError, AssertionError):
    """An ``allowed_hosts`` entry uses ``*`` anywhere but as a leading ``*.`` label."""


class TrustedHostMiddleware:
    """Guard against Host header attacks on HTTP requests and WebSocket handshakes.

    ``allowed_hosts`` lists host names; ``"*.example.com"`` matches any subdomain of example.com
    and ``"*"`` (the default) allows everything. IPv6 hosts are written bracketed: ``"[::1]"``.
    An untrusted HTTP request gets ``400 Invalid host header``. An untrusted WebSocket handshake
    is refused before accept: with a 400 denial response when the server supports it, else by a
    close that the server turns into HTTP 403. With ``www_redirect`` a request for ``example.com``
    when only ``www.example.com`` is allowed is redirected there (HTTP only).
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] | None = None,
        www_redirect: bool = True,
    ) -> None:
        if allowed_hosts is None:
            allowed_hosts = ["*"]
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in allowed_hosts:
            if pattern == "*":
                continue
            if "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
                raise InvalidHostPatternError(f"{ENFORCE_DOMAIN_WILDCARD} Got {pattern!r}.")
            if pattern.startswith("*."):
                suffixes.append(pattern[1:].lower())
            else:
                exact.add(host_key(pattern))
        self.app = app
        self.allowed_hosts = list(allowed_hosts)
        self.allow_any = "*" in self.allowed_hosts
        self.www_redirect = www_redirect
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)

    def _is_allowed(self, host: str) -> bool:
        return host in self._exact or (bool(self._suffixes) and host.endswith(self._suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the Host header, then call the app or answer with a rejection."""
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Only a well-formed "host[:port]" is looked at: "evil.com/x.example.com" is no
        # subdomain of example.com, it is not a host at all.
        parsed = header_host(scope)
        host = host_key(parsed[0]) if parsed is not None else ""
        if host and self._is_allowed(host):
            await self.app(scope, receive, send)
            return
        if (
            parsed is not None
            and self.www_redirect
            and scope["type"] == "http"
            and ("www." + host) in self._exact
        ):
            netloc = "www." + host
            port = port_number(parsed[1]) if parsed[1] else None
            if port is not None:
                netloc += f":{port}"
            location = location_header(scope_url(scope, netloc=netloc))
            await send(
                {
                    "type": "http.response.start",
                    "status": 307,
                    "headers": [(b"location", location), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await reject(scope, send, 400, "Invalid host header")
