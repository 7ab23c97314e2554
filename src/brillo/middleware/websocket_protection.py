"""Protection for WebSocket endpoints: origin checks, limits enforced by the framework, timeouts.

Two ways to switch it on, for the whole application or for one route, with the same options:

* :class:`WebSocketProtectionMiddleware` (``Middleware(WebSocketProtectionMiddleware, ...)``):
  every WebSocket handshake must come from an allowed ``Origin`` (by default the page's own
  host) and every connection gets the :class:`WebSocketLimits` given;
* ``WebSocketRoute(path, endpoint, allow_origins=..., limits=...)`` (or
  :func:`protect_websocket` around any ASGI app): the same checks for that route only, on top of
  any the application applies.

What is refused, and how the client learns it:

=================================  =======================================================
origin not allowed                 HTTP 403 denial response; close 1008 where the server
                                   has no denial responses
too many connections (address or   HTTP 429 denial response; close 1013 without denial
user)                              responses
message larger than the limit      close 1009 with a reason
messages faster than the rate      close 1008, or the message is dropped and the client
                                   gets an error reply (:class:`RateLimit`)
no message within ``idle_timeout`` close 1001 (or the code chosen) with a reason
=================================  =======================================================

Every refusal is logged once (logger ``brillo.websockets``; a connection whose messages are
dropped is logged at its first drop) and counted in :data:`protection_stats`, which the realtime
hub's ``stats()`` and its Prometheus endpoint report. When a limit closes a connection, the
endpoint sees the same :class:`~brillo.websockets.WebSocketDisconnect` (with that code and
reason) as when the client leaves; the endpoint's own later ``close()`` is then a no-op and its
sends fail as on a closed connection.

Nothing here runs for a route without options, and the per-message checks of a route with only
some options set are the ones set (see docs/benchmarks.md for their cost in instructions).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

import anyio

from brillo._utils import header_host, host_key
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "OriginPolicy",
    "ProtectionStats",
    "RateLimit",
    "WebSocketLimits",
    "WebSocketProtectionMiddleware",
    "protect_websocket",
    "protection_stats",
]

logger = logging.getLogger("brillo.websockets")

#: The default error reply of a :class:`RateLimit` with ``action="drop"`` (JSON text).
RATE_LIMIT_REPLY: Final = '{"type":"error","detail":"rate limit exceeded: message dropped"}'

_DENIAL = "websocket.http.response"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_monotonic = time.monotonic


# -- counters ---------------------------------------------------------------------------------


class ProtectionStats:
    """Counts of refusals, by kind; :data:`protection_stats` is the process-wide instance.

    ``origin``: handshakes refused for their Origin; ``client_connections`` /
    ``user_connections``: handshakes refused over a connection cap; ``message_size``,
    ``rate``, ``idle_timeout``: connections closed by that limit; ``rate_dropped``: messages
    dropped over a rate limit with ``action="drop"``.
    """

    __slots__ = (
        "client_connections",
        "idle_timeout",
        "message_size",
        "origin",
        "rate",
        "rate_dropped",
        "user_connections",
    )

    #: The kinds, in the order :meth:`snapshot` lists them.
    KINDS: Final = (
        "origin",
        "client_connections",
        "user_connections",
        "message_size",
        "rate",
        "rate_dropped",
        "idle_timeout",
    )

    def __init__(self) -> None:
        self.origin = 0
        self.client_connections = 0
        self.user_connections = 0
        self.message_size = 0
        self.rate = 0
        self.rate_dropped = 0
        self.idle_timeout = 0

    def snapshot(self) -> dict[str, int]:
        """The counts as a dict, one entry per kind."""
        return {kind: getattr(self, kind) for kind in self.KINDS}

    def reset(self) -> None:
        """Set every count back to zero."""
        for kind in self.KINDS:
            setattr(self, kind, 0)


#: Refusals of every protected endpoint of this process (unless given other counters).
protection_stats = ProtectionStats()


# -- origins ----------------------------------------------------------------------------------

_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[^:/?#@\[\]\s]+)"
    r"(?::(?P<port>[0-9]{1,5}|\*))?"
)


#: Decisions an :class:`OriginPolicy` remembers before it starts over.
_DECISIONS = 1024


def _split_origin(value: str, pattern: bool) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an origin (port filled in for http/https/ws/wss).

    ``port`` is None for ``:*`` (patterns only) or a scheme without a known default port.
    """
    match = _ORIGIN.fullmatch(value.lower())
    if match is None:
        return None
    scheme, host, port = match.group("scheme", "host", "port")
    if port == "*":
        if not pattern:
            return None
        return scheme, host_key(host), None
    if port is not None:
        number = int(port)
        if number > 65535:
            return None
        return scheme, host_key(host), number
    return scheme, host_key(host), _DEFAULT_PORTS.get(scheme)


