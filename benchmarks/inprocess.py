"""Drive a benchmark app's coroutine in-process, with no server: the cost of the app alone.

Two uses:

* ``python -m benchmarks.inprocess`` prints, for each variant and endpoint, the best of 7 runs of
  20,000 calls, in nanoseconds per call (one core; noisy machines still give a steady minimum).
* ``python -m benchmarks.inprocess --calls N VARIANT ENDPOINT`` just makes N calls; run it under
  ``valgrind --tool=callgrind`` with two values of N and divide the difference in instructions
  by the difference in N to get instructions per call, a figure that does not move with the
  load on the machine (``scripts/bench`` does not need valgrind; this is for profiling work).

Endpoints: ``plaintext`` and ``json`` (HTTP GET) and ``connect`` (a WebSocket that is accepted,
echoes one message and sees the client disconnect). The scope and messages imitate uvicorn's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

VARIANTS = {
    "bare": "benchmarks.apps.bare",
    "brillo": "benchmarks.apps.brillo_app",
    "starlette": "benchmarks.apps.starlette_app",
}
ENDPOINTS = ("plaintext", "json", "connect")

_HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


def _scope(kind: str, scheme: str, path: str, **extra: Any) -> dict[str, Any]:
    scope = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": scheme,
        "root_path": "",
        "headers": _HEADERS,
        "state": {},
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
    }
    scope.update(extra)
    return scope


def _http_scope(path: str) -> dict[str, Any]:
    return _scope("http", "http", path, method="GET")


def _websocket_scope(path: str) -> dict[str, Any]:
    return _scope(
        "websocket",
        "ws",
        path,
        headers=[*_HEADERS, (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")],
        subprotocols=[],
        extensions={"websocket.http.response": {}},
    )


async def _sink(message: Any) -> None:
    return None


def one_call(
    app: Any, endpoint: str, send: Callable[[Any], Awaitable[None]] = _sink
) -> Callable[[], Awaitable[None]]:
    """A coroutine function making one call of ``app`` for ``endpoint``, sending to ``send``."""
    if endpoint == "connect":

        async def connect() -> None:
            messages = iter(
                (
                    {"type": "websocket.connect"},
                    {"type": "websocket.receive", "text": "hello"},
                    {"type": "websocket.disconnect", "code": 1000},
                )
            )

            async def receive() -> Any:
                return next(messages)

            await app(_websocket_scope("/ws/echo"), receive, send)

        return connect

    path = "/" + endpoint

    async def receive() -> Any:
        return _REQUEST

    async def request() -> None:
        await app(_http_scope(path), receive, send)

    return request


def load(variant: str) -> Any:
    """The ``app`` of a benchmark variant (Starlette only where it is installed)."""
    return importlib.import_module(VARIANTS[variant]).app


async def best_ns(call: Callable[[], Awaitable[None]], calls: int = 20_000) -> float:
    """Best of 7 runs of ``calls`` calls, in nanoseconds per call."""
    for _ in range(200):
        await call()
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter_ns()
        for _ in range(calls):
            await call()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


async def _table(variants: list[str]) -> None:
    apps = {}
    for variant in variants:
        try:
            apps[variant] = load(variant)
        except ImportError as exc:
            print(f"{variant}: not importable here ({exc}); skipped")
    for endpoint in ENDPOINTS:
        base = None
        for variant, app in apps.items():
            ns = await best_ns(one_call(app, endpoint))
            base = ns if base is None else base
            print(f"{endpoint:10s} {variant:10s} {ns:9.0f} ns  {ns / base:5.2f}x {variants[0]}")


async def _calls(app: Any, endpoint: str, count: int) -> None:
    call = one_call(app, endpoint)
    for _ in range(count):
        await call()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=0, help="make this many calls and exit")
    parser.add_argument("variant", nargs="?", choices=list(VARIANTS))
    parser.add_argument("endpoint", nargs="?", choices=ENDPOINTS)
    args = parser.parse_args(argv)
    if args.calls:
        if args.variant is None or args.endpoint is None:
            parser.error("--calls needs a variant and an endpoint")
        asyncio.run(_calls(load(args.variant), args.endpoint, args.calls))
        return
    variants = [args.variant] if args.variant else list(VARIANTS)
    if "bare" not in variants:
        variants.insert(0, "bare")
    asyncio.run(_table(variants))


if __name__ == "__main__":
    main()
