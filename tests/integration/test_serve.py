"""``brillo`` (brillo.serve) in real child processes: the drain on SIGTERM, the hardened protocols.

The drain test is the production case: a rolling deploy sends SIGTERM to a process holding many
WebSockets. Under plain uvicorn every client sees 1012 before the hub can say goodbye; under
``brillo`` each must get what was published before the signal, the hub's ``shutdown_message``
and a 1001 close, within the drain deadline.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


class Child:
    """``python -m brillo TARGET --fd N ...`` on a socket bound here (the port is known)."""

    def __init__(self, target: str, *args: str) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        command = [sys.executable, "-m", "brillo", target, "--fd", str(sock.fileno()), *args]
        command += ["--log-level", "warning", "--no-access-log"]
        try:
            self.process = subprocess.Popen(
                command, pass_fds=(sock.fileno(),), cwd=ROOT, stdin=subprocess.DEVNULL
            )
        finally:
            sock.close()
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"brillo {target} exited with {self.process.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"brillo {target} did not listen within 20 s")
            time.sleep(0.05)  # a bounded readiness poll: the child gives no other signal

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def child() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for process in started:
        process.stop()


async def http(port: int, method: str, path: str) -> Any:
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n", 1)[0], raw
    return json.loads(body)


class Client:
    """One member: reads every message until the server closes the connection."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.closed_at = 0.0
        self.code: int | None = None
        self.reason = ""

    async def run(self, port: int, joined: asyncio.Event, total: list[int], target: int) -> None:
        socket_: ClientConnection = await connect(
            f"ws://127.0.0.1:{port}/ws", ping_interval=None, open_timeout=TIMEOUT, max_queue=None
        )
        assert json.loads(await socket_.recv()) == {"type": "joined"}
        total[0] += 1
        if total[0] == target:
            joined.set()
        try:
            async for raw in socket_:
                self.messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        self.closed_at = time.monotonic()
        self.code = socket_.close_code
        self.reason = socket_.close_reason or ""


@pytest.mark.xdist_group("heavy")
def test_sigterm_drains_a_thousand_clients_with_the_farewell_and_1001(
    child: list[Child],
) -> None:
    clients_count, published, deadline = 1000, 20, 10.0
    server = Child("tests.integration._drain_app:app", "--drain-timeout", str(deadline))
    child.append(server)

    async def scenario() -> tuple[list[Client], float]:
        joined = asyncio.Event()
        total = [0]
        clients = [Client() for _ in range(clients_count)]
        tasks = []
        for start in range(0, clients_count, 100):  # connect in waves of 100
            batch = clients[start : start + 100]
            tasks += [
                asyncio.create_task(c.run(server.port, joined, total, clients_count)) for c in batch
            ]
            while total[0] < start + len(batch):
                await asyncio.sleep(0.01)
                for task in tasks:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        async with asyncio.timeout(TIMEOUT):
            await joined.wait()
        assert (await http(server.port, "GET", "/count"))["members"] == clients_count
        # published (and taken by the hub) before the signal: none of it may be lost
        assert (await http(server.port, "POST", f"/publish?n={published}"))["published"] == 20
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(*tasks)
        return clients, signalled

    clients, signalled = asyncio.run(scenario())
    expected = [{"n": n} for n in range(published)] + [{"type": "bye"}]
    wrong = [c for c in clients if c.messages != expected]
    assert not wrong, (len(wrong), wrong[0].messages[-3:], wrong[0].code)
    codes = {(c.code, c.reason) for c in clients}
    assert codes == {(1001, "server shutting down")}
    slowest = max(c.closed_at for c in clients) - signalled
    assert slowest <= deadline + 1.0, slowest
    # uvicorn re-raises the signal it handled once it has finished: a clean SIGTERM exit
    assert server.process.wait(TIMEOUT) in (0, -signal.SIGTERM)


def test_serve_refuses_bad_settings() -> None:
    from brillo.serve import serve

    with pytest.raises(ValueError, match="drain_timeout must be >= 0"):
        serve("tests.integration._drain_app:app", drain_timeout=-1)