class OriginPolicy:
    """Which ``Origin`` header a WebSocket handshake may carry.

    ``allow`` lists origins:

    * ``"self"``: the same host and port as the request's ``Host`` header (the scheme is not
      compared, so a page served over https behind a TLS-terminating proxy still matches);
    * an exact origin such as ``"https://chat.example.com"`` or ``"http://localhost:8000"``
      (default ports may be left out);
    * a wildcard subdomain such as ``"https://*.example.com"`` (any depth, not the bare
      ``example.com``), and ``:*`` for any port (``"http://localhost:*"``);
    * ``"null"`` for the opaque origin of sandboxed frames and ``file:`` pages (never allowed
      otherwise);
    * ``"*"``: any origin (the check is off).

    ``allow_missing`` allows handshakes without an ``Origin`` header. Browsers always send one,
    so a missing header means a non-browser client, which could send any header it liked.

    Patterns are checked when the policy is made: a malformed one raises :class:`ValueError`.
    """

    __slots__ = (
        "_any",
        "_decisions",
        "_exact",
        "_null",
        "_self",
        "_wildcards",
        "allow",
        "allow_missing",
    )

    def __init__(self, allow: Iterable[str] = ("self",), *, allow_missing: bool = True) -> None:
        if isinstance(allow, str):
            raise TypeError(f"allow must be a list of origins, not the string {allow!r}")
        self.allow = tuple(allow)
        self.allow_missing = allow_missing
        self._any = False
        self._self = False
        self._null = False
        self._exact: set[tuple[str, str, int | None]] = set()
        self._wildcards: list[tuple[str, str, int | None]] = []
        self._decisions: dict[tuple[bytes, bytes | None], bool] = {}
        for entry in self.allow:
            if not isinstance(entry, str):
                raise TypeError(f"origins are strings, not {type(entry).__name__}: {entry!r}")
            if entry == "*":
                self._any = True
            elif entry == "self":
                self._self = True
            elif entry == "null":
                self._null = True
            else:
                self._add(entry)

    def _add(self, entry: str) -> None:
        hint = (
            f"invalid origin {entry!r}: expected 'self', '*', 'null' or scheme://host[:port] "
            "(a host may start with '*.', the port may be '*'; no path, ASCII only: "
            "use the punycode form of international names)"
        )
        if not entry.isascii():
            raise ValueError(hint)
        parts = _split_origin(entry.rstrip("/"), pattern=True)
        if parts is None:
            raise ValueError(hint)
        scheme, host, port = parts
        if host.startswith("*."):
            suffix = host[1:]
            if "*" in suffix or len(suffix) < 2:
                raise ValueError(hint)
            self._wildcards.append((scheme, suffix, port))
        elif "*" in host:
            raise ValueError(hint)
        elif port is None and entry.rstrip("/").endswith(":*"):
            self._wildcards.append((scheme, "=" + host, None))
        else:
            self._exact.add(parts)

    def allows(self, scope: Scope) -> bool:
        """Whether the handshake in ``scope`` carries an allowed ``Origin`` header.

        Decisions are remembered per (Origin, Host) pair (a bounded table): browsers send the
        same few, and parsing one costs more than the rest of a handshake's checks.
        """
        if self._any:
            return True
        origin = host = None
        for key, value in scope.get("headers", ()):
            if key == b"origin":
                origin = value
            elif key == b"host" and host is None:
                host = value
        if origin is None:
            return self.allow_missing
        pair = (origin, host)
        decision = self._decisions.get(pair)
        if decision is None:
            decision = self.allows_origin(origin.decode("latin-1"), scope)
            if len(self._decisions) >= _DECISIONS:
                self._decisions.clear()
            self._decisions[pair] = decision
        return decision

    def allows_origin(self, origin: str, scope: Scope | None = None) -> bool:
        """Whether ``origin`` is allowed (``scope`` supplies the Host header for ``"self"``)."""
        if self._any:
            return True
        if origin == "null":
            return self._null
        parts = _split_origin(origin, pattern=False) if origin.isascii() else None
        if parts is None:
            return False
        if parts in self._exact:
            return True
        scheme, host, port = parts
        for w_scheme, w_host, w_port in self._wildcards:
            if w_scheme != scheme or (w_port is not None and w_port != port):
                continue
            if w_host[0] == "=" and host == w_host[1:]:
                return True
            if w_host[0] == "." and host.endswith(w_host):
                return True
        if self._self and scope is not None:
            return _same_host(scheme, host, port, origin, scope)
        return False

    def __repr__(self) -> str:
        return f"OriginPolicy({list(self.allow)!r}, allow_missing={self.allow_missing!r})"


