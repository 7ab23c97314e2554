"""The small interface every realtime backend implements.

A backend moves pre-encoded messages between processes, keeps each topic's history and keeps
presence. It knows nothing about WebSockets nor about how the hub names its topics (they are
opaque strings): the :class:`~brillo.realtime.Hub` hands it :class:`Envelope` objects and receives
:class:`Delivery` / :class:`PresenceEvent` objects back through the callbacks given to
:meth:`Backend.connect`. A payload is a ``str`` (a text frame) or ``bytes`` (a binary frame), and
a backend must give it back with the same type.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = [
    "Backend",
    "BackendError",
    "Delivery",
    "Envelope",
    "HistoryResult",
    "Position",
    "PresenceEntry",
    "PresenceEvent",
]


class BackendError(RuntimeError):
    """The backend could not carry out an operation (for example Redis is unreachable).

    A publish that raised this error was *not* acknowledged: it may or may not have been delivered.
    """


class Position(NamedTuple):
    """Where a message sits in a topic's history: ``(epoch, offset)``.

    Offsets grow by one per published message of a topic. The epoch is an opaque token that changes
    whenever the history was lost, so positions of different epochs cannot be compared.
    """

    epoch: str
    offset: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.offset}"

    @classmethod
    def parse(cls, value: str) -> Position:
        """Parse ``"epoch:offset"`` as produced by ``str(position)``.

        Raises :class:`ValueError` with a readable message when ``value`` is malformed.
        """
        epoch, sep, offset = value.rpartition(":")
        if not sep or not epoch:
            raise ValueError(f"invalid position {value!r}: expected 'epoch:offset'")
        try:
            number = int(offset)
        except ValueError:
            raise ValueError(f"invalid position {value!r}: offset must be an integer") from None
        if number < 0:
            raise ValueError(f"invalid position {value!r}: offset must not be negative")
        return cls(epoch, number)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message as the hub hands it to a backend: encoded exactly once.

    ``payload`` is the text (``str``) or binary (``bytes``) frame to put on the wire; ``exclude``
    is the key of a connection that must not receive it (``""``: none).
    """

    payload: str | bytes
    _: KW_ONLY
    exclude: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message coming back from a backend, to be fanned out to the topic's local members.

    ``payload`` has the type it was published with; ``position`` is ``None`` when it was
    published without history.
    """

    topic: str
    payload: str | bytes
    _: KW_ONLY
    exclude: str = ""
    position: Position | None = None


@dataclass(frozen=True, slots=True)
class PresenceEntry:
    """One connection present in a room."""

    connection: str
    user: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """A connection joined or left a room (``expired`` when its process stopped heartbeating)."""

    room: str
    event: Literal["join", "leave"]
    entry: PresenceEntry
    expired: bool = False


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """What a backend knows about a topic's history.

    ``position`` is the position of the latest message (offset 0 when none was ever published);
    ``messages`` are the retained ``(position, payload)`` entries after the requested offset,
    oldest first; ``first_offset`` is the offset of the oldest retained message (``position.offset
    + 1`` when nothing is retained).
    """

    position: Position
    first_offset: int
    messages: Sequence[tuple[Position, str | bytes]]


def entry_to_json(entry: PresenceEntry) -> str:
    """``entry`` as compact JSON, the form the shared backends store and announce.

    Raises :class:`TypeError` when its meta is not JSON-serialisable.
    """
    return json.dumps(
        {"c": entry.connection, "u": entry.user, "m": dict(entry.meta)}, separators=(",", ":")
    )


def entry_from_json(raw: bytes | str) -> PresenceEntry:
    """The entry :func:`entry_to_json` wrote (errors on anything else: the caller logs them)."""
    data = json.loads(raw)
    return PresenceEntry(str(data["c"]), str(data["u"]), data.get("m") or {})


#: Called by a backend (from its own task, or synchronously inside ``publish``) for each message.
DeliveryCallback = Callable[[Delivery], None]
#: Called by a backend for each presence change of a room this process subscribed to.
PresenceCallback = Callable[[PresenceEvent], None]

#: The logger of the realtime layer; backends log there too.
logger = logging.getLogger("brillo.realtime")


def call_back(callback: Callable[[Any], None] | None, value: Any) -> None:
    """Hand ``value`` to a hub callback; an exception is logged with its traceback, not raised.

    A failing callback must neither end a backend's reader nor reach the task that published.
    """
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        logger.exception("realtime: the hub failed to take a message from its backend")


class Backend(ABC):
    """Carries messages, history and presence between the processes that share one hub URL.

    Implementations must deliver the messages of one topic in publish order, must call the delivery
    callback only for topics this process subscribed to, and must never block the caller of
    :meth:`publish` on a slow receiver. Topic names are opaque: a backend gives none of them a
    meaning. A callback that raises is logged with its traceback (:func:`call_back`) and
    deliveries go on. Background work (a reader, a heartbeat) must not die silently: it logs a
    failure with its traceback and restarts, and :meth:`close` re-raises what ended it for good.
    """

    @abstractmethod
    async def connect(self, on_delivery: DeliveryCallback, on_presence: PresenceCallback) -> None:
        """Start the backend; afterwards deliveries and presence events go to the callbacks."""

    @abstractmethod
    async def close(self) -> None:
        """Stop the backend and release its connections and tasks. Idempotent."""

    @abstractmethod
    async def publish(self, topic: str, envelope: Envelope, *, history: bool) -> Position | None:
        """Publish to every subscriber of ``topic`` in every process.

        When ``history`` is true the message is also appended to the topic's history in the same
        atomic step and its position is returned; otherwise ``None`` is returned.
        """

    @abstractmethod
    async def subscribe(self, topic: str) -> None:
        """Start receiving the messages published to ``topic`` (idempotent)."""

    @abstractmethod
    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving the messages published to ``topic`` (idempotent)."""

    @abstractmethod
    async def history(self, topic: str, after: int = 0) -> HistoryResult:
        """The topic's current position and the retained messages with an offset above ``after``."""

    @abstractmethod
    async def presence_join(self, room: str, entry: PresenceEntry) -> None:
        """Record ``entry`` as present in ``room`` and announce a join event to the room."""

    @abstractmethod
    async def presence_leave(self, room: str, entry: PresenceEntry) -> None:
        """Remove ``entry`` from ``room`` and announce a leave event (no-op when absent)."""

    @abstractmethod
    async def presence(self, room: str) -> list[PresenceEntry]:
        """The live entries of ``room`` in every process, expired ones left out."""
