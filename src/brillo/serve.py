"""Run an app under uvicorn with hardened WebSocket settings and a graceful drain on SIGTERM.

``brillo.serve.serve(app)`` (or the ``brillo`` command: ``brillo myapp:app --port 8000``) runs
uvicorn's own ``Server`` and ``Config`` with:

* **hardened settings** (:data:`HARDENED`, see docs/deployment.md for the measurements behind
  them): 1 MiB messages, protocol pings every 20 s, no per-message compression, a deadline for
  the request head of every new connection (uvicorn has none: a connection that sends half an
  upgrade request is held for ever), and WebSocket protocols that stop reading from a client
  while their writes to it are backed up (so a client that floods pings and reads nothing
  cannot make the server buffer pongs without bound);
* **a graceful drain**: on SIGTERM (or SIGINT) the server first stops listening and refuses new
  WebSocket handshakes (HTTP 503), then runs the drain hooks the application registered with
  :func:`on_drain` (a realtime ``Hub`` registers itself: it sends its ``shutdown_message``,
  flushes every queue and closes its connections with 1001, in batches) for at most
  ``drain_timeout`` seconds, and only then lets uvicorn close what is left and run the lifespan
  shutdown.

Under plain ``uvicorn`` none of this happens (it closes every WebSocket with 1012 before the
lifespan shutdown); :func:`on_drain` is then a no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import logging
import math
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from brillo.middleware.websocket_protection import _refuse
from brillo.types import ASGIApp, Receive, Scope, Send

__all__ = ["HARDENED", "Drain", "main", "on_drain", "serve"]

#: Under uvicorn's logger, so its log configuration shows the drain beside its own messages.
logger = logging.getLogger("uvicorn.error.brillo")

#: uvicorn settings :func:`serve` starts from (any of them can be overridden).
HARDENED: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_max_size": 1 << 20,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "ws_per_message_deflate": False,
    "timeout_keep_alive": 5,
    "timeout_graceful_shutdown": 5,
}
#: Seconds a new connection has to send its whole request head (upgrade requests included).
HANDSHAKE_TIMEOUT = 10.0

DrainHook = Callable[[float], Awaitable[object]]


class Drain:
    """The drain of one server: whether it started, and the hooks to run when it does."""

    __slots__ = ("draining", "hooks")

    def __init__(self) -> None:
        self.draining = False
        self.hooks: list[DrainHook] = []

    async def run(self, timeout: float) -> None:
        """Mark the server draining and run every hook, all within ``timeout`` seconds.

        A hook gets the seconds left; one that fails is logged and the next one runs.
        """
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for hook in list(self.hooks):
            left = deadline - loop.time()
            if left <= 0:
                logger.warning("drain: out of time before %r ran", hook)
                break
            try:
                async with asyncio.timeout(left):
                    await hook(left)
            except TimeoutError:
                logger.warning("drain: %r did not finish within %.1fs", hook, left)
            except Exception as exc:
                logger.error("drain: %r failed: %s", hook, exc, exc_info=exc)


_current: contextvars.ContextVar[Drain | None] = contextvars.ContextVar(
    "brillo_drain", default=None
)


def on_drain(hook: DrainHook) -> Callable[[], None]:
    """Run ``await hook(seconds_left)`` when the server running this code drains.

    Call it during the app's startup (a lifespan): under :func:`serve` the hook runs on SIGTERM,
    after new WebSocket handshakes are refused and before uvicorn closes the connections left;
    elsewhere nothing happens. Returns a function that removes the hook.
    """
    drain = _current.get()
    if drain is None:
        return _nothing
    drain.hooks.append(hook)

    def remove() -> None:
        if hook in drain.hooks:
            drain.hooks.remove(hook)

    return remove


def _nothing() -> None:
    return None


class _DrainGate:
    """Refuses WebSocket handshakes (503) once the server drains; the app sees nothing else."""

    __slots__ = ("app", "drain")

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.drain.draining and scope["type"] == "websocket":
            await _refuse(scope, receive, send, 503, 1001, "server shutting down")
            return
        await self.app(scope, receive, send)


# -- hardened protocols ---------------------------------------------------------------------------


class _ReadGate:
    """A transport whose reading stays paused while its writing is (the protocol's view of it).

    uvicorn's protocols pause and resume reading for their own reasons; this keeps a resume
    from taking effect while the peer is not reading what we write.
    """

    __slots__ = ("_reading", "_transport", "_write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._reading = True
        self._write_paused = False

    def pause_reading(self) -> None:
        self._reading = False
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._reading = True
        if not self._write_paused:
            self._transport.resume_reading()

    def writes_paused(self) -> None:
        self._write_paused = True
        if not self._transport.is_closing():
            self._transport.pause_reading()

    def writes_resumed(self) -> None:
        self._write_paused = False
        if self._reading and not self._transport.is_closing():
            self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


_hardened: dict[tuple[Any, ...], type[Any]] = {}
#: Fragments of one message kept as they came before they go into one buffer.
_FEW_FRAGMENTS = 8


def _hardened_ws(base: type[Any]) -> type[Any]:
    """``base`` (a uvicorn WebSocket protocol) that stops reading while its writes back up."""
    known = _hardened.get(("ws", base))
    if known is not None:
        return known

    class Hardened(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(_ReadGate(transport))

        def pause_writing(self) -> None:
            super().pause_writing()
            if isinstance(self.transport, _ReadGate):
                self.transport.writes_paused()

        def resume_writing(self) -> None:
            super().resume_writing()
            if isinstance(self.transport, _ReadGate):
                self.transport.writes_resumed()

    if hasattr(base, "handle_cont") and hasattr(base, "send_receive_event_to_app"):
        # uvicorn's websockets-sansio protocol keeps each fragment of a message as its own
        # bytes object: one-byte fragments cost about 40 bytes of memory per byte of payload.
        # Past a few fragments, this one keeps them in one buffer (about 1 byte per byte).

        def handle_cont(self: Any, event: Any) -> None:
            frames = self.frames
            if len(frames) < _FEW_FRAGMENTS:
                base.handle_cont(self, event)
                return
            if len(frames) > 1 or type(frames[0]) is not bytearray:
                self.frames = frames = [bytearray(b"".join(frames))]
            frames[0] += event.data
            if event.fin:
                self.frames = [bytes(frames[0])]
                self.send_receive_event_to_app()

        Hardened.handle_cont = handle_cont

    Hardened.__name__ = Hardened.__qualname__ = f"Hardened{base.__name__}"
    _hardened["ws", base] = Hardened
    return Hardened


def _hardened_http(base: type[Any], timeout: float) -> type[Any]:
    """``base`` (a uvicorn HTTP protocol) that drops a connection whose first request head
    does not arrive within ``timeout`` seconds."""
    known = _hardened.get(("http", base, timeout))
    if known is not None:
        return known

    class Hardened(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._brillo_head_timer = self.loop.call_later(timeout, self._brillo_head_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._brillo_head_timer.cancel()
            super().connection_lost(exc)

        def _brillo_head_timeout(self) -> None:
            transport = self.transport
            # no request head yet, and not upgraded to a WebSocket
            if (
                self.cycle is None
                and not transport.is_closing()
                and transport.get_protocol() is self
            ):
                transport.close()

    Hardened.__name__ = Hardened.__qualname__ = f"Hardened{base.__name__}"
    _hardened["http", base, timeout] = Hardened
    return Hardened


def _protocol_class(kind: str, value: Any) -> type[Any] | None:
    if not isinstance(value, str):
        return value  # type: ignore[no-any-return]
    from uvicorn.config import HTTP_PROTOCOLS, WS_PROTOCOLS
    from uvicorn.importer import import_from_string

    table: dict[str, Any] = HTTP_PROTOCOLS if kind == "http" else WS_PROTOCOLS
    path = table.get(value, value)
    return None if path is None else import_from_string(path)


# -- the server ----------------------------------------------------------------------------------


def _server_class() -> type[Any]:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's Server, whose shutdown drains the app before closing connections."""

        def __init__(self, config: Any, drain: Drain, drain_timeout: float) -> None:
            super().__init__(config)
            self.brillo_drain = drain
            self.brillo_drain_timeout = drain_timeout

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            drain = self.brillo_drain
            if drain.hooks:
                timeout = self.brillo_drain_timeout
                logger.info("Draining: %d hook(s), at most %.1fs", len(drain.hooks), timeout)
            drain_task = asyncio.ensure_future(drain.run(self.brillo_drain_timeout))
            while not drain_task.done():
                await asyncio.wait({drain_task}, timeout=0.1)
                if self.force_exit:  # a second Ctrl+C: stop waiting
                    drain_task.cancel()
                    break
            await super().shutdown(sockets)

    return DrainingServer


def serve(
    app: ASGIApp | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    drain_timeout: float = 10.0,
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    **options: Any,
) -> None:
    """Serve ``app`` (an ASGI app or ``"module:attr"``) with uvicorn, hardened and draining.

    ``options`` go to ``uvicorn.Config`` over :data:`HARDENED` (``ws="wsproto"``,
    ``ws_max_size=...``, ``fd=3``, ``factory=True``, ``log_level="warning"`` ...).
    ``drain_timeout`` bounds the drain on SIGTERM; ``handshake_timeout`` the request head of a
    new connection (``None``: no limit). Blocks until the server has stopped.
    """
    asyncio.run(
        serve_async(
            app,
            host=host,
            port=port,
            drain_timeout=drain_timeout,
            handshake_timeout=handshake_timeout,
            **options,
        )
    )


async def serve_async(
    app: ASGIApp | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    drain_timeout: float = 10.0,
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    **options: Any,
) -> None:
    """:func:`serve` inside a running asyncio event loop (signals still stop it)."""
    import uvicorn

    if not (isinstance(drain_timeout, int | float) and math.isfinite(drain_timeout)):
        raise ValueError(f"drain_timeout must be a number of seconds, not {drain_timeout!r}")
    if drain_timeout < 0:
        raise ValueError(f"drain_timeout must be >= 0, not {drain_timeout!r}")
    settings = {**HARDENED, **options}
    http = _protocol_class("http", settings.get("http", "auto"))
    if http is not None and handshake_timeout is not None:
        settings["http"] = _hardened_http(http, float(handshake_timeout))
    ws = _protocol_class("ws", settings.get("ws", "auto"))
    if ws is not None:
        settings["ws"] = _hardened_ws(ws)
    if isinstance(app, str):
        factory = settings.pop("factory", False)
        app = _load(app, factory)
    drain = Drain()
    config = uvicorn.Config(_DrainGate(app, drain), host=host, port=port, **settings)
    server = _server_class()(config, drain, drain_timeout)
    token = _current.set(drain)
    try:
        await server.serve()
    finally:
        _current.reset(token)


def _load(target: str, factory: bool) -> ASGIApp:
    from uvicorn.importer import import_from_string

    loaded = import_from_string(target)
    return loaded() if factory else loaded  # type: ignore[no-any-return]


# -- the command ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """The ``brillo`` command: ``brillo module:app [--host H] [--port P] ...``."""
    parser = argparse.ArgumentParser(
        prog="brillo",
        description="Serve an ASGI app with uvicorn: hardened WebSocket settings and a graceful "
        "drain on SIGTERM (see docs/deployment.md).",
    )
    parser.add_argument("app", help="the app, as module:attribute")
    parser.add_argument("--factory", action="store_true", help="the attribute is a factory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, help="serve on this already-bound socket")
    parser.add_argument("--drain-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument(
        "--handshake-timeout", type=float, default=HANDSHAKE_TIMEOUT, metavar="SECONDS"
    )
    parser.add_argument("--ws", default=HARDENED["ws"], help="uvicorn's WebSocket protocol")
    parser.add_argument("--ws-max-size", type=int, default=HARDENED["ws_max_size"])
    parser.add_argument("--ws-ping-interval", type=float, default=HARDENED["ws_ping_interval"])
    parser.add_argument("--ws-ping-timeout", type=float, default=HARDENED["ws_ping_timeout"])
    parser.add_argument("--limit-concurrency", type=int, default=None)
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=5)
    parser.add_argument("--proxy-headers", action="store_true")
    parser.add_argument("--forwarded-allow-ips", default=None)
    parser.add_argument("--root-path", default="")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    options: dict[str, Any] = {
        "ws": args.ws,
        "ws_max_size": args.ws_max_size,
        "ws_ping_interval": args.ws_ping_interval,
        "ws_ping_timeout": args.ws_ping_timeout,
        "limit_concurrency": args.limit_concurrency,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
        "proxy_headers": args.proxy_headers,
        "root_path": args.root_path,
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
        "factory": args.factory,
    }
    if args.forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = args.forwarded_allow_ips
    if args.fd is not None:
        options["fd"] = args.fd
    serve(
        args.app,
        host=args.host,
        port=args.port,
        drain_timeout=args.drain_timeout,
        handshake_timeout=args.handshake_timeout or None,
        **options,
    )
