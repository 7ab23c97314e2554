"""The channel protocol in-process, with no server: what ``brillo.realtime.channels`` costs.

Two scenarios, each beside the reference it must be compared with:

* ``roundtrip``: one brillo WebSocket served by ``Channels.serve``; the client pushes an event
  (a 60-byte JSON payload validated into a msgspec Struct) and waits for its reply, ``calls``
  times. Reference ``echo``: the same socket with a handler that ``receive_json``\\ s the frame
  and ``send_json``\\ s a reply (no protocol, no validation, no hub).
* ``fanout``: ``members`` WebSockets in one room; ``messages`` 256-byte JSON messages are
  broadcast with ``Channels.broadcast``. Reference ``hub``: the same members joined with
  ``hub.enter`` and ``hub.publish`` (the hub without envelopes, as
  ``benchmarks/inprocess_fanout.py`` measures it). Both use the eager path of the hub's
  writers (asyncio, sockets marked safe), as brillo's WebSocket over uvicorn does.

Use ``python -m benchmarks.inprocess_channels SCENARIO VARIANT`` for nanoseconds per round trip
or per delivery (best of 5), or ``--count N`` for one run, under
``valgrind --tool=callgrind`` with two values of N: (difference in instructions) / (difference
in N, times members for fan-out) is the instruction count, which does not move with the load
on the machine.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec

from benchmarks.inprocess import _websocket_scope
from benchmarks.inprocess_fanout import PAYLOAD, _Counter

PUSH = {"t": 0.0, "text": "hello, how are you doing today?"}


class Say(msgspec.Struct):
    t: float
    text: str


def _channels(**hub_options: Any) -> Any:
    from brillo.realtime import Channel, Channels, Context, Hub

    hub = Hub("memory://", envelope=True, write_timeout=3600.0, **hub_options)
    room = Channel("bench", presence=False)

    @room.on("say")
    async def say(ctx: Context, payload: Say) -> dict[str, bool]:
        return {"ok": True}

    return Channels(hub, [room])


class _Client:
    """The client end of one in-process socket: frames to the app, and a count of replies."""

    def __init__(self, frames: list[str], stop: anyio.Event, wait: Callable[[], Any]) -> None:
        self.frames = frames
        self.stop = stop
        self.wait = wait
        self.connected = False

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        await self.wait()
        if self.frames:
            return {"type": "websocket.receive", "text": self.frames.pop()}
        await self.stop.wait()
        return {"type": "websocket.disconnect", "code": 1000}


async def _roundtrip(calls: int, variant: str) -> float:
    from brillo.websockets import WebSocket

    counter = _Counter()
    push = json.dumps(
        {"type": "push", "room": "bench", "event": "say", "ref": "1", "payload": PUSH}
    )
    frames = [push] * calls
    if variant == "channels":
        frames.append(json.dumps({"type": "join", "ref": "0", "room": "bench"}))
    stop = anyio.Event()
    sent = [0]

    async def wait_for_reply() -> None:  # a round trip: the next push after the reply
        while counter.count < sent[0]:
            await anyio.sleep(0)
        sent[0] += 1

    client = _Client(frames, stop, wait_for_reply)
    websocket = WebSocket(_websocket_scope("/ws"), client.receive, counter.send)
    websocket.eager_send_safe = True  # type: ignore[attr-defined]
    start = time.perf_counter_ns()
    if variant == "channels":
        channels = _channels()
        async with channels.hub, anyio.create_task_group() as tasks:
            tasks.start_soon(channels.serve, websocket)
            while counter.count < calls + 1:
                await anyio.sleep(0)
            stop.set()
    else:
        await websocket.accept()
        while True:
            try:
                frame = await websocket.receive_json()
            except Exception:
                break
            await websocket.send_json({"type": "reply", "ref": frame["ref"], "payload": {"ok": 1}})
            if counter.count >= calls:
                break
    return (time.perf_counter_ns() - start) / calls


async def _fanout(count: int, variant: str, members: int) -> float:
    from brillo.websockets import WebSocket

    counter = _Counter()
    stop = anyio.Event()
    target = members * count

    async def never() -> None:
        return None

    if variant == "channels":
        channels = _channels(queue_size=max(256, count + 2))
        hub = channels.hub
    else:
        from brillo.realtime import Hub

        hub = Hub("memory://", queue_size=max(256, count + 1), write_timeout=3600.0)
    sockets = []
    for _ in range(members):
        frames = [json.dumps({"type": "join", "ref": "0", "room": "bench"})]
        client = _Client(frames, stop, never)
        websocket = WebSocket(_websocket_scope("/ws"), client.receive, counter.send)
        websocket.eager_send_safe = True  # type: ignore[attr-defined]
        sockets.append(websocket)
    async with hub, anyio.create_task_group() as tasks:
        if variant == "channels":
            for websocket in sockets:
                tasks.start_soon(channels.serve, websocket)
            while counter.count < members:  # every join reply is out
                await anyio.sleep(0)
            base = members
        else:
            for websocket in sockets:
                await websocket.accept()
                await hub.enter(websocket, "bench")
            base = 0
        start = time.perf_counter_ns()
        for _ in range(count):
            if variant == "channels":
                await channels.broadcast("bench", "tick", PAYLOAD)
            else:
                await hub.publish("bench", PAYLOAD)
        while counter.count < base + target:
            await anyio.sleep(0)
        elapsed = time.perf_counter_ns() - start
        stop.set()
        if variant == "hub":
            for websocket in sockets:
                await hub.leave(websocket, "bench")
    return elapsed / target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["roundtrip", "fanout"])
    parser.add_argument("variant", choices=["channels", "echo", "hub"])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--count", type=int, default=0, help="make one run of this many")
    args = parser.parse_args(argv)
    allowed = {"roundtrip": ("channels", "echo"), "fanout": ("channels", "hub")}
    if args.variant not in allowed[args.scenario]:
        parser.error(f"{args.scenario} compares {' and '.join(allowed[args.scenario])}")

    def run(count: int) -> float:
        if args.scenario == "roundtrip":
            return anyio.run(_roundtrip, count, args.variant)
        return anyio.run(_fanout, count, args.variant, args.members)

    if args.count:
        run(args.count)
        return
    default = 2000 if args.scenario == "roundtrip" else 50
    best = min(run(default) for _ in range(5))
    unit = "round trip" if args.scenario == "roundtrip" else "delivery"
    print(f"{args.scenario} {args.variant}: {best:.0f} ns per {unit}")


if __name__ == "__main__":
    main()