@pytest.mark.parametrize("ws", ["websockets", "websockets-sansio", "wsproto"])
def test_half_a_handshake_is_dropped_and_whole_ones_work(child: list[Child], ws: str) -> None:
    server = Child("tests.integration._drain_app:app", "--ws", ws, "--handshake-timeout", "0.5")
    child.append(server)

    async def scenario() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs")
        async with asyncio.timeout(TIMEOUT):
            assert await reader.read() == b""  # closed by the server
        writer.close()
        # a slow but complete client is served; the deadline is for the request head only
        async with connect(f"ws://127.0.0.1:{server.port}/ws", ping_interval=None) as client:
            assert json.loads(await client.recv()) == {"type": "joined"}
            await asyncio.sleep(0.8)
            await client.send("still here")
            assert (await http(server.port, "GET", "/count"))["members"] == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto"])
def test_a_ping_flood_without_reading_is_not_buffered(child: list[Child], ws: str) -> None:
    """The hardened protocols stop reading from a client that does not read their pongs.

    (Plain uvicorn keeps reading and queues every pong: tens of MiB in these 3 s.)
    """
    server = Child("tests.integration._drain_app:app", "--ws", ws)
    child.append(server)
    process = psutil.Process(server.process.pid)
    from benchmarks.exposure import frame

    async def scenario() -> int:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        pings = frame(0x9, b"p" * 125) * 100
        sent = 0
        # the server stops reading once its pongs back up: our writes then block
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3.0):
                while True:
                    writer.write(pings)
                    sent += 100
                    await writer.drain()
        writer.transport.abort()
        return sent

    before = process.memory_info().rss
    sent = asyncio.run(scenario())
    grown = process.memory_info().rss - before
    assert grown < 8 << 20, f"{sent} pings grew the server by {grown >> 20} MiB"


@pytest.mark.parametrize("ws", ["websockets", "websockets-sansio", "wsproto"])
def test_fragmented_messages_arrive_whole(child: list[Child], ws: str) -> None:
    server = Child("benchmarks.exposure:app", "--ws", ws)
    child.append(server)
    pieces = [f"<{n:03d}>" * 20 for n in range(50)]

    async def scenario() -> None:
        async with connect(f"ws://127.0.0.1:{server.port}/ws", ping_interval=None) as client:
            for count in (1, 5, 50):  # below and above the point where they share a buffer
                await client.send(iter(pieces[:count]))
                assert await client.recv() == "".join(pieces[:count])

    asyncio.run(scenario())


@pytest.mark.xdist_group("heavy")
def test_one_byte_fragments_do_not_cost_tens_of_bytes_each(child: list[Child]) -> None:
    """uvicorn's websockets-sansio keeps ~60 bytes per one-byte fragment until the message ends
    (24 MiB for 400 KB of payload); brillo's keeps them in one buffer: what remains is the
    parser's transient cost per chunk read, bounded whatever the message's length."""
    server = Child("benchmarks.exposure:app", "--ws", "websockets-sansio")
    child.append(server)
    process = psutil.Process(server.process.pid)
    from benchmarks.exposure import _open, frame

    fragments = 400_000

    async def scenario() -> int:
        reader, writer = await _open(server.port)
        before = process.memory_info().rss
        writer.write(frame(0x1, b"a", fin=False))
        piece = frame(0x0, b"a", fin=False) * 1000
        for _ in range(fragments // 1000):
            writer.write(piece)
            await writer.drain()
        # measured while the message is still open, once the server has read everything
        # (parsing takes a while on a busy machine)
        async with asyncio.timeout(4 * TIMEOUT):
            cpu = sum(process.cpu_times()[:2])
            while True:
                await asyncio.sleep(0.3)
                now = sum(process.cpu_times()[:2])
                if now - cpu < 0.01:
                    break
                cpu = now
        grown = process.memory_info().rss - before
        writer.write(frame(0x0, b"!", fin=True))
        async with asyncio.timeout(TIMEOUT):
            echoed = b""
            while not echoed.endswith(b"!"):
                echoed += await reader.read(1 << 20)
        writer.close()
        return grown

    grown = asyncio.run(scenario())
    assert grown < 16 << 20, f"{grown / fragments:.0f} bytes per fragment"