def _same_host(scheme: str, host: str, port: int | None, origin: str, scope: Scope) -> bool:
    """The origin's host and port equal the Host header's (its port defaults by the origin's
    scheme, since browsers leave a default port out of both)."""
    parts = header_host(scope)
    if parts is None:
        return False
    target, target_port = parts
    if host_key(target) != host:
        return False
    if target_port:
        return target_port.isdigit() and int(target_port) == port
    return port == _DEFAULT_PORTS.get(scheme)


def _origin_policy(allow_origins: Iterable[str] | OriginPolicy | None) -> OriginPolicy | None:
    if allow_origins is None or isinstance(allow_origins, OriginPolicy):
        return allow_origins
    return OriginPolicy(allow_origins)


# -- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket for the messages of one connection.

    The bucket holds up to ``burst`` messages and refills at ``rate`` messages per second; a
    message that finds it empty is over the limit. ``action="close"`` then closes the
    connection with 1008; ``action="drop"`` drops the message, sends ``reply`` to the client
    (a ``str`` as a text frame, ``bytes`` as a binary frame, ``None`` for no reply) and goes on.
    """

    rate: float
    burst: int = 1
    action: Literal["close", "drop"] = "close"
    reply: str | bytes | None = RATE_LIMIT_REPLY

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, int | float) and math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"RateLimit.rate must be a positive number, not {self.rate!r}")
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"RateLimit.burst must be an int >= 1, not {self.burst!r}")
        if self.action not in ("close", "drop"):
            raise ValueError(f"RateLimit.action must be 'close' or 'drop', not {self.action!r}")
        if self.reply is not None and not isinstance(self.reply, str | bytes):
            raise TypeError("RateLimit.reply must be str, bytes or None")


def default_user_key(scope: Scope) -> str | None:
    """The authenticated user's ``identity`` (set by ``AuthenticationMiddleware``), else None."""
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    identity = user.identity
    return None if identity is None else str(identity)


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    """Limits enforced on every connection of a protected endpoint (``None``: no limit).

    :param max_message_size: largest message, in bytes (text counted as UTF-8); a larger one
        closes the connection with 1009.
    :param rate: a :class:`RateLimit` on the messages the client sends.
    :param max_connections_per_client: concurrent connections from one client address
        (``scope["client"]``, so behind a proxy start the server with its proxy-headers
        option); more are refused with 429 (1013 without denial responses).
    :param max_connections_per_user: concurrent connections of one user, as named by
        ``user_key``; refused the same way. Connections without a user are not counted.
    :param user_key: ``user_key(scope) -> str | None``; the default is the authenticated
        user's ``identity`` (``AuthenticationMiddleware`` must run before the check).
    :param idle_timeout: seconds a ``receive`` may wait for the client's next message; then the
        connection is closed with ``idle_close_code``. Time the endpoint spends elsewhere does
        not count.
    :param idle_close_code: 1001 (going away, the default) or 1008 (policy violation).

    Connection counts are kept per protected endpoint (or middleware) and per process.
    """

    max_message_size: int | None = None
    rate: RateLimit | None = None
    max_connections_per_client: int | None = None
    max_connections_per_user: int | None = None
    user_key: Callable[[Scope], str | None] = default_user_key
    idle_timeout: float | None = None
    idle_close_code: int = 1001

    def __post_init__(self) -> None:
        for field in (
            "max_message_size",
            "max_connections_per_client",
            "max_connections_per_user",
        ):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"WebSocketLimits.{field} must be an int >= 1 or None")
        if self.rate is not None and not isinstance(self.rate, RateLimit):
            raise TypeError("WebSocketLimits.rate must be a RateLimit or None")
        timeout = self.idle_timeout
        if timeout is not None and not (
            isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0
        ):
            raise ValueError("WebSocketLimits.idle_timeout must be a positive number or None")
        if self.idle_close_code not in (1001, 1008):
            raise ValueError("WebSocketLimits.idle_close_code must be 1001 or 1008")

    @property
    def per_message(self) -> bool:
        """Whether a limit applies to each message (size or rate) or to waiting (idle)."""
        return (
            self.max_message_size is not None
            or self.rate is not None
            or self.idle_timeout is not None
        )


