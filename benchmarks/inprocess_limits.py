"""The per-message cost of WebSocket protection, in-process: an echo route with each option.

``python -m benchmarks.inprocess_limits --messages N VARIANT`` opens one connection to an echo
route, echoes N text messages and disconnects (``--connections K`` repeats that K times, for the
cost per connection); run it under callgrind with two values of N and
divide the difference in instructions by the difference in N (with ``PYTHONHASHSEED=0``) to get
instructions per echoed message::

    for n in 1000 3000; do PYTHONHASHSEED=0 valgrind --tool=callgrind \\
      --callgrind-out-file=/dev/null .venv/bin/python -m benchmarks.inprocess_limits \\
      --messages $n size 2>&1 | grep Collected; done

Without ``--messages`` it prints nanoseconds per message for every variant (best of 5).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from benchmarks.inprocess import _sink, _websocket_scope
from brillo.applications import Brillo
from brillo.middleware import Middleware
from brillo.middleware.websocket_protection import (
    RateLimit,
    WebSocketLimits,
    WebSocketProtectionMiddleware,
)
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


_RATE = RateLimit(1e9, burst=1_000_000)
VARIANTS: dict[str, dict[str, Any]] = {
    "none": {},
    "origin": {"middleware": True},  # the application's origin check: handshake only
    "origin-route": {"allow_origins": ["self"]},  # the same check on the route
    "size": {"limits": WebSocketLimits(max_message_size=65536)},
    "rate": {"limits": WebSocketLimits(rate=_RATE)},
    "idle": {"limits": WebSocketLimits(idle_timeout=60)},
    "all": {
        "limits": WebSocketLimits(max_message_size=65536, rate=_RATE, idle_timeout=60),
        "middleware": True,
    },
}


def build(variant: str) -> Brillo:
    options = VARIANTS[variant]
    middleware = [Middleware(WebSocketProtectionMiddleware)] if options.get("middleware") else []
    route = WebSocketRoute(
        "/ws/echo", echo, limits=options.get("limits"), allow_origins=options.get("allow_origins")
    )
    return Brillo(routes=[route], middleware=middleware)


async def connection(app: Brillo, messages: int) -> None:
    """One connection echoing ``messages`` messages (uvicorn-like scope and messages)."""
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    incoming += [{"type": "websocket.receive", "text": "hello"}] * messages
    incoming.append({"type": "websocket.disconnect", "code": 1000})
    feed = iter(incoming)

    async def receive() -> Any:
        return next(feed)

    scope = _websocket_scope("/ws/echo")
    scope["headers"] = [*scope["headers"], (b"origin", b"http://127.0.0.1:8000")]
    await app(scope, receive, _sink)


async def connections(app: Brillo, messages: int, count: int) -> None:
    """``count`` connections in turn, each echoing ``messages`` messages."""
    for _ in range(count):
        await connection(app, messages)


async def _table() -> None:
    for variant in VARIANTS:
        app = build(variant)
        await connection(app, 1000)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter_ns()
            await connection(app, 20_000)
            best = min(best, (time.perf_counter_ns() - start) / 20_000)
        print(f"{variant:8s} {best:7.0f} ns per echoed message")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("variant", nargs="?", choices=list(VARIANTS))
    args = parser.parse_args(argv)
    if args.messages:
        if args.variant is None:
            parser.error("--messages needs a variant")
        asyncio.run(connections(build(args.variant), args.messages, args.connections))
        return
    asyncio.run(_table())


if __name__ == "__main__":
    main()
