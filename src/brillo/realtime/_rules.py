"""The hub's decisions as plain objects: no event loop, no I/O, unit-testable on their own.

* :class:`QueueRule`: what happens to a message offered to a connection's bounded queue.
* :func:`resync_required`: whether history can bring a client from ``since`` up to date.
* :func:`held_is_new`: whether a live message held back during recovery is not already in the
  history that was replayed.
"""

from __future__ import annotations

import enum
from typing import Literal

from brillo.realtime.backends.base import Position

__all__ = ["Overflow", "QueueRule", "Verdict", "held_is_new", "resync_required"]

#: What a full queue does: drop that connection's oldest message, or close the connection.
Overflow = Literal["drop_oldest", "close"]


class Verdict(enum.Enum):
    """What to do with a message offered to a queue holding ``length`` messages."""

    #: Append it.
    APPEND = "append"
    #: The queue is full: drop its oldest message, then append this one.
    DROP_OLDEST = "drop_oldest"
    #: The queue is full: drop this message and everything queued, close the connection (1013).
    CLOSE = "close"


class QueueRule:
    """The backpressure policy of every connection of one hub.

    ``size`` messages fit in a queue. Below ``lag_mark`` (half the size) an offer is always
    :attr:`Verdict.APPEND` and nobody is lagging: fan-out takes its inline fast path there.
    From ``lag_mark`` on, a queue whose writer is idle (not inside a send) lags behind its
    publisher, which should then yield once so writers get to run. At ``size`` the ``overflow``
    policy decides.
    """

    __slots__ = ("drop_oldest", "lag_mark", "overflow", "size")

    def __init__(self, size: int, overflow: Overflow) -> None:
        if size < 1:
            raise ValueError("queue_size must be at least 1")
        if overflow not in ("drop_oldest", "close"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'close', not {overflow!r}")
        self.size = size
        self.overflow: Overflow = overflow
        self.drop_oldest = overflow == "drop_oldest"
        self.lag_mark = max(1, size // 2)

    def verdict(self, length: int) -> Verdict:
        """The fate of a message offered to a queue that holds ``length`` messages."""
        if length < self.size:
            return Verdict.APPEND
        return Verdict.DROP_OLDEST if self.drop_oldest else Verdict.CLOSE

    def lagging(self, length: int, writer_busy: bool) -> bool:
        """True when an idle writer has fallen ``lag_mark`` messages behind."""
        return length >= self.lag_mark and not writer_busy


def resync_required(since: Position, current: Position, first_offset: int) -> bool:
    """True when history cannot bring a client that saw ``since`` up to ``current``.

    That is when the epoch changed (history was lost), ``since`` lies in the future, or the
    oldest retained message (``first_offset``) is past the first one the client missed.
    """
    return (
        since.epoch != current.epoch
        or since.offset > current.offset
        or since.offset + 1 < first_offset
    )


def held_is_new(offset: int | None, history_end: int) -> bool:
    """Whether a live message held back while history was read must still be delivered.

    Messages without a position (history disabled, direct sends, presence events) always are;
    the others only when they came after the history's last message (``history_end``).
    """
    return offset is None or offset > history_end
