"""Small private helpers shared across brillo modules."""

from __future__ import annotations

import functools
import ipaddress
import re
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import anyio.abc

from brillo.types import Scope

if sys.version_info >= (3, 12):
    from inspect import iscoroutinefunction as _is_coroutine_function
else:  # 3.11's inspect misses coroutine functions marked the old way (unittest.mock autospecs)
    from asyncio import iscoroutinefunction as _is_coroutine_function


def is_async_callable(obj: Any) -> bool:
    """True when calling ``obj`` returns an awaitable coroutine.

    Looks through ``functools.partial`` layers and at ``__call__`` of callable instances.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    return _is_coroutine_function(obj) or (
        callable(obj) and _is_coroutine_function(type(obj).__call__)
    )


#: The most bytes of UTF-8 a WebSocket close reason may have (RFC 6455: a control frame carries
#: at most 125 bytes, two of which are the close code).
MAX_CLOSE_REASON_BYTES = 123


def truncate_close_reason(reason: str) -> str:
    """``reason`` cut to at most 123 bytes of UTF-8, on a character boundary.

    The one rule for every close reason brillo sends (``WebSocket.close``, ``WebSocketClose``,
    the exception handlers, the middleware that refuse connections): a longer text is cut, never
    refused, and never split inside a character. A reason that fits is returned as it is.
    """
    if len(reason) * 4 <= MAX_CLOSE_REASON_BYTES:
        return reason  # even four-byte characters fit: nothing to measure
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    # Cutting may split the last character; decoding with "ignore" drops its partial bytes.
    return encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


@asynccontextmanager
async def create_collapsing_task_group() -> AsyncIterator[anyio.abc.TaskGroup]:
    """An anyio task group that re-raises a lone failure as itself, not as an ExceptionGroup.

    When the body or one child task fails alone, callers see that exception (with its own
    traceback); several concurrent failures still arrive together as an ExceptionGroup.
    """
    try:
        async with anyio.create_task_group() as task_group:
            yield task_group
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


def get_route_path(scope: Scope) -> str:
    """The path the router should match: ``scope["path"]`` without the ``root_path`` prefix."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path:
        return path
    if path == root_path:
        return ""
    if path.startswith(root_path) and path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


# -- hosts and authorities ---------------------------------------------------------------------
#
# One strict parser for every place that reads a host: the Host header (request.url, Host
# routing, TrustedHostMiddleware, HTTPSRedirectMiddleware) and scope["server"]. It accepts
# what RFC 3986 calls ``host [":" port]`` and nothing else: no userinfo, path, query, fragment,
# whitespace or backslash can ride along, so a Host header can never move the authority of a
# URL built from it.

# host = "[" IP-literal "]" / reg-name (unreserved, sub-delims, %XX); port = 1*DIGIT (at most
# _MAX_PORT_DIGITS, leading zeros allowed). ``[0-9]`` and ``A-Za-z`` match ASCII only.
_MAX_PORT_DIGITS = 10
_HOST_PORT = re.compile(
    r"(?P<host>\[(?P<literal>[^\[\]]*)\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)"
    rf"(?::(?P<port>[0-9]{{1,{_MAX_PORT_DIGITS}}}))?"
)
# A reg-name with "%": every "%" starts a %XX escape.
_PCT_NAME = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
# IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ). Lower-case "v" only.
_IPVFUTURE = re.compile(r"v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")


def _valid_ipv6(text: str) -> bool:
    # ipaddress also takes "%zone" suffixes, which are not allowed in a URI host: the caller
    # has checked the characters already.
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# Cached: the same few Host headers arrive again and again.
@functools.lru_cache(maxsize=512)
def split_host(value: str) -> tuple[str, str] | None:
    """Split ``host[:port]`` (a Host header value, a URL authority without userinfo).

    Returns ``(host, port)`` as written (an IPv6 host keeps its brackets; ``port`` is ``""``
    when absent), or None when ``value`` is not a well-formed authority: a reg-name of RFC 3986
    characters, a dotted-quad IPv4 address (a name of only digits and dots must be one), or a
    bracketed IPv6 address (IPv4-mapped forms included) or lower-case ``v`` IPvFuture literal,
    optionally followed by ``:`` and 1 to 10 digits. The port's range is not checked here
    (see :func:`port_number`).
    """
    match = _HOST_PORT.fullmatch(value)
    if match is None:
        return None
    host = match.group("host")
    literal = match.group("literal")
    if literal is not None:
        if literal.startswith("v"):
            if _IPVFUTURE.fullmatch(literal) is None:
                return None
        elif _IPV6_CHARS.fullmatch(literal) is None or not _valid_ipv6(literal):
            return None
    elif "%" in host and _PCT_NAME.fullmatch(host) is None:
        return None
    elif host[-1] in "0123456789." and _DIGITS_AND_DOTS.fullmatch(host) is not None:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return None
    return host, match.group("port") or ""


