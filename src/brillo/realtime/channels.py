"""Channels: typed events over one WebSocket, many rooms multiplexed, built on the :class:`Hub`.

A :class:`Channel` serves the rooms whose names match its pattern (``"chat:{room}"``): who may
join (``authorize``), what a client gets when it joins (the ``join`` handler's reply), and one
handler per event a client may push, with a typed payload. :class:`Channels` runs the protocol
for one socket at a time on a hub::

    hub = Hub("memory://", envelope=True, presence_events=True)
    chat = Channel("chat:{room}", replay=50)

    @chat.on("say")
    async def say(ctx: Context, payload: Say) -> None:
        await ctx.broadcast("said", {"user": ctx.user, "text": payload.text})

    channels = Channels(hub, [chat])
    app = Brillo(routes=channels.routes("/ws"), lifespan=hub.lifespan)

The wire format is specified in docs/channels.md; the browser client is
``brillo/realtime/static/brillo-channels.js`` (served by :meth:`Channels.routes`), the Python
client :mod:`brillo.realtime.client`, the test helpers :mod:`brillo.realtime.testing`.
"""

from __future__ import annotations

import inspect
import logging
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from brillo.realtime._payloads import PayloadType, ValidationError, to_builtins
from brillo.realtime._protocol import (
    SUBPROTOCOL,
    ErrorCode,
    Frame,
    ProtocolViolation,
    error_frame,
    read_frame,
    reply_frame,
)
from brillo.realtime.backends.base import Position, PresenceEntry
from brillo.realtime.hub import Hub

if typing.TYPE_CHECKING:
    from brillo.routing import BaseRoute

__all__ = [
    "SUBPROTOCOL",
    "Channel",
    "ChannelError",
    "Channels",
    "ChannelSocket",
    "Context",
    "ErrorCode",
    "EventSpec",
    "Identity",
    "JoinRefused",
    "static_dir",
]

logger = logging.getLogger("brillo.realtime")

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)

_PONG = {"type": "pong"}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_ROOM = 256


def static_dir() -> Path:
    """The directory holding ``brillo-channels.js`` and ``brillo-channels.d.ts``."""
    return Path(__file__).resolve().parent / "static"


