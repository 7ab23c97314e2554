"""The contract every realtime backend passes. Subclass and provide a ``make_backend`` fixture.

``make_backend(**options)`` returns an unconnected backend; backends built by one call of the
fixture share their storage (the same Redis database, or one memory instance for the memory
backend, which cannot span processes).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from brillo.realtime.backends.base import Backend, Delivery, Envelope, Position, PresenceEntry
from tests.support.realtime import Collector

MakeBackend = Callable[..., Backend]


async def connected(backend: Backend) -> tuple[Collector, Collector]:
    deliveries, presence = Collector(), Collector()
    await backend.connect(deliveries, presence)
    return deliveries, presence


@asynccontextmanager
async def running(backend: Backend) -> AsyncIterator[tuple[Collector, Collector]]:
    """Connect ``backend`` for the block (deliveries and presence events collected); close it."""
    deliveries, presence = await connected(backend)
    try:
        yield deliveries, presence
    finally:
        await backend.close()


class BackendContract:
    """Shared behaviour: ordering, positions, history, exclude, presence."""

    @pytest.mark.anyio
    async def test_publish_reaches_subscribers_in_order(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        async with running(backend) as (deliveries, _):
            await backend.subscribe("room")
            for i in range(20):
                await backend.publish("room", Envelope(f"m{i}"), history=True)
            await backend.publish("room", Envelope(b"\x00\xff|x"), history=True)
            items = await deliveries.wait(21)
            assert [d.payload for d in items[:20]] == [f"m{i}" for i in range(20)]
            assert isinstance(items[19].payload, str)  # a text frame comes back as text
            assert items[20].payload == b"\x00\xff|x"
            assert all(d.topic == "room" for d in items)

    @pytest.mark.anyio
    async def test_unsubscribed_topics_are_not_delivered(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        async with running(backend) as (deliveries, _):
            await backend.subscribe("a")
            await backend.subscribe("b")
            await backend.unsubscribe("b")
            await backend.publish("b", Envelope("hidden"), history=True)
            await backend.publish("a", Envelope("seen"), history=True)
            items = await deliveries.wait(1)
            assert [d.payload for d in items] == ["seen"]

    @pytest.mark.anyio
    async def test_positions_count_per_topic(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        async with running(backend) as (deliveries, _):
            await backend.subscribe("x")
            first = await backend.publish("x", Envelope("1"), history=True)
            second = await backend.publish("x", Envelope("2"), history=True)
            other = await backend.publish("y", Envelope("1"), history=True)
            assert first is not None
            assert second is not None
            assert other is not None
            assert second.epoch == first.epoch
            assert (first.offset, second.offset, other.offset) == (1, 2, 1)
            items = await deliveries.wait(2)
            assert [d.position for d in items] == [first, second]
            assert await backend.publish("x", Envelope("3"), history=False) is None

    @pytest.mark.anyio
    async def test_history_after_offset(self, make_backend: MakeBackend) -> None:
        backend = make_backend(history_size=5)
        async with running(backend):
            empty = await backend.history("h")
            assert empty.position.offset == 0
            assert list(empty.messages) == []
            positions = [
                await backend.publish("h", Envelope(f"m{i}"), history=True) for i in range(8)
            ]
            await backend.publish("h", Envelope(b"raw"), history=True)
            result = await backend.history("h", after=6)
            assert result.position == Position(positions[0].epoch, 9)  # type: ignore[union-attr]
            assert [(p.offset, d) for p, d in result.messages] == [
                (7, "m6"),
                (8, "m7"),
                (9, b"raw"),
            ]
            everything = await backend.history("h")
            assert everything.first_offset == 5  # capped at 5 messages
            assert [p.offset for p, _ in everything.messages] == [5, 6, 7, 8, 9]

    @pytest.mark.anyio
    async def test_history_disabled_keeps_positions(self, make_backend: MakeBackend) -> None:
        backend = make_backend(history_size=0)
        async with running(backend):
            await backend.publish("z", Envelope("a"), history=True)
            result = await backend.history("z")
            assert result.position.offset == 1
            assert result.first_offset == 2
            assert list(result.messages) == []

    @pytest.mark.anyio
    async def test_exclude_travels_with_the_message(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        async with running(backend) as (deliveries, _):
            await backend.subscribe("r")
            await backend.publish("r", Envelope("hi", exclude="node.7"), history=True)
            (item,) = await deliveries.wait(1)
            assert item.exclude == "node.7"

    @pytest.mark.anyio
    async def test_presence_join_leave(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        async with running(backend) as (_, events):
            await backend.subscribe("room")
            ada = PresenceEntry("n.1", "ada", {"name": "Ada"})
            ada2 = PresenceEntry("n.2", "ada", {})
            bob = PresenceEntry("n.3", "bob", {})
            for entry in (ada, ada2, bob):
                await backend.presence_join("room", entry)
            listed = await backend.presence("room")
            assert sorted(e.connection for e in listed) == ["n.1", "n.2", "n.3"]
            assert {e.connection: e.meta for e in listed}["n.1"] == {"name": "Ada"}
            await backend.presence_leave("room", ada2)
            await backend.presence_leave("room", ada2)  # a second leave is a no-op
            assert sorted(e.connection for e in await backend.presence("room")) == ["n.1", "n.3"]
            got = await events.wait(4)
            assert [(e.event, e.entry.connection) for e in got] == [
                ("join", "n.1"),
                ("join", "n.2"),
                ("join", "n.3"),
                ("leave", "n.2"),
            ]
            assert not any(e.expired for e in got)
            assert await backend.presence("elsewhere") == []

    @pytest.mark.anyio
    async def test_a_failing_callback_is_logged_and_deliveries_go_on(
        self, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A hub callback that raises neither stops the backend nor reaches the publisher."""
        caplog.set_level(logging.INFO, logger="brillo.realtime")
        backend = make_backend()
        got = Collector()

        def flaky(delivery: Delivery) -> None:
            if delivery.payload == "boom":
                raise ValueError("a bug in the hub")
            got(delivery)

        await backend.connect(flaky, Collector())
        try:
            await backend.subscribe("room")
            for text in ("boom", "after", "later"):
                await backend.publish("room", Envelope(text), history=text == "later")
            assert [d.payload for d in await got.wait(2)] == ["after", "later"]
        finally:
            await backend.close()
        (record,) = [r for r in caplog.records if r.exc_info]
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)


def options(**kwargs: Any) -> dict[str, Any]:
    return kwargs
