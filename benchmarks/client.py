"""WebSocket load client for the benchmark runner (picows on uvloop).

One process runs one mode. The protocol with the runner is line based:

- the client connects and warms up, then prints ``{"event": "ready", ...}`` on stdout;
- the runner snapshots the server's CPU time and writes ``go`` on stdin;
- the client runs the measured window, prints ``{"event": "stop"}`` the moment it ends (the runner
  snapshots server CPU again), then prints ``{"event": "result", ...}`` and exits.

Fan-out receivers instead end when they have every ``end`` marker or when the runner writes
``stop``. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from typing import Any

import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

TEXT = WSMsgType.TEXT
CLOSE = WSMsgType.CLOSE
now_ns = time.monotonic_ns  # CLOCK_MONOTONIC: comparable across processes on Linux


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def read_line() -> str:
    loop = asyncio.get_running_loop()
    line: str = await loop.run_in_executor(None, sys.stdin.readline)
    return line.strip()


def percentiles(samples: Any) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "p50_ms": ordered[min(n - 1, n // 2)] / 1e6,
        "p99_ms": ordered[min(n - 1, (n * 99) // 100)] / 1e6,
    }


async def connect_many(factory: Any, url: str, n: int, concurrency: int = 64) -> list[Any]:
    """Open ``n`` connections, at most ``concurrency`` handshakes in flight (fits the backlog)."""
    sem = asyncio.Semaphore(concurrency)
    out: list[Any] = []

    async def one() -> None:
        async with sem:
            for attempt in range(5):
                try:
                    transport, listener = await ws_connect(
                        factory, url, websocket_handshake_timeout=20
                    )
                    out.append((transport, listener))
                    return
                except (TimeoutError, OSError):
                    await asyncio.sleep(0.05 * (attempt + 1))

    await asyncio.gather(*(one() for _ in range(n)))
    return out


# --- echo / json: closed loop, one message in flight per connection --------------------------


class Stats:
    def __init__(self) -> None:
        self.running = True
        self.measuring = False
        self.count = 0
        self.errors = 0
        self.lat: array.array[int] = array.array("q")


class Pinger(WSListener):
    def __init__(self, stats: Stats, messages: list[bytes], check: Any) -> None:
        self.stats = stats
        self.messages = messages
        self.check = check
        self.i = 0
        self.t0 = 0
        self.checked = 0
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def fire(self) -> None:
        msg = self.messages[self.i % len(self.messages)]
        self.i += 1
        self.t0 = now_ns()
        assert self.transport is not None
        self.transport.send(TEXT, msg)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            return
        t = now_ns()
        stats = self.stats
        if self.checked < 20:  # validate the first replies of every connection
            self.checked += 1
            sent = self.messages[(self.i - 1) % len(self.messages)]
            if not self.check(sent, frame.get_payload_as_bytes()):
                stats.errors += 1
        if stats.measuring:
            stats.count += 1
            stats.lat.append(t - self.t0)
        if stats.running:
            self.fire()


def check_echo(sent: bytes, got: bytes) -> bool:
    return sent == got


def check_json(sent: bytes, got: bytes) -> bool:
    s: dict[str, Any] = json.loads(sent)
    g: dict[str, Any] = json.loads(got)
    if s["type"] == "ping":
        return g == {"type": "pong"}
    return g == s


async def run_closed_loop(args: argparse.Namespace) -> None:
    stats = Stats()
    if args.mode == "echo":
        messages = [b"x" * args.size]
        check = check_echo
        path = "/ws/echo"
    else:
        messages = [
            b'{"type":"ping"}',
            json.dumps({"type": "message", "user": "bench", "text": "hello, world"}).encode(),
        ]
        check = check_json
        path = "/ws/json"
    url = f"ws://127.0.0.1:{args.port}{path}"
    conns = await connect_many(lambda: Pinger(stats, messages, check), url, args.conns)
    for _, listener in conns:
        listener.fire()
    await asyncio.sleep(args.warmup)
    emit({"event": "ready", "connections": len(conns)})
    await read_line()
    c0 = time.process_time()
    w0 = time.perf_counter()
    stats.measuring = True
    await asyncio.sleep(args.duration)
    stats.measuring = False
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    emit({"event": "stop"})
    stats.running = False
    await asyncio.sleep(0.2)
    for transport, _ in conns:
        transport.send_close(WSCloseCode.OK)
    await asyncio.sleep(0.2)
    for transport, _ in conns:
        transport.disconnect()
    emit(
        {
            "event": "result",
            "messages": stats.count,
            "wall_s": wall,
            "rate": stats.count / wall,
            "client_cpu_s": cpu,
            "client_util": cpu / wall,
            "errors": stats.errors,
            "connections": len(conns),
            **percentiles(stats.lat),
        }
    )


# --- connection set-up: handshake, one message, close ----------------------------------------


class OneShot(WSListener):
    def __init__(self) -> None:
        self.ok = False
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.send(TEXT, b"hello")

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            self.ok = frame.get_payload_as_bytes() == b"hello"
            transport.send_close(WSCloseCode.OK)
        elif frame.msg_type == CLOSE:
            transport.disconnect()


async def run_connect(args: argparse.Namespace) -> None:
    url = f"ws://127.0.0.1:{args.port}/ws/echo"
    state = {"measuring": False, "running": True, "count": 0, "errors": 0}
    lat: array.array[int] = array.array("q")

    async def worker() -> None:
        while state["running"]:
            t0 = now_ns()
            try:
                transport, listener = await ws_connect(OneShot, url, websocket_handshake_timeout=10)
                try:
                    await asyncio.wait_for(transport.wait_disconnected(), 10)
                except TimeoutError:
                    transport.disconnect()
                ok = listener.ok
            except (TimeoutError, OSError):
                ok = False
                await asyncio.sleep(0.01)
            if state["measuring"]:
                if ok:
                    state["count"] += 1
                    lat.append(now_ns() - t0)
                else:
                    state["errors"] += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(args.conns)]
    await asyncio.sleep(args.warmup)
    emit({"event": "ready", "connections": args.conns})
    await read_line()
    c0 = time.process_time()
    w0 = time.perf_counter()
    state["measuring"] = True
    await asyncio.sleep(args.duration)
    state["measuring"] = False
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    emit({"event": "stop"})
    state["running"] = False
    await asyncio.wait(tasks, timeout=15)
    emit(
        {
            "event": "result",
            "connections_done": state["count"],
            "wall_s": wall,
            "rate": state["count"] / wall,
            "client_cpu_s": cpu,
            "client_util": cpu / wall,
            "errors": state["errors"],
            **percentiles(lat),
        }
    )


# --- fan-out: receivers, and a publisher that is itself a room member -------------------------


def parse_ts(payload: bytes) -> int:
    # payload is a JSON object whose first key is "ts": {"ts":123,...} or {"ts": 123, ...}
    start = payload.index(b":") + 1
    return int(payload[start : payload.index(b",", start)])


class Receiver(WSListener):
    def __init__(self, shared: dict[str, Any], lat: array.array[int]) -> None:
        self.shared = shared
        self.lat = lat

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            return
        t = now_ns()
        ts = parse_ts(frame.get_payload_as_bytes())
        shared = self.shared
        if ts <= 1:  # 1: a filler from before this client joined; 0: the end marker
            if ts == 1:
                return
            shared["ended"] += 1
            if shared["ended"] >= shared["expected"]:
                shared["done"].set()
            return
        self.lat.append(t - ts)
        shared["last"] = t
        if shared["first"] == 0:
            shared["first"] = t


async def run_fanout_recv(args: argparse.Namespace) -> None:
    url = f"ws://127.0.0.1:{args.port}/ws/fanout?room=bench"
    lat: array.array[int] = array.array("q")
    shared: dict[str, Any] = {
        "ended": 0,
        "expected": 0,
        "done": asyncio.Event(),
        "first": 0,
        "last": 0,
    }
    conns = await connect_many(lambda: Receiver(shared, lat), url, args.conns)
    shared["expected"] = len(conns)
    emit({"event": "ready", "connections": len(conns)})
    await read_line()  # go
    c0 = time.process_time()
    w0 = time.perf_counter()
    stop_line = asyncio.ensure_future(read_line())
    done = asyncio.ensure_future(shared["done"].wait())
    await asyncio.wait([stop_line, done], timeout=args.duration, return_when="FIRST_COMPLETED")
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    emit({"event": "stop"})
    if args.lat_file:
        with open(args.lat_file, "wb") as fh:
            lat.tofile(fh)
    for transport, _ in conns:
        transport.disconnect()
    emit(
        {
            "event": "result",
            "deliveries": len(lat),
            "connections": len(conns),
            "ended": shared["ended"],
            "first_ns": shared["first"],
            "last_ns": shared["last"],
            "wall_s": wall,
            "client_cpu_s": cpu,
            "client_util": cpu / wall,
        }
    )
    os._exit(0)  # the stdin reader thread may still be blocked


class Publisher(WSListener):
    def __init__(self) -> None:
        self.own: asyncio.Queue[int] = asyncio.Queue()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            ts = parse_ts(frame.get_payload_as_bytes())
            if ts != 1:  # ignore our own fillers
                self.own.put_nowait(ts)


def stalled_socket(port: int) -> socket.socket:
    """A raw WebSocket client with a tiny receive buffer that never reads after the handshake."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(
        (
            "GET /ws/fanout?room=bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: read nothing past the handshake
        if not chunk:
            raise RuntimeError("stalled client: server closed during handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"stalled client: handshake failed: {head[:80]!r}")
    return sock


async def run_fanout_pub(args: argparse.Namespace) -> None:
    url = f"ws://127.0.0.1:{args.port}/ws/fanout?room=bench"
    pad = "p" * max(0, args.size - 40)
    stalled = stalled_socket(args.port) if args.stall else None
    transport, _ = await ws_connect(Publisher, url)
    if stalled is not None:
        # Bring the stalled member to its steady state before anyone else joins: a client that
        # stops reading only holds the server back once the server's socket send buffer
        # (loopback autotunes it to ~3 MB) and the transport's write buffer are full. Broadcasts
        # of 256 bytes would take minutes to get there; a few large ones, sent while the room
        # holds only the publisher and the stalled client, take a moment. ts=1 marks them
        # (everyone ignores them).
        filler = json.dumps({"ts": 1, "fill": "f" * (64 * 1024)}).encode()
        for _ in range(args.fill_mb * 16):
            transport.send(TEXT, filler)
        await asyncio.sleep(1.5)
    emit({"event": "filled", "stalled": stalled is not None})
    # The pacer is a member that joins last (after the receivers). Where the server wakes members
    # in join order its copy arrives after everyone else's, so a window of unacknowledged
    # broadcasts on the pacer bounds the backlog for every variant.
    await read_line()  # join
    _, pub = await ws_connect(Publisher, url)
    assert isinstance(pub, Publisher)
    emit({"event": "ready", "connections": 2 + (stalled is not None)})
    await read_line()
    c0 = time.process_time()
    w0 = time.perf_counter()
    first_send = now_ns()
    deadline = time.perf_counter() + args.duration
    sent = 0
    received = 0
    blocked = False
    inflight = 0
    while sent < args.broadcasts and time.perf_counter() < deadline:
        while inflight < args.window and sent < args.broadcasts:
            msg = json.dumps({"ts": now_ns(), "seq": sent + 1, "pad": pad}, separators=(",", ":"))
            transport.send(TEXT, msg.encode())
            sent += 1
            inflight += 1
        try:
            await asyncio.wait_for(pub.own.get(), args.block_timeout)
        except TimeoutError:
            blocked = True
            break
        received += 1
        inflight -= 1
    while inflight and not blocked:
        try:
            await asyncio.wait_for(pub.own.get(), args.block_timeout)
            received += 1
            inflight -= 1
        except TimeoutError:
            blocked = True
    last_own = now_ns()
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    transport.send(TEXT, b'{"ts":0,"end":1}')
    emit({"event": "stop"})
    await asyncio.sleep(0.1)
    emit(
        {
            "event": "result",
            "sent": sent,
            "own_received": received,
            "blocked": blocked,
            "first_send_ns": first_send,
            "last_own_ns": last_own,
            "wall_s": wall,
            "client_cpu_s": cpu,
            "client_util": cpu / wall,
        }
    )
    transport.disconnect()
    if stalled is not None:
        stalled.close()


# --- lockstep fan-out: the next broadcast once every member has the previous ones ----------
#
# Each receiver process counts, per broadcast, how many of its connections got it and, when all
# did, sends the broadcast's number to the publisher over UDP on 127.0.0.1. The publisher keeps
# at most ``--window`` broadcasts not yet acknowledged by every receiver process (1: lockstep).


def parse_seq(payload: bytes) -> int:
    start = payload.index(b'"seq":') + 6
    end = start
    while payload[end : end + 1].isdigit():
        end += 1
    return int(payload[start:end])


#: ``ts`` of the publisher's warm-up broadcasts: sent until one reaches every member, so the
#: measured broadcasts start once every member has joined the room (a hub over Redis confirms
#: each connection's own subscription before it joins: with 1,000 members arriving at once, some
#: were not in the room yet when the first broadcasts went out, and the run stalled)
WARMUP_TS = 2
#: warm-up broadcasts count from here, well above the measured ones
WARMUP_SEQ = 1_000_000_000


class AckingReceiver(WSListener):
    def __init__(self, shared: dict[str, Any], lat: array.array[int]) -> None:
        self.shared = shared
        self.lat = lat

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            return
        t = now_ns()
        payload = frame.get_payload_as_bytes()
        ts = parse_ts(payload)
        shared = self.shared
        if ts <= WARMUP_TS:
            if ts == 0:
                shared["ended"] += 1
                if shared["ended"] >= shared["expected"]:
                    shared["done"].set()
            elif ts == WARMUP_TS:  # acknowledged like a broadcast, not measured
                self.count(parse_seq(payload))
            return
        self.lat.append(t - ts)
        shared["last"] = t
        if shared["first"] == 0:
            shared["first"] = t
        self.count(parse_seq(payload))

    def count(self, seq: int) -> None:
        shared = self.shared
        counts = shared["counts"]
        got = counts.get(seq, 0) + 1
        if got >= shared["expected"]:
            counts.pop(seq, None)
            shared["ack"].sendto(b"%d" % seq, ("127.0.0.1", shared["ack_port"]))
        else:
            counts[seq] = got


async def run_fanout_acking_recv(args: argparse.Namespace) -> None:
    url = f"ws://127.0.0.1:{args.port}/ws/fanout?room=bench"
    lat: array.array[int] = array.array("q")
    ack = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    shared: dict[str, Any] = {
        "ended": 0,
        "expected": 0,
        "done": asyncio.Event(),
        "first": 0,
        "last": 0,
        "counts": {},
        "ack": ack,
        "ack_port": args.ack_port,
    }
    conns = await connect_many(lambda: AckingReceiver(shared, lat), url, args.conns)
    shared["expected"] = len(conns)
    emit({"event": "ready", "connections": len(conns)})
    await read_line()  # go
    c0 = time.process_time()
    w0 = time.perf_counter()
    stop_line = asyncio.ensure_future(read_line())
    done = asyncio.ensure_future(shared["done"].wait())
    await asyncio.wait([stop_line, done], timeout=args.duration, return_when="FIRST_COMPLETED")
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    emit({"event": "stop"})
    if args.lat_file:
        with open(args.lat_file, "wb") as fh:
            lat.tofile(fh)
    for transport, _ in conns:
        transport.disconnect()
    ack.close()
    emit(
        {
            "event": "result",
            "deliveries": len(lat),
            "connections": len(conns),
            "ended": shared["ended"],
            "first_ns": shared["first"],
            "last_ns": shared["last"],
            "wall_s": wall,
            "client_cpu_s": cpu,
            "client_util": cpu / wall,
        }
    )
    os._exit(0)


class Ignore(WSListener):
    pass


class AckProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.acks: dict[int, int] = {}
        self.changed = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        seq = int(data)
        self.acks[seq] = self.acks.get(seq, 0) + 1
        self.changed.set()


async def run_fanout_acked_pub(args: argparse.Namespace) -> None:
    """Publisher of the lockstep / windowed fan-out: paced by the receivers' acknowledgements."""
    loop = asyncio.get_running_loop()
    ack_transport, acks = await loop.create_datagram_endpoint(
        AckProtocol, local_addr=("127.0.0.1", 0)
    )
    ack_port = ack_transport.get_extra_info("sockname")[1]
    url = f"ws://127.0.0.1:{args.port}/ws/fanout?room=bench"
    pad = "p" * max(0, args.size - 40)
    transport, _ = await ws_connect(Ignore, url)
    emit({"event": "filled", "ack_port": ack_port})
    await read_line()  # join: the publisher is a member; wait until every member is one too
    warm = WARMUP_SEQ
    give_up = time.perf_counter() + 120
    while True:
        warm += 1
        transport.send(TEXT, b'{"ts":%d,"seq":%d}' % (WARMUP_TS, warm))
        stop = time.perf_counter() + 1.0
        while acks.acks.get(warm, 0) < args.procs and time.perf_counter() < stop:
            acks.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acks.changed.wait(), max(0.01, stop - time.perf_counter()))
        if acks.acks.get(warm, 0) >= args.procs:
            break
        if time.perf_counter() > give_up:
            raise SystemExit("fanout-acked-pub: the members never all joined the room")
    await asyncio.sleep(0.2)  # the last warm-up's stragglers
    acks.acks.clear()
    emit({"event": "ready", "connections": 1})
    await read_line()  # go
    c0 = time.process_time()
    w0 = time.perf_counter()
    first_send = now_ns()
    deadline = time.perf_counter() + args.duration
    sent = complete = 0
    blocked = False
    procs = args.procs
    while complete < args.broadcasts:
        while sent - complete < args.window and sent < args.broadcasts:
            sent += 1
            msg = json.dumps({"ts": now_ns(), "seq": sent, "pad": pad}, separators=(",", ":"))
            transport.send(TEXT, msg.encode())
        while acks.acks.get(complete + 1, 0) >= procs:
            del acks.acks[complete + 1]
            complete += 1
        if complete >= args.broadcasts:
            break
        if sent - complete < args.window and sent < args.broadcasts:
            continue
        left = min(args.block_timeout, deadline - time.perf_counter())
        if left <= 0:
            blocked = True
            break
        acks.changed.clear()
        try:
            await asyncio.wait_for(acks.changed.wait(), left)
        except TimeoutError:
            blocked = True
            break
    last_ack = now_ns()
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    transport.send(TEXT, b'{"ts":0,"end":1}')
    emit({"event": "stop"})
    await asyncio.sleep(0.1)
    emit(
        {
            "event": "result",
            "sent": sent,
            "complete": complete,
            "blocked": blocked,
            "first_send_ns": first_send,
            "last_own_ns": last_ack,
            "wall_s": wall,
            "client_cpu_s": cpu,
            "client_util": cpu / wall,
        }
    )
    transport.disconnect()
    ack_transport.close()


# --- idle connections (memory per connection) -------------------------------------------------


class Idle(WSListener):
    pass


async def run_idle(args: argparse.Namespace) -> None:
    url = f"ws://127.0.0.1:{args.port}{args.path}"
    conns = await connect_many(Idle, url, args.conns)
    emit({"event": "ready", "connections": len(conns)})
    await read_line()
    emit({"event": "stop"})
    emit({"event": "result", "connections": len(conns)})
    for transport, _ in conns:
        transport.disconnect()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    modes = [
        "echo",
        "json",
        "connect",
        "fanout-recv",
        "fanout-pub",
        "fanout-acking-recv",
        "fanout-acked-pub",
        "idle",
    ]
    parser.add_argument("mode", choices=modes)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--broadcasts", type=int, default=100)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--block-timeout", type=float, default=3.0)
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--fill-mb", type=int, default=5)
    parser.add_argument("--lat-file", default="")
    parser.add_argument("--ack-port", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1, help="receiver processes that ack")
    parser.add_argument("--path", default="/ws/echo", help="idle mode: the WebSocket path")
    args = parser.parse_args()
    runner = {
        "echo": run_closed_loop,
        "json": run_closed_loop,
        "connect": run_connect,
        "fanout-recv": run_fanout_recv,
        "fanout-pub": run_fanout_pub,
        "fanout-acking-recv": run_fanout_acking_recv,
        "fanout-acked-pub": run_fanout_acked_pub,
        "idle": run_idle,
    }[args.mode]
    uvloop.run(runner(args))


if __name__ == "__main__":
    main()
