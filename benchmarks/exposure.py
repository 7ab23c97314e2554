"""Server-level WebSocket exposure: what a hostile client can do before any app code runs.

``python -m benchmarks.exposure`` starts each server (uvicorn with each of its three WebSocket
implementations, and hypercorn; with their defaults and with the settings brillo recommends) in
a child process on 127.0.0.1, serving :data:`app` (an echo WebSocket and a plain-text page),
and measures three attacks from raw sockets:

* **held handshakes**: 200 connections that send half a WebSocket upgrade request and then
  nothing; how many the server still holds after ``--hold`` seconds;
* **fragment flood**: one connection sends a text message as one-byte fragments that never
  end (``--fragments`` of them, well under any message-size limit); the server's RSS growth
  per byte of payload, or the fragment count at which it closed the connection;
* **ping flood**: one connection with a 4 KiB receive buffer sends 125-byte pings for
  ``--flood`` seconds and reads nothing; the server's RSS growth, and the worst latency of a
  plain HTTP request made by another client meanwhile (is the server still responsive?).

Every loop is bounded in count and time; results print as a Markdown table (docs/deployment.md
quotes them). ``--only NAME`` runs one configuration (see ``CONFIGS``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from brillo.applications import Brillo
from brillo.responses import PlainTextResponse
from brillo.routing import Route, WebSocketRoute
from brillo.websockets import WebSocket

HOST = "127.0.0.1"


# -- the app under test -----------------------------------------------------------------------


async def _page(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


app = Brillo(routes=[Route("/", _page), WebSocketRoute("/ws", _echo)])


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Config:
    """One server configuration: a name and the command that serves ``app`` on a port."""

    name: str
    argv: list[str]
    settings: str
    env: dict[str, str] = field(default_factory=dict)


def _uvicorn(ws: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "benchmarks.exposure:app", "--ws", ws,
            "--log-level", "critical", "--host", HOST, *extra]  # fmt: skip


def _brillo(ws: str) -> list[str]:
    return [sys.executable, "-m", "brillo", "benchmarks.exposure:app", "--ws", ws,
            "--log-level", "critical", "--host", HOST]  # fmt: skip


CONFIGS = [
    Config("uvicorn websockets", _uvicorn("websockets", []), "defaults"),
    Config("uvicorn websockets-sansio", _uvicorn("websockets-sansio", []), "defaults"),
    Config("uvicorn wsproto", _uvicorn("wsproto", []), "defaults"),
    Config(
        "hypercorn",
        [sys.executable, "-m", "hypercorn", "benchmarks.exposure:app", "--log-level", "critical"],
        "defaults",
    ),
    Config("brillo websockets", _brillo("websockets"), "brillo serve (hardened)"),
    Config("brillo websockets-sansio", _brillo("websockets-sansio"), "brillo serve (hardened)"),
    Config("brillo wsproto", _brillo("wsproto"), "brillo serve (hardened)"),
    Config(
        "hypercorn hardened",
        [
            sys.executable,
            "-m",
            "hypercorn",
            "benchmarks.exposure:app",
            "--log-level",
            "critical",
            "--read-timeout",
            "10",
            "--websocket-ping-interval",
            "20",
        ],  # fmt: skip
        "--read-timeout 10, websocket_max_message_size 1 MiB (config)",
        {"BRILLO_EXPOSURE_HYPERCORN_MAX": str(1 << 20)},
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """A configuration running in a child process on a free port."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = _free_port()
        argv = list(config.argv)
        if "hypercorn" in argv[2]:
            argv += ["--bind", f"{HOST}:{self.port}"]
            if "BRILLO_EXPOSURE_HYPERCORN_MAX" in config.env:
                argv += ["--config", "python:benchmarks.exposure_hypercorn"]
        else:
            argv += ["--port", str(self.port)]
        env = dict(os.environ, **config.env)
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex((HOST, self.port)) == 0:
                    break
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{config.name} did not start")
            time.sleep(0.05)

    def _tree(self) -> list[psutil.Process]:
        """The server and its children (hypercorn serves from a worker process)."""
        return [self.ps, *self.ps.children(recursive=True)]

    def rss(self) -> int:
        return sum(int(p.memory_info().rss) for p in self._tree())

    def cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self._tree())

    async def settled(self, limit: float = 15.0) -> None:
        """Wait (at most ``limit`` s) until the server has worked through what it was sent:
        under 10 ms of CPU in 0.3 s."""
        deadline = time.monotonic() + limit
        last = self.cpu()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            now = self.cpu()
            if now - last < 0.01:
                return
            last = now

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# -- a raw WebSocket client ---------------------------------------------------------------------

