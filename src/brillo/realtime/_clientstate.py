"""The client side of the channel protocol without I/O: refs, positions, presence, what came in.

Used by the asyncio client (:mod:`brillo.realtime.client`) and the TestClient helpers
(:mod:`brillo.realtime.testing`); the browser client (``static/brillo-channels.js``) follows the
same rules, spelled out in docs/channels.md:

* each room remembers the last position seen; a message at or before it (same epoch) is a
  duplicate and is dropped, so a rejoin with ``since`` never shows a message twice;
* presence is ``user -> {connection: meta}``; diffs that arrive between a join and its
  ``presence_state`` are applied again on top of that state (each connection's last diff wins,
  whichever side of the snapshot it fell on);
* a ``resync`` sets the room's position to the one given and says so: the app reloads its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClientState",
    "Event",
    "Incoming",
    "Notice",
    "Reply",
    "RoomState",
    "parse_position",
]


def parse_position(value: Any) -> tuple[str, int] | None:
    """``"epoch:offset"`` as a pair; ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    epoch, sep, offset = value.rpartition(":")
    if not sep or not epoch or not offset.isdigit():
        return None
    return epoch, int(offset)


@dataclass(slots=True)
class Reply:
    """A reply to one of our frames: ``payload``, or ``error`` (``{"code", "message"}``)."""

    ref: str | int
    room: str | None
    payload: Any = None
    error: dict[str, Any] | None = None
    position: str | None = None


@dataclass(slots=True)
class Event:
    """A room message: ``event`` and ``payload`` as broadcast, ``position`` (None: direct)."""

    room: str
    event: str
    payload: Any
    position: str | None


@dataclass(slots=True)
class Notice:
    """Anything else worth telling: ``kind`` is presence, resync, error, ping, pong or other."""

    kind: str
    room: str | None
    frame: dict[str, Any]


Incoming = Reply | Event | Notice


@dataclass(slots=True)
class RoomState:
    """What the client knows of one room."""

    name: str
    payload: Any = None
    position: tuple[str, int] | None = None
    presence: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> {conn: meta}
    pending: list[dict[str, Any]] | None = None  # diffs held until the presence state
    joined: bool = False

    @property
    def since(self) -> str | None:
        """The position to resume from (``"epoch:offset"``), if any was seen."""
        return None if self.position is None else f"{self.position[0]}:{self.position[1]}"

    def presence_list(self) -> dict[str, list[dict[str, Any]]]:
        """``user -> [{"connection", "meta"}]``, as ``presence_state`` sends it."""
        return {
            user: [{"connection": c, "meta": m} for c, m in conns.items()]
            for user, conns in self.presence.items()
        }

    def seen(self, position: tuple[str, int]) -> bool:
        """True when ``position`` is at or before the last one seen (a duplicate)."""
        last = self.position
        return last is not None and last[0] == position[0] and position[1] <= last[1]

    def advance(self, position: tuple[str, int]) -> None:
        last = self.position
        if last is None or last[0] != position[0] or position[1] > last[1]:
            self.position = position

    def apply_diff(self, frame: dict[str, Any]) -> None:
        user, connection = str(frame.get("user")), str(frame.get("connection"))
        if frame.get("event") == "join":
            self.presence.setdefault(user, {})[connection] = frame.get("meta") or {}
        else:
            conns = self.presence.get(user)
            if conns is not None:
                conns.pop(connection, None)
                if not conns:
                    del self.presence[user]


class ClientState:
    """Builds our frames (with fresh refs) and sorts what the server sends."""

    def __init__(self) -> None:
        self._ref = 0
        self.rooms: dict[str, RoomState] = {}

    def next_ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    def join_frame(
        self, room: str, payload: Any = None, since: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A join (or rejoin) of ``room``, resuming from ``since`` or the last position seen."""
        state = self.rooms.get(room)
        if state is None:
            state = self.rooms[room] = RoomState(room, payload)
        state.payload = payload
        if since is not None:
            state.position = parse_position(since)
        state.pending = []
        ref = self.next_ref()
        frame: dict[str, Any] = {"type": "join", "ref": ref, "room": room}
        if payload is not None:
            frame["payload"] = payload
        if state.since is not None:
            frame["since"] = state.since
        return ref, frame

    def push_frame(
        self, room: str, event: str, payload: Any = None, *, reply: bool = True
    ) -> tuple[str | None, dict[str, Any]]:
        ref = self.next_ref() if reply else None
        frame: dict[str, Any] = {"type": "push", "room": room, "event": event}
        if ref is not None:
            frame["ref"] = ref
        if payload is not None:
            frame["payload"] = payload
        return ref, frame

    def leave_frame(self, room: str) -> tuple[str, dict[str, Any]]:
        self.rooms.pop(room, None)
        ref = self.next_ref()
        return ref, {"type": "leave", "ref": ref, "room": room}

    def disconnected(self) -> None:
        """The socket is gone: every room must be joined again (presence starts afresh)."""
        for state in self.rooms.values():
            state.joined = False
            state.presence = {}
            state.pending = None

    def receive(self, frame: Any) -> Incoming | None:
        """Sort one decoded frame; ``None`` for a duplicate message (already seen)."""
        if not isinstance(frame, dict):
            return Notice("other", None, {"frame": frame})
        kind = frame.get("type")
        room = frame.get("room")
        state = self.rooms.get(room) if isinstance(room, str) else None
        if kind == "message":
            data = frame.get("data")
            position = frame.get("position")
            pair = parse_position(position)
            if state is not None and pair is not None:
                if state.seen(pair):
                    return None
                state.advance(pair)
            if isinstance(data, dict) and "event" in data:
                return Event(str(room), str(data["event"]), data.get("payload"), position)
            return Event(str(room), "message", data, position)
        if kind == "reply":
            position = frame.get("position")
            reply = Reply(frame.get("ref", ""), room, frame.get("payload"), frame.get("error"))
            reply.position = position if isinstance(position, str) else None
            if state is not None and reply.error is None and "position" in frame:
                state.joined = True
                pair = parse_position(position)
                if pair is not None:
                    state.advance(pair)
            return reply
        if kind == "presence_state" and state is not None:
            state.presence = {}
            for user, entries in (frame.get("presence") or {}).items():
                for entry in entries:
                    state.presence.setdefault(user, {})[entry["connection"]] = entry.get("meta")
            for diff in state.pending or ():
                state.apply_diff(diff)
            state.pending = None
        elif kind == "presence" and state is not None:
            if state.pending is not None:
                state.pending.append(frame)
            state.apply_diff(frame)
        elif kind == "resync" and state is not None:
            pair = parse_position(frame.get("position"))
            state.position = pair
        return Notice(str(kind), room if isinstance(room, str) else None, frame)
