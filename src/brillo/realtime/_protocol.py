"""The channel protocol's wire format: what a frame may hold, the frames the server builds.

Every frame is one JSON object in a WebSocket text frame, with a ``"type"``. docs/channels.md
is the specification; this module is its single implementation on the server side:
:func:`read_frame` turns a text frame into a checked :class:`Frame` (or raises
:class:`ProtocolViolation`, which closes the connection), and the ``*_frame`` helpers build the
frames the server sends itself. Room messages, presence diffs and resync notices are the hub's
envelope frames (``{"type": "message" | "presence" | "resync", "room", ...}``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "CLIENT_TYPES",
    "SUBPROTOCOL",
    "ErrorCode",
    "Frame",
    "ProtocolViolation",
    "error_frame",
    "read_frame",
    "reply_frame",
]

#: The WebSocket subprotocol naming this protocol and its version (optional for clients).
SUBPROTOCOL: Final = "brillo.channels.v1"

#: Frame types a client may send.
CLIENT_TYPES: Final = frozenset({"join", "leave", "push", "ping", "pong"})


class ErrorCode:
    """The error codes the channel layer itself uses in ``{"error": {"code", "message"}}``.

    Applications raise :class:`~brillo.realtime.channels.ChannelError` with codes of their own.
    """

    #: The room name is not a non-empty string of at most 256 characters, or starts with '@'.
    INVALID_ROOM: Final = "invalid_room"
    #: No declared channel serves this room.
    UNKNOWN_ROOM: Final = "unknown_room"
    #: The channel declares no handler for this event.
    UNKNOWN_EVENT: Final = "unknown_event"
    #: The payload does not match the event's declared type.
    INVALID_PAYLOAD: Final = "invalid_payload"
    #: ``since`` is not a position (``"epoch:offset"``).
    INVALID_SINCE: Final = "invalid_since"
    #: A push or leave for a room this connection has not joined.
    NOT_JOINED: Final = "not_joined"
    #: A join of a room this connection is already in.
    ALREADY_JOINED: Final = "already_joined"
    #: The connection is in as many rooms as the server allows.
    TOO_MANY_ROOMS: Final = "too_many_rooms"
    #: The channel's authorisation refused the join; the message is its reason.
    FORBIDDEN: Final = "forbidden"
    #: The handler failed; the server logged the error (its details are not sent).
    INTERNAL_ERROR: Final = "internal_error"


class ProtocolViolation(Exception):
    """A frame breaks the protocol: the connection is closed with ``code`` (1003, 1007, 1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Frame:
    """One checked client frame. ``ref`` is echoed in the reply (``None``: no reply wanted)."""

    __slots__ = ("event", "payload", "ref", "room", "since", "type")

    def __init__(
        self,
        type: str,
        room: str,
        ref: str | int | None,
        event: str,
        payload: Any,
        since: str | None,
    ) -> None:
        self.type = type
        self.room = room
        self.ref = ref
        self.event = event
        self.payload = payload
        self.since = since


_decoder = json.JSONDecoder()
_decode = _decoder.decode
#: The decoder's scanner: one value at an index (``decode`` adds the whitespace handling).
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]
_PING = Frame("ping", "", None, "", None, None)
_PONG = Frame("pong", "", None, "", None, None)


def _violation(reason: str) -> ProtocolViolation:
    return ProtocolViolation(1007, reason)


def read_frame(text: str, max_size: int) -> Frame:
    """Decode and check one text frame; :class:`ProtocolViolation` when it breaks the protocol.

    A frame longer than ``max_size`` characters closes with 1009; one that is not a JSON object
    with a known ``type`` and fields of the right types closes with 1007. What a field *means*
    (an unknown room or event, a payload of the wrong shape) is not checked here: those get an
    error reply, and the connection stays.
    """
    if len(text) > max_size:
        raise ProtocolViolation(1009, f"frames are at most {max_size} characters")
    try:
        # Fast path: a document without surrounding whitespace is one scan; anything else
        # (whitespace, trailing data, errors) goes through the full decoder.
        try:
            data, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            data = _decode(text)
    except (ValueError, RecursionError):
        raise _violation("a frame must be a JSON object") from None
    if type(data) is not dict:
        raise _violation("a frame must be a JSON object")
    kind = data.get("type")
    if kind == "push" or kind == "join" or kind == "leave":
        room = data.get("room")
        if type(room) is not str:
            raise _violation(f"a {kind} frame needs a 'room' string")
        ref = data.get("ref")
        if ref is not None and type(ref) is not str and type(ref) is not int:
            raise _violation("'ref' must be a string or an integer")
        event = ""
        since = None
        if kind == "push":
            event = data.get("event")  # type: ignore[assignment]
            if type(event) is not str:
                raise _violation("a push frame needs an 'event' string")
        elif kind == "join":
            since = data.get("since")
            if since is not None and type(since) is not str:
                raise _violation("'since' must be a position string ('epoch:offset') or null")
        return Frame(kind, room, ref, event, data.get("payload"), since)
    if kind == "ping":
        return _PING
    if kind == "pong":
        return _PONG
    raise _violation(f"unknown frame type {kind!r}")


def reply_frame(ref: str | int, room: str, payload: Any) -> dict[str, Any]:
    """``{"type": "reply", "ref", "room", "payload"}``: the answer to a push (or leave)."""
    return {"type": "reply", "ref": ref, "room": room, "payload": payload}


def error_frame(ref: str | int | None, room: str | None, code: str, message: str) -> dict[str, Any]:
    """An error reply (``ref`` given) or a stand-alone ``{"type": "error"}`` frame."""
    error = {"code": code, "message": message}
    if ref is None:
        return {"type": "error", "room": room, "error": error}
    return {"type": "reply", "ref": ref, "room": room, "error": error}