def port_number(port: str) -> int | None:
    """The value of a port written as digits (leading zeros allowed), None outside 0..65535."""
    if not port.isascii() or not port.isdigit() or len(port) > _MAX_PORT_DIGITS:
        return None
    number = int(port)
    return number if number <= 65535 else None


def host_key(host: str) -> str:
    """``host`` in the form used to compare hosts: lower-case, IPv6 literals compressed."""
    host = host.lower()
    if host.startswith("[") and not host.startswith("[v"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return host
    return host


def header_host(scope: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(host, port)`` of the first Host header when it is well-formed (see split_host)."""
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return split_host(value.decode("latin-1"))
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def request_netloc(scope: Mapping[str, Any]) -> str:
    """The ``host[:port]`` a request was made to, or ``""`` when it cannot be told.

    The Host header as sent when it is well-formed with a port in 0..65535, else
    ``scope["server"]`` (IPv6 bracketed, the scheme's default port left out), else ``""``.
    """
    for key, value in scope.get("headers", ()):
        if key == b"host":
            text: str = value.decode("latin-1")
            parts = split_host(text)
            if parts is not None and (not parts[1] or port_number(parts[1]) is not None):
                return text
            break
    server = scope.get("server")
    if not server:
        return ""
    name, port = str(server[0]), server[1]
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    if split_host(name) is None:  # e.g. a unix socket path
        return ""
    if port is None or port == _DEFAULT_PORTS.get(scope.get("scheme", "http")):
        return name
    return f"{name}:{port}"


def escape_request_path(path: str, has_authority: bool) -> str:
    """``scope["path"]`` made safe to put after an authority (or alone, without one).

    A path always starts with ``/``; ``?``, ``#`` and ``\\`` are percent-encoded so that they
    stay in the path, and without an authority a leading ``//`` becomes ``/%2F`` so that the
    path cannot be read as one.
    """
    if path and path[0] != "/":
        path = "/" + path
    if "?" in path or "#" in path or "\\" in path:
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    if not has_authority and path.startswith("//"):
        path = "/%2F" + path[2:]
    return path


def scope_url(
    scope: Mapping[str, Any], *, scheme: str | None = None, netloc: str | None = None
) -> str:
    """The full URL of an HTTP or WebSocket scope, built safely (see request_netloc).

    ``scheme`` and ``netloc`` replace the request's own. Without any authority the result is
    a relative URL (path and query only).
    """
    if scheme is None:
        scheme = scope.get("scheme", "http")
    if netloc is None:
        netloc = request_netloc(scope)
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and not path.startswith(root_path):
        # Servers that follow older ASGI wording hand over the path without root_path.
        path = root_path + path
    path = escape_request_path(path, bool(netloc))
    url = f"{scheme}://{netloc}{path}" if netloc else path
    query_string: bytes = scope.get("query_string", b"")
    if query_string:
        try:
            query = query_string.decode("utf-8")
        except UnicodeDecodeError:
            query = query_string.decode("latin-1")
        if "#" in query:  # never sent by a client; keep it out of the fragment
            query = query.replace("#", "%23")
        url += "?" + query
    return url


# Characters left alone when a URL goes into a Location header: those with a meaning in a URL,
# "%" (already-escaped text) and the unreserved ones. Anything else, non-ASCII included, is
# percent-encoded (as UTF-8).
_LOCATION_SAFE = ":/?#[]@!$&'()*+,;=%~"


def location_header(url: str) -> bytes:
    """``url`` as the value of a ``Location`` header: ASCII only, controls and spaces escaped."""
    return quote(url, safe=_LOCATION_SAFE).encode("ascii")
