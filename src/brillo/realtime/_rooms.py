"""A room of one hub: its local members, those still recovering history, its counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from brillo.realtime._outbox import Item, Outbox
from brillo.realtime._stats import Counters

if TYPE_CHECKING:
    from brillo.realtime.hub import Connection

__all__ = ["Room"]


class Room:
    """The local side of one room.

    ``members`` maps each member's outbox to its connection, in join order: fan-out iterates
    its keys. A member that joined with ``since=`` is also in ``recovering`` until its history
    was read: live messages are held there meanwhile, so none is lost or sent twice.
    ``ready`` is set once the backend subscription the room's first member made is done.
    """

    __slots__ = ("counters", "members", "name", "ready", "recovering")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[Outbox, Connection] = {}
        self.recovering: dict[Outbox, list[Item]] = {}
        self.counters = Counters()
        self.ready = anyio.Event()

    def add(self, outbox: Outbox, connection: Connection, recovering: bool) -> None:
        """Add a member; ``recovering`` holds its live messages back until :meth:`recovered`."""
        self.members[outbox] = connection
        if recovering:
            self.recovering[outbox] = []

    def recovered(self, outbox: Outbox) -> list[Item]:
        """The member's history is read: it goes live; returns the messages held back."""
        return self.recovering.pop(outbox, None) or []

    def remove(self, outbox: Outbox) -> None:
        """Take a member out (no-op when it is not in)."""
        self.members.pop(outbox, None)
        self.recovering.pop(outbox, None)