class ChannelError(Exception):
    """Raise in a handler to answer with ``{"error": {"code", "message"}}``; the socket stays.

    ``code`` is a short machine-readable string (``"conflict"``, ``"rate_limited"``, ...),
    ``message`` a sentence for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class JoinRefused(ChannelError):
    """Raise in ``authorize`` (or a join handler) to refuse a join; ``reason`` reaches the client.

    The error code is ``"forbidden"``.
    """

    def __init__(self, reason: str = "not allowed to join") -> None:
        super().__init__(ErrorCode.FORBIDDEN, reason)
        self.reason = reason


class ChannelSocket(Protocol):
    """What :meth:`Channels.serve` needs from a WebSocket: brillo's, Starlette's and FastAPI's fit.

    ``accept(subprotocol=)``, ``receive()`` of raw ASGI messages, and the hub's
    :class:`~brillo.realtime.SocketLike` contract (``send(message)``, ``close(code, reason)``).
    """

    scope: Any

    async def accept(self, subprotocol: str | None = None) -> None:
        """Accept the connection."""

    async def receive(self) -> Any:
        """The next raw ASGI message."""

    async def send(self, message: Any) -> None:
        """Send one raw ASGI message."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is behind a connection, as ``identify`` tells: the hub's user id and presence meta."""

    user: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One declared event: its payload type, reply type and description (for AsyncAPI)."""

    name: str
    payload: PayloadType
    reply: Any = None
    description: str | None = None
    handler: Handler | None = None
    #: The handler is a coroutine function (known once, not tested per call).
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.handler))


class _Client:
    """One connection as the channel layer sees it (owned by :meth:`Channels.serve`)."""

    __slots__ = ("channels", "meta", "rooms", "state", "user", "websocket")

    def __init__(
        self, channels: Channels, websocket: ChannelSocket, user: str, meta: Mapping[str, Any]
    ) -> None:
        self.channels = channels
        self.websocket = websocket
        self.user = user
        self.meta = meta
        self.state: dict[str, Any] = {}
        #: room -> the Context of that membership (its channel, its parameters)
        self.rooms: dict[str, Context] = {}

    def send(self, data: Any) -> None:
        self.channels.hub.send(self.websocket, data)


class Context:
    """What a handler gets about the connection and the room it acts on.

    ``room`` is the full room name and ``params`` what the channel's pattern captured from it
    (``"chat:{room}"`` and room ``"chat:lobby"`` give ``{"room": "lobby"}``); ``user`` and
    ``meta`` identify the connection; ``state`` is a dict kept for the connection's lifetime
    and shared by all its rooms.
    """

    __slots__ = ("_client", "channel", "params", "room")

    def __init__(self, client: _Client, channel: Channel, room: str, params: dict[str, str]):
        self._client = client
        self.channel = channel
        self.room = room
        self.params = params

    @property
    def user(self) -> str:
        """The connection's user id (the hub's; its connection key when nobody said)."""
        return self._client.user

    @property
    def meta(self) -> Mapping[str, Any]:
        """The connection's presence metadata."""
        return self._client.meta

    @property
    def state(self) -> dict[str, Any]:
        """Per-connection storage, shared by every room of the connection."""
        return self._client.state

    @property
    def websocket(self) -> ChannelSocket:
        """The connection's WebSocket (for its scope, headers, session, ...)."""
        return self._client.websocket

    @property
    def hub(self) -> Hub:
        """The hub the channels run on."""
        return self._client.channels.hub

    async def broadcast(
        self, event: str, payload: Any = None, *, include_self: bool = True
    ) -> Position | None:
        """Send ``event`` to every member of this room, in every process; returns its position."""
        exclude = None if include_self else self._client.websocket
        return await self._client.channels.broadcast(self.room, event, payload, exclude=exclude)

    def push(self, event: str, payload: Any = None) -> None:
        """Send ``event`` to this connection only, in order with the room's messages.

        It arrives as a room message without a position (it is in no history).
        """
        self._client.send(_direct_frame(self.room, event, payload))

    async def presence(self) -> dict[str, list[PresenceEntry]]:
        """Who is in this room, in every process (user -> that user's connections)."""
        return await self._client.channels.hub.presence(self.room)


def _direct_frame(room: str, event: str, payload: Any) -> dict[str, Any]:
    """A room message for one connection: no position, not in the history."""
    return {
        "type": "message",
        "room": room,
        "position": None,
        "data": {"event": event, "payload": to_builtins(payload)},
    }


def _payload_annotation(handler: Handler, what: str) -> tuple[Any, Any]:
    """The annotations of ``handler``'s second parameter and of its return value.

    Only those two are resolved (string annotations against the handler's module), so the
    ``ctx`` parameter may be annotated with anything.
    """
    params = list(inspect.signature(handler).parameters.values())
    if len(params) != 2:
        raise TypeError(
            f"{what} {handler.__qualname__} must take two parameters (ctx, payload), "
            f"not {len(params)}"
        )
    namespace = getattr(inspect.unwrap(handler), "__globals__", {})

    def resolve(annotation: Any, default: Any) -> Any:
        if annotation is inspect.Parameter.empty:
            return default
        if isinstance(annotation, str):
            try:
                return eval(annotation, namespace, {})  # what typing.get_type_hints does
            except Exception as exc:
                raise TypeError(
                    f"cannot resolve the annotation {annotation!r} of {what} "
                    f"{handler.__qualname__}: {exc}; pass payload= (and reply=) explicitly"
                ) from exc
        return annotation

    returned = inspect.signature(handler).return_annotation
    return resolve(params[1].annotation, Any), resolve(returned, None)