# -- refusing a handshake ---------------------------------------------------------------------


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: int, reason: str
) -> None:
    """Refuse a handshake: an HTTP ``status`` denial response where the server has them, else
    accept and close at once with ``code`` (so the client sees why)."""
    if _DENIAL in (scope.get("extensions") or {}):
        body = reason.encode("utf-8") + b"\n"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client is already gone
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown client"


# -- the protection of one endpoint -------------------------------------------------------------


class _Protector:
    """One protected endpoint: its origin policy, its limits and its connection counts."""

    __slots__ = ("app", "by_address", "by_user", "limits", "origins", "stats")

    def __init__(
        self,
        app: ASGIApp,
        origins: OriginPolicy | None,
        limits: WebSocketLimits | None,
        stats: ProtectionStats,
    ) -> None:
        self.app = app
        self.origins = origins
        self.limits = limits
        self.stats = stats
        self.by_address: dict[str, int] = {}
        self.by_user: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        origins = self.origins
        if origins is not None and not origins.allows(scope):
            self.stats.origin += 1
            origin = _header(scope, b"origin")
            logger.info(
                "WebSocket %s from %s refused: origin %r is not allowed",
                scope.get("path", ""),
                _client(scope),
                origin,
            )
            await _refuse(scope, receive, send, 403, 1008, "origin not allowed")
            return
        limits = self.limits
        if limits is None:
            await self.app(scope, receive, send)
            return
        address = user = None
        if limits.max_connections_per_client is not None:
            client = scope.get("client")
            address = str(client[0]) if client else ""
            if self.by_address.get(address, 0) >= limits.max_connections_per_client:
                await self._refuse_cap(scope, receive, send, "client", address)
                return
        if limits.max_connections_per_user is not None:
            user = limits.user_key(scope)
            if user is not None and self.by_user.get(user, 0) >= limits.max_connections_per_user:
                await self._refuse_cap(scope, receive, send, "user", user)
                return
        if address is not None:
            self.by_address[address] = self.by_address.get(address, 0) + 1
        if user is not None:
            self.by_user[user] = self.by_user.get(user, 0) + 1
        try:
            if limits.per_message:
                guard = _Guard(self, scope, receive, send)
                try:
                    await self.app(scope, guard.receive, guard.send)
                finally:
                    guard.end()
            else:
                await self.app(scope, receive, send)
        finally:
            if address is not None:
                _release(self.by_address, address)
            if user is not None:
                _release(self.by_user, user)

    async def _refuse_cap(
        self, scope: Scope, receive: Receive, send: Send, kind: str, who: str
    ) -> None:
        assert self.limits is not None
        if kind == "client":
            self.stats.client_connections += 1
            limit = self.limits.max_connections_per_client
        else:
            self.stats.user_connections += 1
            limit = self.limits.max_connections_per_user
        logger.info(
            "WebSocket %s from %s refused: %s %r already has %s connections",
            scope.get("path", ""),
            _client(scope),
            "address" if kind == "client" else "user",
            who,
            limit,
        )
        await _refuse(scope, receive, send, 429, 1013, "too many connections")


