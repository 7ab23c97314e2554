"""Helpers for the realtime tests: hand-written ASGI server ends for real WebSocket objects."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio

from brillo.types import Message, Send
from brillo.websockets import WebSocket
from tests.support import asgi

TIMEOUT = 5.0


def ws_scope(path: str = "/ws") -> dict[str, Any]:
    """The WebSocket scope of a ``Peer``."""
    return asgi.ws_scope(
        path,
        server=("127.0.0.1", 80),
        client=("127.0.0.1", 50000),
        spec_version="2.4",
        state={},
    )


class Peer:
    """The server side of one WebSocket: records what the app sends, can stall or break.

    ``gate`` (when set) makes every ``send`` wait for it: a client that stopped reading.
    ``broken`` makes ``send`` raise ``OSError`` as a server does for a vanished peer.
    ``wrap_send`` wraps the ASGI send the WebSocket gets (a middleware's send, for instance).
    """

    def __init__(self, wrap_send: Callable[[Send], Send] | None = None) -> None:
        self.sent: list[Message] = []
        self._changed = anyio.Event()
        self.gate: anyio.Event | None = None
        self.broken = False
        self.blocked = anyio.Event()
        send = self._send if wrap_send is None else wrap_send(self._send)
        self.websocket = WebSocket(ws_scope(), self._receive, send)
        self._incoming: list[Message] = [{"type": "websocket.connect"}]
        self._incoming_ready = anyio.Event()

    async def _receive(self) -> Message:
        while not self._incoming:
            self._incoming_ready = anyio.Event()
            await self._incoming_ready.wait()
        return self._incoming.pop(0)

    def push(self, message: Message) -> None:
        """Hand ``message`` to the app's next ``receive()``."""
        self._incoming.append(message)
        self._incoming_ready.set()

    async def _send(self, message: Message) -> None:
        if self.broken:
            raise OSError("peer gone")
        if self.gate is not None and message["type"] == "websocket.send":
            self.blocked.set()
            await self.gate.wait()
        self.sent.append(message)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def accept(self) -> WebSocket:
        """Run the handshake and return the accepted WebSocket."""
        await self.websocket.accept()
        return self.websocket

    @property
    def frames(self) -> list[str | bytes]:
        """Payloads of the data frames sent so far."""
        out: list[str | bytes] = []
        for message in self.sent:
            if message["type"] == "websocket.send":
                text = message.get("text")
                out.append(text if text is not None else message["bytes"])
        return out

    @property
    def texts(self) -> list[str]:
        """Text payloads sent so far."""
        return [f for f in self.frames if isinstance(f, str)]

    def json(self) -> list[Any]:
        """Text payloads decoded as JSON."""
        return [json.loads(t) for t in self.texts]

    @property
    def closed(self) -> Message | None:
        """The ``websocket.close`` message, once the app sent it."""
        for message in self.sent:
            if message["type"] == "websocket.close":
                return message
        return None

    async def wait(self, predicate: Any, timeout: float = TIMEOUT) -> None:
        """Wait (bounded) until ``predicate(self)`` is true."""
        with anyio.fail_after(timeout):
            while not predicate(self):
                await self._changed.wait()

    async def wait_frames(self, count: int, timeout: float = TIMEOUT) -> list[str | bytes]:
        """Wait until at least ``count`` data frames were sent; return them."""
        await self.wait(lambda p: len(p.frames) >= count, timeout)
        return self.frames


class Collector:
    """Collects backend callbacks; ``wait(n)`` waits (bounded) for n items."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = anyio.Event()

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait(self, count: int, timeout: float = TIMEOUT) -> list[Any]:
        with anyio.fail_after(timeout):
            while len(self.items) < count:
                await self._changed.wait()
        return self.items
