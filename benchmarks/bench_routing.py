"""Routing benchmark: how long the router takes to dispatch to the first vs the last route.

Builds routers of 5 and 1,000 routes (HTTP and WebSocket), then times a full ``Router.app``
dispatch to a no-op endpoint with :mod:`timeit`. The endpoint never suspends, so each dispatch
coroutine runs to completion on a single ``send(None)``: no event loop overhead is measured.

With the route index, dispatching to the last of 1,000 routes should cost about the same as to
the first (target: less than 2x). If ``starlette`` is importable (e.g. in ``.venv-bench``), the
5-route table is also timed under Starlette's router for comparison.

Run: ``.venv/bin/python benchmarks/bench_routing.py`` (``--number N`` to change iterations).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from brillo.routing import Route, Router, WebSocketRoute


class Noop:
    """An ASGI endpoint that does nothing (so only routing is measured)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


async def _receive() -> dict[str, Any]:  # pragma: no cover - never called
    return {"type": "http.request"}


async def _send(message: Any) -> None:  # pragma: no cover - never called
    return None


def build_routes(route_cls: Any, ws_route_cls: Any, count: int) -> list[Any]:
    """``count`` HTTP routes and ``count`` WebSocket routes, static and parametrised mixed."""
    endpoint = Noop()
    routes: list[Any] = []
    for i in range(count):
        if i % 2:
            routes.append(route_cls(f"/api/v1/items{i}/{{item_id:int}}", endpoint))
        else:
            routes.append(route_cls(static_path(i), endpoint))
    for i in range(count):
        routes.append(ws_route_cls(f"/ws/room{i}/{{name}}", endpoint))
    return routes


def static_path(i: int) -> str:
    return f"/api/v1/static{i}"


def param_path(i: int) -> str:
    return f"/api/v1/items{i}/42"


def scope_for(kind: str, path: str) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": kind,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    if kind == "http":
        scope["method"] = "GET"
    return scope


def dispatcher(router: Any, kind: str, path: str) -> Callable[[], None]:
    """A zero-argument callable dispatching one fresh scope through ``router.app``."""
    template = scope_for(kind, path)
    app = router.app

    def run() -> None:
        coro = app(dict(template), _receive, _send)
        try:
            coro.send(None)
        except StopIteration:
            return
        raise RuntimeError("the dispatch suspended; the benchmark endpoint must not")

    run()  # warm up (builds the index) and check it completes
    return run


def best_us(func: Callable[[], None], number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def measure(name: str, router: Any, count: int, number: int) -> list[tuple[str, float, float]]:
    """Time the first and the last route of each kind: static HTTP, parametrised HTTP, WS."""
    last_even = count - 1 if (count - 1) % 2 == 0 else count - 2
    last_odd = count - 1 if (count - 1) % 2 else count - 2
    rows = []
    for label, kind, first, last in (
        ("http static", "http", static_path(0), static_path(last_even)),
        ("http param", "http", param_path(1), param_path(last_odd)),
        ("websocket", "websocket", "/ws/room0/alice", f"/ws/room{count - 1}/alice"),
    ):
        t_first = best_us(dispatcher(router, kind, first), number)
        t_last = best_us(dispatcher(router, kind, last), number)
        rows.append((f"{name} {count} routes {label}", t_first, t_last))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="dispatches per timing")
    args = parser.parse_args()

    rows: list[tuple[str, float, float]] = []
    for count in (5, 1000):
        router = Router(build_routes(Route, WebSocketRoute, count))
        rows += measure("brillo", router, count, args.number)

    try:
        from starlette.routing import Route as SRoute
        from starlette.routing import Router as SRouter
        from starlette.routing import WebSocketRoute as SWebSocketRoute
    except ImportError:
        starlette_note = "starlette not importable: comparison skipped"
    else:
        starlette_note = ""
        for count in (5, 1000):
            srouter = SRouter(build_routes(SRoute, SWebSocketRoute, count))
            rows += measure("starlette", srouter, count, args.number)

    width = max(len(r[0]) for r in rows)
    print(f"{'scenario':<{width}}  {'first (us)':>10}  {'last (us)':>10}  {'last/first':>10}")
    for label, first, last in rows:
        print(f"{label:<{width}}  {first:>10.2f}  {last:>10.2f}  {last / first:>10.2f}")
    if starlette_note:
        print(starlette_note)
    worst = max(last / first for label, first, last in rows if label.startswith("brillo 1000"))
    verdict = "OK" if worst < 2 else "TOO SLOW"
    print(f"brillo, 1000 routes: last route costs {worst:.2f}x the first (target < 2x): {verdict}")


if __name__ == "__main__":
    main()