def _release(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


# -- one connection under limits ----------------------------------------------------------------


class _Guard:
    """One connection's limits: wraps the server's ``receive`` and ``send``.

    ``receive`` checks each message's size and rate and waits under the idle timeout; ``send``
    hands each message straight to the server. After the guard closed the connection, the
    endpoint's close is a no-op and its other sends raise :class:`OSError` (what a server
    raises on a closed connection).

    The idle timeout costs one clock read per ``receive`` on asyncio: a timer per connection
    fires at the end of the current wait and, when that wait is still going on, cancels it (a
    cancellation this class takes back at once). On other event loops each ``receive`` waits in
    an anyio cancel scope.
    """

    __slots__ = (
        "_bucket",
        "_burst",
        "_closed",
        "_dropped",
        "_expired",
        "_loop",
        "_max_size",
        "_offset",
        "_protector",
        "_rate",
        "_receive",
        "_refill",
        "_scope",
        "_send",
        "_since",
        "_stamp",
        "_timeout",
        "_timer",
        "_waiter",
        "_waiting",
        "receive",
    )

    def __init__(self, protector: _Protector, scope: Scope, receive: Receive, send: Send) -> None:
        limits = protector.limits
        assert limits is not None
        self._protector = protector
        self._scope = scope
        self._receive = receive
        self._send = send
        self._closed = False
        self._max_size = limits.max_message_size
        rate = self._rate = limits.rate
        self._burst = float(rate.burst) if rate is not None else 0.0
        self._bucket = self._burst
        self._refill = rate.rate if rate is not None else 0.0
        self._stamp = _monotonic()
        self._dropped = 0
        self._timeout = limits.idle_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._offset = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._waiting = False
        self._expired = False
        self._since = 0.0
        if self._timeout is None:
            self.receive: Receive = self._receive_checked
        else:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not asyncio (trio)
                self.receive = self._receive_scoped
            else:
                self._loop = loop
                self._offset = loop.time() - _monotonic()
                self.receive = self._receive_timed

    # -- receiving ------------------------------------------------------------------------------

    async def _receive_checked(self) -> Message:
        """``receive`` without an idle timeout: the next message that passes the checks."""
        while True:
            message = await self._receive()
            if message["type"] != "websocket.receive" or self._closed:
                return message
            refusal = self._verdict(message)
            if refusal is None:
                return message
            checked = await self._refuse_message(refusal)
            if checked is not None:
                return checked

    async def _receive_timed(self) -> Message:
        """``receive`` under the idle timeout, on asyncio: one lazily re-armed timer."""
        while True:
            self._since = _monotonic()
            self._waiter = asyncio.current_task()
            self._waiting = True
            if self._timer is None:
                self._arm()
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                if not self._expired:
                    raise
                self._expired = False
                waiter = self._waiter
                if waiter is not None and waiter.uncancel() > 0:
                    raise  # cancelled by someone else as well
                return await self._idle_expired()
            finally:
                self._waiting = False
            if message["type"] != "websocket.receive" or self._closed:
                return message
            refusal = self._verdict(message)
            if refusal is None:
                return message
            checked = await self._refuse_message(refusal)
            if checked is not None:
                return checked

    async def _receive_scoped(self) -> Message:
        """``receive`` under the idle timeout on other event loops: a cancel scope per wait."""
        timeout = self._timeout
        assert timeout is not None
        while True:
            with anyio.move_on_after(timeout) as scope:
                message = await self._receive()
            if scope.cancelled_caught:
                return await self._idle_expired()
            if message["type"] != "websocket.receive" or self._closed:
                return message
            refusal = self._verdict(message)
            if refusal is None:
                return message
            checked = await self._refuse_message(refusal)
            if checked is not None:
                return checked

    def _verdict(self, message: Message) -> int | None:
        """The size and rate checks of one data message (synchronous: the per-message path).

        None when it passes; else the message's size when it is too big, or -1 when it is
        over the rate.
        """
        limit = self._max_size
        if limit is not None:
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
                size = len(data)
            else:
                size = len(data)
                if size <= limit and size * 4 > limit and not data.isascii():
                    size = len(data.encode("utf-8", "surrogatepass"))
            if size > limit:
                return size
        if self._rate is not None:
            now = _monotonic()
            tokens = self._bucket + (now - self._stamp) * self._refill
            self._stamp = now
            if tokens < 1.0:
                self._bucket = tokens
                return -1
            self._bucket = min(tokens, self._burst) - 1.0
        return None

    async def _refuse_message(self, refusal: int) -> Message | None:
        """A message failed a check: a disconnect (the guard closed the connection) or None
        (dropped: receive the next one)."""
        if refusal >= 0:
            assert self._max_size is not None
            return await self._too_big(refusal, self._max_size)
        assert self._rate is not None
        return await self._over_rate(self._rate)

    # -- the refusals ---------------------------------------------------------------------------

    async def _too_big(self, size: int, limit: int) -> Message:
        self._protector.stats.message_size += 1
        self._log("closed with 1009: a message of %d bytes is over the limit of %d", size, limit)
        return await self._close(1009, f"message too big ({size} bytes, limit {limit})")

    async def _over_rate(self, rate: RateLimit) -> Message | None:
        stats = self._protector.stats
        if rate.action == "close":
            stats.rate += 1
            self._log(
                "closed with 1008: over the rate limit (%s/s, burst %d)", rate.rate, rate.burst
            )
            return await self._close(1008, "rate limit exceeded")
        stats.rate_dropped += 1
        self._dropped += 1
        if self._dropped == 1:
            self._log(
                "over the rate limit (%s/s, burst %d): dropping messages (counted, not logged)",
                rate.rate,
                rate.burst,
            )
        reply = rate.reply
        if reply is not None:
            key = "text" if isinstance(reply, str) else "bytes"
            await self._send_own({"type": "websocket.send", key: reply})
        return None

    async def _idle_expired(self) -> Message:
        self._protector.stats.idle_timeout += 1
        code = self._protector.limits.idle_close_code  # type: ignore[union-attr]
        self._log("closed with %d: no message for %ss", code, self._timeout)
        return await self._close(code, "idle timeout")

    def _log(self, text: str, *args: object) -> None:
        scope = self._scope
        logger.info("WebSocket %s from %s " + text, scope.get("path", ""), _client(scope), *args)

    async def _close(self, code: int, reason: str) -> Message:
        """Close the connection now; the endpoint's receive gets this disconnect."""
        if not self._closed:
            self._closed = True
            await self._send_own({"type": "websocket.close", "code": code, "reason": reason})
        return {"type": "websocket.disconnect", "code": code, "reason": reason}

    # -- sending ----------------------------------------------------------------------------------

    @property
    def wrapped_send(self) -> Send:
        """The server's send this guard passes messages to (the realtime hub looks through
        the guard at it to tell whether sends may start eagerly)."""
        return self._send

    def send(self, message: Message) -> Awaitable[None]:
        """The endpoint's send: the server's own send, until the guard closed the connection.

        A plain function returning the server's coroutine: no frame of its own per message.
        """
        if self._closed:
            return self._send_after_close(message)
        return self._send(message)

    async def _send_after_close(self, message: Message) -> None:
        if message["type"] == "websocket.close":
            return  # the guard closed the connection already
        raise OSError("the WebSocket was closed by a limit (see the brillo.websockets log)")

    async def _send_own(self, message: Message) -> bool:
        """Send a frame of the guard's own (an error reply, a close); False if it failed.

        Best effort: a client that is gone, or a server that refuses the frame, only means
        the guard's frame is lost (logged at DEBUG).
        """
        try:
            await self._send(message)
        except Exception as exc:
            logger.debug("WebSocket protection: could not send %s: %r", message["type"], exc)
            return False
        return True

    # -- the idle timer (asyncio) -----------------------------------------------------------------

    def _arm(self) -> None:
        assert self._loop is not None
        assert self._timeout is not None
        self._timer = self._loop.call_at(self._since + self._timeout + self._offset, self._fire)

    def _fire(self) -> None:
        """The timer: cancel a wait that reached the timeout, else re-arm for the current one."""
        self._timer = None
        if not self._waiting or self._closed:
            return  # the next receive arms it again
        assert self._loop is not None
        assert self._timeout is not None
        if self._loop.time() - self._offset < self._since + self._timeout:
            self._arm()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._expired = True
            waiter.cancel()

    def end(self) -> None:
        """The endpoint returned: stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiter = None


# -- public entry points ------------------------------------------------------------------------


def protect_websocket(
    app: ASGIApp,
    *,
    allow_origins: Iterable[str] | OriginPolicy | None = None,
    limits: WebSocketLimits | None = None,
    stats: ProtectionStats | None = None,
) -> ASGIApp:
    """``app`` behind an origin check and limits for its WebSocket connections.

    Returns ``app`` itself when neither is given. ``allow_origins`` is an :class:`OriginPolicy`
    or the list to build one from; ``stats`` the counters to count refusals in (default:
    :data:`protection_stats`). ``WebSocketRoute(..., allow_origins=, limits=)`` and
    ``websocket_session(..., allow_origins=, limits=)`` use this.
    """
    origins = _origin_policy(allow_origins)
    if origins is None and limits is None:
        return app
    if limits is not None and not isinstance(limits, WebSocketLimits):
        raise TypeError(f"limits must be a WebSocketLimits, not {type(limits).__name__}")
    return _Protector(app, origins, limits, protection_stats if stats is None else stats)


class WebSocketProtectionMiddleware:
    """Check the ``Origin`` of every WebSocket handshake and apply limits to every connection.

    ``Middleware(WebSocketProtectionMiddleware)`` allows only handshakes from the app's own
    host (``allow_origins=("self",)``); pass the origins your pages are served from otherwise
    (see :class:`OriginPolicy`), and :class:`WebSocketLimits` for limits on every connection.
    HTTP requests pass through untouched. Put ``AuthenticationMiddleware`` before it when
    ``max_connections_per_user`` counts authenticated users.
    """

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Iterable[str] | OriginPolicy | None = ("self",),
        limits: WebSocketLimits | None = None,
        stats: ProtectionStats | None = None,
    ) -> None:
        self.app = app
        self.protected = protect_websocket(
            app, allow_origins=allow_origins, limits=limits, stats=stats
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope``: WebSockets through the checks, anything else straight to the app."""
        if scope["type"] == "websocket":
            await self.protected(scope, receive, send)
        else:
            await self.app(scope, receive, send)