_MASK = b"\x11\x22\x33\x44"


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One masked client frame."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 65536:
        head = bytes([first, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + size.to_bytes(8, "big")
    masked = bytes(byte ^ _MASK[i % 4] for i, byte in enumerate(payload))
    return head + _MASK + masked


def _upgrade(port: int) -> bytes:
    return (
        f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _open(port: int, rcvbuf: int | None = None) -> tuple[Any, Any]:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(_upgrade(port))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {head!r}")
    return reader, writer


async def _closed(reader: Any, timeout: float) -> bool:
    """Whether the server closed the connection (EOF or reset) within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


# -- the three attacks ----------------------------------------------------------------------------


async def held_handshakes(server: Server, count: int, hold: float) -> str:
    """Open ``count`` connections with half an upgrade request; how many are held after ``hold``."""
    port = server.port
    half = _upgrade(port)[:40]
    writers = []
    readers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(half)
        readers.append(reader)
        writers.append(writer)
    await asyncio.sleep(hold)
    closed = await asyncio.gather(*(_closed(r, 0.05) for r in readers))
    for writer in writers:
        writer.close()
    held = count - sum(closed)
    return f"{held}/{count} held after {hold:.0f} s"


async def fragment_flood(server: Server, fragments: int) -> str:
    """Send a never-ending message as one-byte fragments; RSS growth per payload byte."""
    reader, writer = await _open(server.port)
    before = server.rss()
    writer.write(frame(0x1, b"a", fin=False))
    piece = frame(0x0, b"a", fin=False)
    batch = piece * 1000
    sent = 1
    closed_at = None
    try:
        while sent < fragments:
            writer.write(batch)
            sent += 1000
            if sent % 20000 < 1000:
                await writer.drain()
                if reader.at_eof() or writer.is_closing():
                    closed_at = sent
                    break
        await asyncio.wait_for(writer.drain(), 30)
    except (OSError, TimeoutError):
        closed_at = sent
    await server.settled()
    closed = closed_at is not None or await _closed(reader, 0.5)
    growth = server.rss() - before
    writer.close()
    per_byte = growth / sent
    text = (
        f"{sent:,} fragments: +{growth / 2**20:.1f} MiB RSS ({per_byte:.0f} bytes per payload byte)"
    )
    if closed:
        text += "; then closed"
    return text


async def _latency(port: int) -> float:
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
    except (OSError, TimeoutError):
        return float("inf")
    return time.monotonic() - start


async def ping_flood(server: Server, seconds: float) -> str:
    """Ping as fast as possible for ``seconds`` without reading; RSS and others' latency."""
    reader, writer = await _open(server.port, rcvbuf=4096)
    before = server.rss()
    ping = frame(0x9, b"p" * 125) * 100
    sent = 0
    worst = 0.0
    closed = False
    stop = time.monotonic() + seconds
    probe_at = time.monotonic() + 0.5

    async def flood() -> None:
        nonlocal sent, closed
        try:
            while time.monotonic() < stop:
                writer.write(ping)
                sent += 100
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await asyncio.wait_for(writer.drain(), max(0.01, stop - time.monotonic()))
                else:
                    await asyncio.sleep(0)
        except (OSError, TimeoutError):
            closed = writer.is_closing() or reader.at_eof()

    task = asyncio.create_task(flood())
    while time.monotonic() < stop:
        await asyncio.sleep(max(0.0, probe_at - time.monotonic()))
        probe_at += 0.5
        worst = max(worst, await _latency(server.port))
    await task
    growth = server.rss() - before
    writer.transport.abort()
    shown = "no answer within 5 s" if worst == float("inf") else f"{worst * 1000:.0f} ms"
    text = f"{sent:,} pings in {seconds:.0f} s: +{growth / 2**20:.1f} MiB RSS; worst HTTP {shown}"
    if closed:
        text += "; closed"
    return text


# -- running ----------------------------------------------------------------------------------


async def measure(config: Config, args: argparse.Namespace) -> dict[str, str]:
    results: dict[str, str] = {}
    attacks: list[tuple[str, Callable[[Server], Awaitable[str]]]] = [
        ("held handshakes", lambda s: held_handshakes(s, 200, args.hold)),
        ("fragment flood", lambda s: fragment_flood(s, args.fragments)),
        ("ping flood", lambda s: ping_flood(s, args.flood)),
    ]
    for name, attack in attacks:
        server = Server(config)  # a fresh server per attack
        try:
            results[name] = await asyncio.wait_for(attack(server), 120)
        except Exception as exc:  # a failed measurement is a result too
            results[name] = f"error: {type(exc).__name__}: {exc}"
        finally:
            server.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=15.0, help="seconds to hold handshakes")
    parser.add_argument("--fragments", type=int, default=200_000, help="fragments to send")
    parser.add_argument("--flood", type=float, default=5.0, help="seconds of ping flood")
    parser.add_argument("--only", action="append", help="configuration name(s) to run")
    args = parser.parse_args(argv)
    configs = [c for c in CONFIGS if not args.only or c.name in args.only]
    print("| server | settings | held handshakes | fragment flood | ping flood |")
    print("|---|---|---|---|---|")
    for config in configs:
        results = asyncio.run(measure(config, args))
        print(
            f"| {config.name} | {config.settings} | {results['held handshakes']} | "
            f"{results['fragment flood']} | {results['ping flood']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
