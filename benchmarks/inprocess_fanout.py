"""Fan-out through ``brillo.realtime.Hub`` in-process, with no server: the hub's cost per delivery.

``members`` brillo WebSockets over an ASGI ``send`` that completes at once (a healthy socket)
join one room of a ``memory://`` hub, and ``messages`` 256-byte JSON messages are published to
it; the run ends when every member has every message. ``bare`` instead awaits the raw ``send``
of every member in turn with one message built once per publish (the bare app's loop).

Modes (``--mode``):

* ``eager`` (asyncio): the members' sends are marked safe to start in the publishing task
  (``eager_send_safe``), as brillo's WebSocket over uvicorn's send is: the production path.
* ``writer``: every send runs in the member's writer task (``Hub(eager_sends=False)``; on trio
  that is the only path).

Two uses:

* ``python -m benchmarks.inprocess_fanout`` prints nanoseconds per delivery, best of 5 runs.
* ``python -m benchmarks.inprocess_fanout --messages N ...`` makes one run; under
  ``valgrind --tool=callgrind`` with two values of N, (difference in instructions) / (difference
  in N x members) is the instruction count per delivery, a figure that does not move with the
  load on the machine.
"""

from __future__ import annotations

import argparse
import inspect
import time
from typing import Any

import anyio

from benchmarks.inprocess import _websocket_scope

PAYLOAD = {"t": 0.0, "pad": "x" * 230}


async def _connect() -> Any:
    return {"type": "websocket.connect"}


class _Counter:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.send":
            self.count += 1


async def _run_hub(members: int, messages: int, mode: str) -> float:
    from brillo.realtime import Hub
    from brillo.websockets import WebSocket

    counter = _Counter()
    # The watchdog scans every member every write_timeout / 4 seconds of wall time: under
    # callgrind's slowdown that would count as per-delivery work, so it is kept out of the way.
    options: dict[str, Any] = {"queue_size": max(256, messages + 1), "write_timeout": 3600.0}
    if mode == "writer" and "eager_sends" in inspect.signature(Hub).parameters:
        options["eager_sends"] = False  # (older hubs have no such option: use trio there)
    hub = Hub("memory://", **options)
    sockets = []
    for _ in range(members):
        websocket = WebSocket(_websocket_scope("/ws/fanout"), _connect, counter.send)
        await websocket.accept()
        websocket.eager_send_safe = mode == "eager"  # type: ignore[attr-defined]
        sockets.append(websocket)
    target = members * messages
    async with hub:
        for websocket in sockets:
            await hub.enter(websocket, "bench")
        start = time.perf_counter_ns()
        for _ in range(messages):
            await hub.publish("bench", PAYLOAD)
        while counter.count < target:
            await anyio.sleep(0)
        elapsed = time.perf_counter_ns() - start
        for websocket in sockets:
            await hub.leave(websocket, "bench")
    return elapsed / target


async def _run_bare(members: int, messages: int, mode: str) -> float:
    import json

    counter = _Counter()
    sends = [counter.send for _ in range(members)]
    start = time.perf_counter_ns()
    for _ in range(messages):
        message = {"type": "websocket.send", "text": json.dumps(PAYLOAD)}
        for send in sends:
            await send(message)
    return (time.perf_counter_ns() - start) / (members * messages)


RUNNERS = {"hub": _run_hub, "bare": _run_bare}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=list(RUNNERS), default="hub")
    parser.add_argument("--mode", choices=["eager", "writer"], default="eager")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=0, help="make one run of this many")
    args = parser.parse_args(argv)
    runner = RUNNERS[args.variant]
    if args.messages:
        anyio.run(runner, args.members, args.messages, args.mode, backend=args.backend)
        return
    best = min(
        anyio.run(runner, args.members, 50, args.mode, backend=args.backend) for _ in range(5)
    )
    print(
        f"{args.variant} {args.mode} {args.backend} {args.members} members: {best:.0f} ns/delivery"
    )


if __name__ == "__main__":
    main()