async def _call(handler: Handler, *args: Any) -> Any:
    """Call a handler, sync or async (for the rare hooks; events use :meth:`EventSpec.call`)."""
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class Channel:
    """A family of rooms (``pattern``) with their join rules and event handlers.

    :param pattern: room names served, with ``{name}`` parts matching any characters but
        ``:`` (``"chat:{room}"``, ``"doc:{id}"``, or a plain name ``"lobby"``).
    :param authorize: ``(ctx, payload) -> None | bool`` (may be async), called before a join:
        raise :class:`JoinRefused` with a reason, or return ``False``, to refuse it.
    :param replay: how many recent messages a client that joins without ``since`` gets first.
    :param presence: send the room's presence state on join (diffs follow from the hub).
    :param name: the channel's id in the AsyncAPI document (default: the pattern's first word).
    :param description: for the AsyncAPI document.
    """

    def __init__(
        self,
        pattern: str,
        *,
        authorize: Callable[[Context, Any], Any] | None = None,
        replay: int = 0,
        presence: bool = True,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        if not isinstance(pattern, str) or not pattern or pattern.startswith("@"):
            raise ValueError(f"invalid channel pattern {pattern!r}: a name not starting with '@'")
        if replay < 0:
            raise ValueError("replay must be >= 0")
        self.pattern = pattern
        self.authorize = authorize
        self.replay = replay
        self.presence = presence
        self.description = description
        self.parameters = _PARAM.findall(pattern)
        self.name = name or re.split(r"[^A-Za-z0-9_-]", pattern, maxsplit=1)[0] or "channel"
        parts = _PARAM.split(pattern)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^:]+)" for i, part in enumerate(parts)
        )
        self._regex = re.compile(regex)
        self._exact = pattern if not self.parameters else None
        self.join_spec = EventSpec("join", PayloadType())
        self._leave: Handler | None = None
        self.events: dict[str, EventSpec] = {}
        self.emitted: dict[str, EventSpec] = {}

    def match(self, room: str) -> dict[str, str] | None:
        """The parameters captured from ``room``; ``None`` when this channel does not serve it."""
        if self._exact is not None:
            return {} if room == self._exact else None
        found = self._regex.fullmatch(room)
        return None if found is None else found.groupdict()

    def join(self, handler: F | None = None, *, payload: Any = ..., reply: Any = ...) -> Any:
        """Decorator: ``handler(ctx, payload)`` runs once the connection is in the room.

        Its return value is the join reply's payload (a snapshot of the room's state, say); it
        may raise :class:`ChannelError` (the join is then undone). The payload type comes from
        the annotation of its second parameter unless ``payload=`` is given.
        """

        def register(fn: F) -> F:
            payload_type, reply_type = self._types(fn, "join handler", payload, reply)
            self.join_spec = EventSpec("join", payload_type, reply_type, _doc(fn), fn)
            return fn

        return register if handler is None else register(handler)

    def on(
        self,
        event: str,
        *,
        payload: Any = ...,
        reply: Any = ...,
        description: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator: ``handler(ctx, payload)`` answers the clients' pushes of ``event``.

        The payload is validated against the annotation of the handler's second parameter (or
        ``payload=``): a mismatch is answered with ``invalid_payload``. The return value is the
        reply's payload (``reply=`` or the return annotation documents it).
        """
        if not isinstance(event, str) or not event:
            raise ValueError("an event name is a non-empty string")

        def register(fn: F) -> F:
            if event in self.events:
                raise ValueError(f"channel {self.pattern!r} already handles {event!r}")
            payload_type, reply_type = self._types(fn, "handler", payload, reply)
            text = description or _doc(fn)
            self.events[event] = EventSpec(event, payload_type, reply_type, text, fn)
            return fn

        return register

    def leave(self, handler: F) -> F:
        """Decorator: ``handler(ctx)`` runs when a connection leaves a room (or goes away)."""
        self._leave = handler
        return handler

    def emits(self, event: str, payload: Any = Any, *, description: str | None = None) -> None:
        """Declare an event the server sends to the room (for the AsyncAPI document)."""
        self.emitted[event] = EventSpec(event, PayloadType(payload), None, description)

    @staticmethod
    def _types(fn: Handler, what: str, payload: Any, reply: Any) -> tuple[PayloadType, Any]:
        if payload is ... or reply is ...:
            annotated, returned = _payload_annotation(fn, what)
            payload = annotated if payload is ... else payload
            reply = returned if reply is ... else reply
        return PayloadType(payload), reply

    def __repr__(self) -> str:
        return f"Channel({self.pattern!r})"


def _doc(fn: Handler) -> str | None:
    doc = inspect.getdoc(fn)
    return doc.strip().split("\n\n", 1)[0] if doc else None


class Channels:
    """Runs the channel protocol on a :class:`Hub` for every socket handed to :meth:`serve`.

    :param hub: a hub with ``envelope=True`` (room messages carry their positions); with
        ``presence_events=True`` for channels that track presence.
    :param channels: the :class:`Channel` declarations; a room is served by the first match.
    :param identify: ``(websocket) -> Identity | None`` (may be async) used by :meth:`endpoint`:
        who the connection is; ``None`` refuses it (accepted, then closed with 1008).
    :param max_rooms: rooms one connection may be in at once.
    :param max_frame: longest frame accepted, in characters (longer: closed with 1009).
    :param title: the AsyncAPI document's title.
    :param version: the AsyncAPI document's ``info.version`` (your API's version).
    """

    def __init__(
        self,
        hub: Hub,
        channels: Iterable[Channel] = (),
        *,
        identify: Callable[[Any], Any] | None = None,
        max_rooms: int = 100,
        max_frame: int = 64 * 1024,
        title: str = "brillo channels",
        version: str = "1.0.0",
    ) -> None:
        if not hub.envelope:
            raise ValueError(
                "channels need a Hub(envelope=True): room messages must carry their positions"
            )
        if max_rooms < 1 or max_frame < 64:
            raise ValueError("max_rooms must be >= 1 and max_frame >= 64")
        self.hub = hub
        self.identify = identify
        self.max_rooms = max_rooms
        self.max_frame = max_frame
        self.title = title
        self.version = version
        self.channels: list[Channel] = []
        for channel in channels:
            self.add(channel)

    def add(self, channel: Channel) -> None:
        """Serve ``channel``'s rooms too."""
        if channel.presence and not self.hub.presence_events:
            raise ValueError(
                f"channel {channel.pattern!r} tracks presence: the hub needs "
                "presence_events=True (or declare the channel with presence=False)"
            )
        if any(other.name == channel.name for other in self.channels):
            raise ValueError(f"two channels named {channel.name!r}: pass name= to tell them apart")
        self.channels.append(channel)

    def find(self, room: str) -> tuple[Channel, dict[str, str]] | None:
        """The channel serving ``room`` and the parameters it captured, or ``None``."""
        for channel in self.channels:
            params = channel.match(room)
            if params is not None:
                return channel, params
        return None

    # -- outside handlers ------------------------------------------------------------------------

    async def broadcast(
        self, room: str, event: str, payload: Any = None, *, exclude: Any = None
    ) -> Position | None:
        """Send ``event`` with ``payload`` to every member of ``room`` in every process.

        Usable anywhere (an HTTP endpoint, a background task). The payload is converted to JSON
        builtins once and encoded once by the hub; returns the message's position.
        """
        data = {"event": event, "payload": to_builtins(payload)}
        return await self.hub.publish(room, data, exclude=exclude)

    def push_local(self, room: str, event: str, payload: Any = None) -> int:
        """Send ``event`` to this process's members of ``room`` only, outside the history.

        For figures of this process (a dashboard) or other ephemeral news; the message has no
        position. Returns the number of connections it was queued for.
        """
        frame = _direct_frame(room, event, payload)
        hub = self.hub
        return sum(hub.send(connection, frame) for connection in hub.members(room))

    # -- serving a socket ------------------------------------------------------------------------

    async def endpoint(self, websocket: ChannelSocket) -> None:
        """A WebSocket endpoint: ``WebSocketRoute("/ws", channels.endpoint)``.

        Asks ``identify`` who the connection is, then :meth:`serve`\\ s it. A refusal is
        accepted and closed at once with 1008, so that every client (a browser included) sees
        the code and stops reconnecting; a refused handshake would only show as 1006.
        """
        identity = Identity()
        if self.identify is not None:
            found = await _call(self.identify, websocket)
            if found is None:
                await websocket.accept(subprotocol=_offered(websocket))
                await websocket.close(1008, "not allowed to connect")
                return
            identity = found
        await self.serve(websocket, user=identity.user, meta=identity.meta)

    async def serve(
        self,
        websocket: ChannelSocket,
        *,
        user: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Accept ``websocket`` and run the protocol on it until it goes away.

        Works with any socket that fits :class:`ChannelSocket` (brillo's, Starlette's or
        FastAPI's WebSocket). A protocol violation closes it (1003 binary frame, 1007 not a
        valid frame, 1009 too large); everything else gets an error reply.
        """
        await websocket.accept(subprotocol=_offered(websocket))
        hub = self.hub
        connection = await hub.attach(websocket, user=user, meta=meta)
        client = _Client(self, websocket, connection.user, connection.meta)
        violation: ProtocolViolation | None = None
        try:
            violation = await self._read(client)
        finally:
            with anyio.CancelScope(shield=True):
                for ctx in list(client.rooms.values()):
                    await self._left(client, ctx)
                await hub.detach(websocket)
        if violation is not None:
            await websocket.close(violation.code, violation.reason)

    async def _read(self, client: _Client) -> ProtocolViolation | None:
        websocket = client.websocket
        receive = websocket.receive
        touch = self.hub.touch  # every inbound frame keeps the hub's heartbeat happy
        max_frame = self.max_frame
        while True:
            message = await receive()
            touch(websocket)
            text = message.get("text")
            if text is None:
                if message["type"] == "websocket.disconnect":
                    return None
                return ProtocolViolation(1003, "the channel protocol uses text frames only")
            try:
                frame = read_frame(text, max_frame)
            except ProtocolViolation as violation:
                return violation
            kind = frame.type
            if kind == "push":
                await self._push(client, frame)
            elif kind == "join":
                await self._join(client, frame)
            elif kind == "leave":
                await self._leave(client, frame)
            elif kind == "ping":
                client.send(_PONG)

    async def _push(self, client: _Client, frame: Frame) -> None:
        ref = frame.ref
        room = frame.room
        ctx = client.rooms.get(room)
        if ctx is None:
            client.send(error_frame(ref, room, ErrorCode.NOT_JOINED, f"not in room {room!r}"))
            return
        spec = ctx.channel.events.get(frame.event)
        if spec is None:
            client.send(
                error_frame(
                    ref, room, ErrorCode.UNKNOWN_EVENT, f"no event {frame.event!r} in this room"
                )
            )
            return
        try:
            payload = spec.payload.check(frame.payload)
        except ValidationError as exc:
            client.send(error_frame(ref, room, ErrorCode.INVALID_PAYLOAD, str(exc)))
            return
        handler: Handler = spec.handler  # type: ignore[assignment]
        try:
            result = await handler(ctx, payload) if spec.is_async else handler(ctx, payload)
        except ChannelError as exc:
            client.send(error_frame(ref, room, exc.code, exc.message))
            return
        except Exception:
            logger.exception("realtime: the handler of %r in room %r failed", frame.event, room)
            client.send(error_frame(ref, room, ErrorCode.INTERNAL_ERROR, "the handler failed"))
            return
        if ref is not None:
            self._reply(client, reply_frame(ref, room, result), frame)

    def _reply(self, client: _Client, reply: dict[str, Any], frame: Frame) -> None:
        """Queue a reply; a payload JSON cannot carry becomes an ``internal_error`` reply."""
        payload = reply.get("payload")
        try:
            reply["payload"] = to_builtins(payload)
            client.send(reply)
        except (TypeError, ValueError) as exc:
            logger.error(
                "realtime: the reply to %r in room %r is not JSON-serialisable: %s",
                frame.event or frame.type,
                frame.room,
                exc,
            )
            client.send(
                error_frame(
                    frame.ref, frame.room, ErrorCode.INTERNAL_ERROR, "the reply could not be sent"
                )
            )

    async def _join(self, client: _Client, frame: Frame) -> None:
        ref, room = frame.ref, frame.room
        error = self._check_join(client, room)
        if error is not None:
            client.send(error_frame(ref, room, *error))
            return
        found = self.find(room)
        if found is None:
            client.send(error_frame(ref, room, ErrorCode.UNKNOWN_ROOM, f"no channel for {room!r}"))
            return
        channel, params = found
        try:
            payload = channel.join_spec.payload.check(frame.payload)
        except ValidationError as exc:
            client.send(error_frame(ref, room, ErrorCode.INVALID_PAYLOAD, str(exc)))
            return
        try:
            since = None if frame.since is None else Position.parse(frame.since)
        except ValueError as exc:
            client.send(error_frame(ref, room, ErrorCode.INVALID_SINCE, str(exc)))
            return
        ctx = Context(client, channel, room, params)
        try:
            if channel.authorize is not None:
                allowed = await _call(channel.authorize, ctx, payload)
                if allowed is False:
                    raise JoinRefused()
        except ChannelError as exc:
            client.send(error_frame(ref, room, exc.code, exc.message))
            return
        except Exception:
            logger.exception("realtime: authorising a join of %r failed", room)
            client.send(error_frame(ref, room, ErrorCode.INTERNAL_ERROR, "the join failed"))
            return
        try:
            position = await self._enter(client, ctx, since)
            result = None
            if channel.join_spec.handler is not None:
                result = await _call(channel.join_spec.handler, ctx, payload)
        except Exception as exc:
            with anyio.CancelScope(shield=True):
                await self._left(client, ctx, hook=False)
            if isinstance(exc, ChannelError):
                client.send(error_frame(ref, room, exc.code, exc.message))
            else:
                logger.exception("realtime: the join handler of %r failed", room)
                client.send(error_frame(ref, room, ErrorCode.INTERNAL_ERROR, "the join failed"))
            return
        if ref is not None:
            reply = reply_frame(ref, room, result)
            reply["position"] = None if position is None else str(position)
            self._reply(client, reply, frame)

    def _check_join(self, client: _Client, room: str) -> tuple[str, str] | None:
        if not room or len(room) > _MAX_ROOM or room.startswith("@"):
            return (
                ErrorCode.INVALID_ROOM,
                f"a room is 1 to {_MAX_ROOM} characters, not starting with '@'",
            )
        if room in client.rooms:
            return ErrorCode.ALREADY_JOINED, f"already in room {room!r}"
        if len(client.rooms) >= self.max_rooms:
            return ErrorCode.TOO_MANY_ROOMS, f"a connection may be in {self.max_rooms} rooms"
        return None

    async def _enter(
        self, client: _Client, ctx: Context, since: Position | None
    ) -> Position | None:
        """Put the connection in the room; queue what it missed (or the replay), then presence.

        Returns the room's position, which the join reply carries (``None`` without history).
        """
        hub = self.hub
        room = ctx.room
        if hub.history_size > 0 and since is None:
            # A first join starts from the room's current position, or `replay` messages back.
            recent = await hub.history(room)
            since = recent.position
            replay = ctx.channel.replay
            if replay and recent.messages:
                first = recent.messages[-replay:][0][0]
                since = Position(first.epoch, first.offset - 1)
        client.rooms[room] = ctx
        membership = await hub.enter(
            client.websocket, room, since=since if hub.history_size > 0 else None
        )
        if ctx.channel.presence:
            present = await hub.presence(room)
            client.send(
                {
                    "type": "presence_state",
                    "room": room,
                    "presence": {
                        user: [{"connection": e.connection, "meta": dict(e.meta)} for e in entries]
                        for user, entries in present.items()
                    },
                }
            )
        recovery = membership.recovery
        return None if recovery is None else recovery.position

    async def _leave(self, client: _Client, frame: Frame) -> None:
        ctx = client.rooms.get(frame.room)
        if ctx is None:
            client.send(
                error_frame(frame.ref, frame.room, ErrorCode.NOT_JOINED, "not in that room")
            )
            return
        await self._left(client, ctx)
        if frame.ref is not None:
            client.send(reply_frame(frame.ref, frame.room, None))

    async def _left(self, client: _Client, ctx: Context, *, hook: bool = True) -> None:
        """Take the connection out of ``ctx``'s room and run the channel's leave hook.

        ``hook=False`` (a join that failed half-way) skips the hook.
        """
        if client.rooms.pop(ctx.room, None) is None:
            return
        await self.hub.leave(client.websocket, ctx.room)
        leave = ctx.channel._leave
        if hook and leave is not None:
            try:
                await _call(leave, ctx)
            except Exception:
                logger.exception("realtime: the leave hook of %r failed", ctx.room)

    # -- routes ----------------------------------------------------------------------------------

    def asyncapi(self, **info: Any) -> dict[str, Any]:
        """The AsyncAPI 3.0 document of these channels (see :mod:`brillo.realtime.asyncapi`)."""
        from brillo.realtime.asyncapi import document

        return document(self, **info)

    def routes(
        self,
        path: str = "/ws",
        *,
        client: str | None = "/brillo-channels.js",
        asyncapi: str | None = "/asyncapi.json",
    ) -> list[BaseRoute]:
        """Routes for a brillo app: the WebSocket endpoint at ``path``, the browser client
        (``client``) and the AsyncAPI document (``asyncapi``); ``None`` leaves one out."""
        from brillo.realtime.asyncapi import AsyncAPIEndpoint
        from brillo.routing import Route, WebSocketRoute

        routes: list[BaseRoute] = [WebSocketRoute(path, self.endpoint)]
        if client is not None:
            routes.append(Route(client, ClientScript(), methods=["GET", "HEAD"]))
        if asyncapi is not None:
            routes.append(
                Route(asyncapi, AsyncAPIEndpoint(self, ws_path=path), methods=["GET", "HEAD"])
            )
        return routes


def _offered(websocket: ChannelSocket) -> str | None:
    """The protocol's subprotocol when the client offered it."""
    return SUBPROTOCOL if SUBPROTOCOL in (websocket.scope.get("subprotocols") or ()) else None


class ClientScript:
    """An ASGI app serving the browser client (``brillo-channels.js``, or its ``.d.ts``).

    Sent with an ``ETag`` (304 on ``If-None-Match``) and ``Cache-Control: no-cache``, so a
    browser revalidates it. Mountable in any ASGI framework.
    """

    def __init__(self, name: str = "brillo-channels.js") -> None:
        if name not in ("brillo-channels.js", "brillo-channels.d.ts"):
            raise ValueError("name is 'brillo-channels.js' or 'brillo-channels.d.ts'")
        import hashlib

        self.body = (static_dir() / name).read_bytes()
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
        kind = "text/javascript" if name.endswith(".js") else "application/typescript"
        self.media_type = f"{kind}; charset=utf-8"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer GET and HEAD; anything else is 405."""
        if scope["type"] != "http":
            raise RuntimeError("ClientScript serves HTTP requests only")
        method = scope["method"]
        headers: list[tuple[bytes, bytes]] = [
            (b"etag", self.etag.encode()),
            (b"cache-control", b"no-cache"),
        ]
        if method not in ("GET", "HEAD"):
            status, body = 405, b"Method Not Allowed"
            headers = [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain; charset=utf-8")]
        elif any(
            name == b"if-none-match" and self.etag.encode() in value
            for name, value in scope["headers"]
        ):
            status, body = 304, b""
        else:
            status, body = 200, self.body
            headers.append((b"content-type", self.media_type.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
