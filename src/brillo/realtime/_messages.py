"""Message encoding: published data to a payload once, a payload to the ASGI message sent.

A payload is a ``str`` (text frame) or ``bytes`` (binary frame). One ASGI message dict is built
per delivery and shared by every local recipient, so it must never be mutated.
"""

from __future__ import annotations

import json
from typing import Any

from brillo.realtime.backends.base import Position, PresenceEvent

__all__ = ["Encoder", "Message"]

#: A ``websocket.send`` ASGI message.
Message = dict[str, Any]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_notice_dumps = json.JSONEncoder(separators=(",", ":")).encode


class Encoder:
    """Encodes for one hub: raw frames, or (``envelope=True``) JSON envelopes with positions."""

    __slots__ = ("envelope",)

    def __init__(self, envelope: bool) -> None:
        self.envelope = envelope

    def encode(self, data: Any) -> str | bytes:
        """Published data to its payload: str and bytes as they are, anything else as JSON.

        With envelopes only JSON data is accepted (the envelope is JSON text).
        """
        if self.envelope:
            if isinstance(data, bytes | bytearray | memoryview):
                raise TypeError("a Hub with envelope=True carries JSON data only, not bytes")
        elif isinstance(data, str):
            return data
        elif isinstance(data, bytes | bytearray | memoryview):
            return bytes(data)
        try:
            return _dumps(data)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"realtime data must be str, bytes or JSON-serialisable, not "
                f"{type(data).__name__}: {exc}"
            ) from exc

    @staticmethod
    def frame(payload: str | bytes) -> Message:
        """The ASGI message that sends ``payload`` as it is."""
        if isinstance(payload, str):
            return {"type": "websocket.send", "text": payload}
        return {"type": "websocket.send", "bytes": payload}

    def room_frame(self, room: str, payload: str | bytes, position: Position | None) -> Message:
        """The message for a room delivery: the payload, or its envelope."""
        if not self.envelope or not isinstance(payload, str):
            return self.frame(payload)
        pos = "null" if position is None else f'"{position}"'
        text = f'{{"type":"message","room":{json.dumps(room)},"position":{pos},"data":{payload}}}'
        return {"type": "websocket.send", "text": text}

    @staticmethod
    def presence_frame(event: PresenceEvent) -> Message:
        """``{"type": "presence", "event", "room", "user", "connection", "meta", "expired"}``."""
        entry = event.entry
        text = _notice_dumps(
            {
                "type": "presence",
                "event": event.event,
                "room": event.room,
                "user": entry.user,
                "connection": entry.connection,
                "meta": dict(entry.meta),
                "expired": event.expired,
            }
        )
        return {"type": "websocket.send", "text": text}

    @staticmethod
    def resync_frame(room: str, position: Position) -> Message:
        """``{"type": "resync", "room", "position"}``: the client must reload the room's state."""
        text = _notice_dumps({"type": "resync", "room": room, "position": str(position)})
        return {"type": "websocket.send", "text": text}
