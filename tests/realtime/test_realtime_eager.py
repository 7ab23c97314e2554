"""Eager sends: started in the publishing task only for sockets known to be safe for it.

A send that holds an anyio cancel scope across a wait (a per-send timeout, a middleware's send)
must run in its connection's writer task: started in the publisher's task, its scope would be
entered in one task and exited in another, and the publisher (another client's handler) would
fail. Runs on asyncio and trio.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from brillo.realtime import Hub
from brillo.types import Message, Send
from tests.support.realtime import TIMEOUT, Peer

pytestmark = pytest.mark.anyio


def timed(send: Send) -> Send:
    """A per-send timeout wrapper, as a middleware might put around ``send``."""

    async def timed_send(message: Message) -> None:
        with anyio.fail_after(TIMEOUT):
            await anyio.sleep(0)  # any real send may wait here: a full buffer, a lock
            await send(message)

    return timed_send


class ScopedSocket:
    """A SocketLike of its own whose send holds a cancel scope across a wait."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.changed = anyio.Event()

    async def send(self, message: Message) -> None:
        with anyio.move_on_after(TIMEOUT):
            await anyio.sleep(0)
            self.sent.append(message)
            self.changed.set()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.sent.append({"type": "websocket.close", "code": code})


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[Hub]:
    async with Hub("memory://", **options) as hub:
        yield hub


async def publish_from_another_task(hub: Hub, data: str) -> list[BaseException]:
    """Publish as another client's handler would, inside its own cancel scopes."""
    errors: list[BaseException] = []

    async def handler() -> None:
        try:
            with anyio.fail_after(TIMEOUT):
                with anyio.CancelScope():
                    await hub.publish("room", data)
                await anyio.sleep(0)
        except BaseException as exc:  # what the handler would die of
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(handler)
    return errors


async def test_a_send_holding_a_cancel_scope_does_not_hurt_the_publisher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brillo.realtime")
    async with running() as hub:
        peer = Peer(wrap_send=timed)
        await peer.accept()
        async with hub.join(peer.websocket, "room"):
            for text in ("one", "two"):
                assert await publish_from_another_task(hub, text) == []
            assert await peer.wait_frames(2) == ["one", "two"]
            assert hub.members("room") == [hub.connection(peer.websocket)]
    assert not [r for r in caplog.records if "is gone" in r.getMessage()]


async def test_a_socket_of_its_own_with_a_scoped_send_gets_its_messages() -> None:
    async with running() as hub:
        socket = ScopedSocket()
        async with hub.join(socket, "room"):
            assert await publish_from_another_task(hub, "hello") == []
            with anyio.fail_after(TIMEOUT):
                while not socket.sent:
                    await socket.changed.wait()
            assert socket.sent == [{"type": "websocket.send", "text": "hello"}]
            assert len(hub.members("room")) == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_eager_sends_only_where_declared_safe() -> None:
    """Over a declared-safe socket the publish itself delivers; otherwise the writer does."""
    async with running() as hub:
        safe, undeclared, opted_out = Peer(), Peer(), Peer()
        for peer in (safe, undeclared, opted_out):
            await peer.accept()
        safe.websocket.eager_send_safe = True  # type: ignore[attr-defined]
        opted_out.websocket.eager_send_safe = False  # type: ignore[attr-defined]
        async with (
            hub.join(safe.websocket, "room"),
            hub.join(undeclared.websocket, "room"),
            hub.join(opted_out.websocket, "room"),
        ):
            await anyio.sleep(0)  # let the writers start and sleep
            await hub.publish("room", "x")  # the memory backend delivers without yielding
            assert safe.frames == ["x"]  # sent within the publish
            assert undeclared.frames == opted_out.frames == []  # left to their writers
            assert await undeclared.wait_frames(1) == ["x"]
            assert await opted_out.wait_frames(1) == ["x"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_eager_sends_can_be_turned_off_for_the_hub() -> None:
    async with running(eager_sends=False) as hub:
        peer = Peer()
        await peer.accept()
        peer.websocket.eager_send_safe = True  # type: ignore[attr-defined]
        async with hub.join(peer.websocket, "room"):
            await anyio.sleep(0)
            await hub.publish("room", "x")
            assert peer.frames == []
            assert await peer.wait_frames(1) == ["x"]


async def test_a_send_that_fails_with_a_bug_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only errors meaning "the client is gone" are quiet; a RuntimeError is a bug to see."""

    def buggy(send: Send) -> Send:
        async def buggy_send(message: Message) -> None:
            if message["type"] == "websocket.send":
                raise RuntimeError("a bug in the send path")
            await send(message)

        return buggy_send

    caplog.set_level(logging.DEBUG, logger="brillo.realtime")
    async with running() as hub:
        broken, alive = Peer(wrap_send=buggy), Peer()
        await broken.accept()
        await alive.accept()
        async with hub.join(alive.websocket, "room"):
            await hub.enter(broken.websocket, "room")
            await hub.publish("room", "x")
            assert await alive.wait_frames(1) == ["x"]
            with anyio.fail_after(TIMEOUT):
                while len(hub.members("room")) > 1:
                    await anyio.sleep(0)
            await hub.leave(broken.websocket, "room")
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "a send failed: RuntimeError: a bug in the send path" in record.getMessage()
    assert record.exc_info is not None
