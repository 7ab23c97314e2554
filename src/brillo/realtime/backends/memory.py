"""The embedded, single-process backend: ``memory://``.

History is a ring buffer per topic, presence a dict per room. Everything happens synchronously
inside the calling task, so it runs on asyncio and trio alike. The epoch is fresh for every backend
instance: after a restart clients that ask to recover get a "resync required" answer.
"""

from __future__ import annotations

import secrets
import time
from collections import deque

from brillo.realtime.backends.base import (
    Backend,
    Delivery,
    DeliveryCallback,
    Envelope,
    HistoryResult,
    Position,
    PresenceCallback,
    PresenceEntry,
    PresenceEvent,
    call_back,
)

__all__ = ["MemoryBackend"]


class _Topic:
    __slots__ = ("entries", "offset")

    def __init__(self, size: int) -> None:
        self.offset = 0
        # (monotonic time, offset, payload)
        self.entries: deque[tuple[float, int, str | bytes]] = deque(maxlen=size)


class MemoryBackend(Backend):
    """In-process backend: deliveries are synchronous callbacks, nothing crosses a process.

    :param history_size: messages kept per topic (0 keeps none).
    :param history_ttl: seconds a message stays in history (``None``: until pushed out).
    """

    def __init__(self, *, history_size: int = 100, history_ttl: float | None = None) -> None:
        if history_size < 0:
            raise ValueError("history_size must be >= 0")
        if history_ttl is not None and history_ttl <= 0:
            raise ValueError("history_ttl must be positive or None")
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.epoch = secrets.token_hex(6)
        self._topics: dict[str, _Topic] = {}
        self._subscribed: set[str] = set()
        self._presence: dict[str, dict[str, PresenceEntry]] = {}
        self._on_delivery: DeliveryCallback | None = None
        self._on_presence: PresenceCallback | None = None

    async def connect(self, on_delivery: DeliveryCallback, on_presence: PresenceCallback) -> None:
        """Remember the callbacks; there is nothing to connect to."""
        self._on_delivery = on_delivery
        self._on_presence = on_presence

    async def close(self) -> None:
        """Forget subscriptions and callbacks. History stays until the object is dropped."""
        self._on_delivery = None
        self._on_presence = None
        self._subscribed.clear()

    async def publish(self, topic: str, envelope: Envelope, *, history: bool) -> Position | None:
        """Append to the ring buffer (when ``history``) and deliver synchronously."""
        position: Position | None = None
        if history:
            state = self._topics.get(topic)
            if state is None:
                state = self._topics[topic] = _Topic(self.history_size)
            state.offset += 1
            position = Position(self.epoch, state.offset)
            if self.history_size:
                state.entries.append((time.monotonic(), state.offset, envelope.payload))
        if topic in self._subscribed:
            call_back(
                self._on_delivery,
                Delivery(topic, envelope.payload, exclude=envelope.exclude, position=position),
            )
        return position

    async def subscribe(self, topic: str) -> None:
        """Deliver ``topic``'s messages from now on."""
        self._subscribed.add(topic)

    async def unsubscribe(self, topic: str) -> None:
        """Stop delivering ``topic``'s messages."""
        self._subscribed.discard(topic)

    async def history(self, topic: str, after: int = 0) -> HistoryResult:
        """Retained messages of ``topic`` with an offset above ``after``, oldest first."""
        state = self._topics.get(topic)
        if state is None:
            return HistoryResult(Position(self.epoch, 0), 1, [])
        entries = state.entries
        if self.history_ttl is not None:
            horizon = time.monotonic() - self.history_ttl
            while entries and entries[0][0] < horizon:
                entries.popleft()
        first = entries[0][1] if entries else state.offset + 1
        epoch = self.epoch
        messages = [(Position(epoch, off), data) for _, off, data in entries if off > after]
        return HistoryResult(Position(epoch, state.offset), first, messages)

    async def presence_join(self, room: str, entry: PresenceEntry) -> None:
        """Record ``entry`` and announce the join."""
        self._presence.setdefault(room, {})[entry.connection] = entry
        self._announce(PresenceEvent(room, "join", entry))

    async def presence_leave(self, room: str, entry: PresenceEntry) -> None:
        """Remove ``entry`` and announce the leave, when it was present."""
        members = self._presence.get(room)
        if members is None or members.pop(entry.connection, None) is None:
            return
        if not members:
            del self._presence[room]
        self._announce(PresenceEvent(room, "leave", entry))

    async def presence(self, room: str) -> list[PresenceEntry]:
        """Entries of ``room`` in join order."""
        return list(self._presence.get(room, {}).values())

    def _announce(self, event: PresenceEvent) -> None:
        if event.room in self._subscribed:
            call_back(self._on_presence, event)
