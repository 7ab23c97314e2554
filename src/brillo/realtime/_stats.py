"""The hub's counters: per room (and for direct messages), and what departed rooms leave behind."""

from __future__ import annotations

from typing import Any

__all__ = ["Counters", "Totals"]


class Counters:
    """Message counters of one room, or of a hub's direct messages.

    Every queued item points at the counters of its room: a writer updates them as it sends,
    so nothing is looked up per delivery.
    """

    __slots__ = ("delivered", "dropped", "published", "queued")

    def __init__(self) -> None:
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.queued = 0

    def as_dict(self, members: int) -> dict[str, int]:
        """The room's entry of :meth:`Hub.stats`."""
        return {
            "members": members,
            "queued": self.queued,
            "dropped": self.dropped,
            "published": self.published,
            "delivered": self.delivered,
        }


class Totals:
    """A hub's running totals: publishes, and the counts of rooms and connections now gone."""

    __slots__ = ("direct", "published", "retired_delivered", "retired_dropped")

    def __init__(self) -> None:
        self.published = 0
        #: Counters of direct messages (``send_to_user``, ``Membership.send`` outside a room,
        #: the shutdown message).
        self.direct = Counters()
        self.retired_delivered = 0
        self.retired_dropped = 0

    def retire_room(self, counters: Counters) -> None:
        """A room emptied: keep what it delivered in the totals."""
        self.retired_delivered += counters.delivered

    def retire_connection(self, dropped: int) -> None:
        """A connection left the hub: keep what it dropped in the totals."""
        self.retired_dropped += dropped

    def snapshot(
        self,
        rooms: dict[str, dict[str, int]],
        users: int,
        queues: list[int],
        dropped: int,
    ) -> dict[str, Any]:
        """:meth:`Hub.stats` from the live rooms' entries, the live connections' queue lengths
        (one per connection) and what those connections dropped."""
        return {
            "connections": len(queues),
            "users": users,
            "queued": sum(queues),
            "max_queued": max(queues, default=0),
            "dropped": self.retired_dropped + dropped,
            "published": self.published,
            "delivered": sum(r["delivered"] for r in rooms.values())
            + self.direct.delivered
            + self.retired_delivered,
            "rooms": rooms,
        }
