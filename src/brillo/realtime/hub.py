"""The realtime hub: rooms, fan-out with per-connection backpressure, presence and history.

A :class:`Hub` owns one task group (opened by ``async with hub`` or the app lifespan) in which each
connection that joined at least one room has exactly one writer task. Publishing encodes the data
once, hands it to the backend, and the backend's delivery is fanned out by giving one shared,
pre-built ASGI message to each member's bounded queue: no await per member, so a slow client can
never delay the others.

The parts, each owning its state: :mod:`~brillo.realtime._outbox` (a connection's queue, writer,
eager sends and write timeout; fan-out), :mod:`~brillo.realtime._rooms` (a room's members and
those recovering), :mod:`~brillo.realtime._messages` (encoding), :mod:`~brillo.realtime._stats`
(counters), :mod:`~brillo.realtime._rules` (the queue and resync rules, plain objects) and
:mod:`~brillo.realtime._sockets` (the :class:`SocketLike` contract). This module ties them to
a backend: membership, users, publishing, recovery, queries and the lifecycle.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from anyio.lowlevel import checkpoint

from brillo.middleware.websocket_protection import protection_stats
from brillo.realtime._drain import BATCH_SIZE, close_in_batches
from brillo.realtime._heartbeat import Heartbeat
from brillo.realtime._messages import Encoder
from brillo.realtime._outbox import Item, Outbox, Outboxes
from brillo.realtime._rooms import Room
from brillo.realtime._rules import Overflow, QueueRule, held_is_new, resync_required
from brillo.realtime._sockets import SocketLike, eager_send_safe
from brillo.realtime._stats import Totals
from brillo.realtime.backends import create_backend
from brillo.realtime.backends.base import (
    Backend,
    Delivery,
    Envelope,
    Position,
    PresenceEntry,
    PresenceEvent,
)
from brillo.serve import on_drain

__all__ = ["Connection", "Hub", "Membership", "Overflow", "Recovery", "SocketLike"]

logger = logging.getLogger("brillo.realtime")

#: The hub's topic for the connections of one user: ``"@" + user`` (rooms may not start with it).
_DIRECT = "@"
#: ``recovering`` for a delivery to one connection outside any room.
_NOBODY_RECOVERING: dict[Outbox, list[Item]] = {}
_NOT_RUNNING = (
    "the Hub is not running: start it with `async with hub:` or the app lifespan "
    "(lifespan=hub.lifespan)"
)


def _nothing() -> None:
    return None


class Connection:
    """One WebSocket as the hub sees it: its user, its rooms and its bounded outbound queue.

    Created by the hub on the first join of a socket; ``key`` is unique across processes.
    """

    __slots__ = ("__weakref__", "_outbox", "_pinned", "_rooms", "key", "meta", "socket", "user")

    def __init__(
        self, key: str, socket: SocketLike, user: str, meta: Mapping[str, Any], outbox: Outbox
    ) -> None:
        self.key = key
        self.socket = socket
        self.user = user
        self.meta = dict(meta)
        self._outbox = outbox
        self._rooms: dict[str, Room] = {}
        #: Attached with :meth:`Hub.attach`: stays registered while in no room.
        self._pinned = False

    @property
    def rooms(self) -> frozenset[str]:
        """Names of the rooms this connection is in."""
        return frozenset(self._rooms)

    @property
    def queued(self) -> int:
        """Messages waiting in this connection's outbound queue."""
        return self._outbox.queued

    @property
    def dropped(self) -> int:
        """Messages this connection's queue dropped (``drop_oldest``, or closed on overflow)."""
        return self._outbox.dropped

    def __repr__(self) -> str:
        return f"Connection(key={self.key!r}, user={self.user!r})"

    # -- its rooms (kept by the hub through these) ------------------------------------------

    def _room(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def _enter(self, room: Room) -> None:
        self._rooms[room.name] = room

    def _exit(self, name: str) -> Room | None:
        """Forget room ``name``; returns it (``None`` when the connection was not in it)."""
        return self._rooms.pop(name, None)

    def _in_a_room(self) -> bool:
        return bool(self._rooms)

    def _kept(self) -> bool:
        """Whether the hub keeps this connection: it is in a room or was attached."""
        return self._pinned or bool(self._rooms)

    def _exit_all(self) -> list[Room]:
        rooms = list(self._rooms.values())
        self._rooms.clear()
        return rooms


@dataclass(frozen=True, slots=True)
class Recovery:
    """The answer to a join with ``since=``: what the client missed, or that it must resync.

    ``position`` is the room's position when the history was read; ``messages`` the missed
    ``(position, data)`` pairs in order (data as published: str, bytes, or JSON text);
    ``resync_required`` is true when the history no longer reaches back to ``since`` or its epoch
    changed, and the client must reload the room's state instead.
    """

    position: Position
    messages: list[tuple[Position, str | bytes]]
    resync_required: bool


@dataclass(slots=True)
class Membership:
    """A connection's membership of one room, as yielded by :meth:`Hub.join`."""

    hub: Hub
    connection: Connection
    room: str
    recovery: Recovery | None = None

    async def publish(self, data: Any, *, include_self: bool = True) -> Position | None:
        """Publish ``data`` to the room; with ``include_self=False`` this connection is skipped."""
        exclude = None if include_self else self.connection
        return await self.hub.publish(self.room, data, exclude=exclude)

    def send(self, data: Any) -> None:
        """Queue ``data`` for this connection only, in order with the room's messages."""
        self.hub._send_one(self.connection, self.room, data)


class Hub:
    """Rooms, fan-out, presence and history for WebSocket connections, in one or many processes.

    :param url: ``"memory://"`` (embedded, one process) or ``"redis://host:port/db"``.
    :param queue_size: outbound messages buffered per connection.
    :param overflow: what happens when a connection's queue is full: ``"drop_oldest"`` drops its
        oldest queued messages (counted in :meth:`stats`), ``"close"`` closes it with 1013.
    :param write_timeout: seconds one send may take before the connection is dropped as stuck.
    :param history_size: messages of history kept per room (0 disables history and positions).
    :param history_ttl: seconds a room's history is kept (``None``: no expiry).
    :param presence_ttl: seconds after which members of a process that died expire (Redis).
    :param envelope: when true every message is sent as JSON text
        ``{"type": "message", "room", "position", "data"}`` so clients can track positions;
        otherwise data is sent as published.
    :param presence_events: deliver ``{"type": "presence", ...}`` JSON join/leave events to rooms.
    :param shutdown_message: data sent to every connection before the 1001 close at shutdown.
    :param shutdown_timeout: seconds the shutdown waits for queues to flush.
    :param backend: a ready backend instance, instead of building one from ``url``.
    :param eager_sends: allow eager sends (asyncio, sockets known to be safe for them: see
        :class:`SocketLike`); ``False`` runs every send in the connection's writer task.
    :param heartbeat_interval: seconds between the ``{"type":"ping"}`` frames the hub sends each
        connection in a room (``None``: no pings); clients answer ``{"type":"pong"}``.
    :param heartbeat_timeout: seconds a connection may go without :meth:`touch` before the hub
        closes it with 1001 "heartbeat timeout" (default: twice the interval).
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        queue_size: int = 256,
        overflow: Overflow = "drop_oldest",
        write_timeout: float = 10.0,
        history_size: int = 100,
        history_ttl: float | None = None,
        presence_ttl: float = 30.0,
        envelope: bool = False,
        presence_events: bool = False,
        shutdown_message: Any = None,
        shutdown_timeout: float = 5.0,
        backend: Backend | None = None,
        eager_sends: bool = True,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        rule = QueueRule(queue_size, overflow)  # checks both
        if write_timeout <= 0 or shutdown_timeout < 0:
            raise ValueError("write_timeout must be positive and shutdown_timeout >= 0")
        self.url = url
        self.queue_size = queue_size
        self.overflow: Overflow = overflow
        self.write_timeout = write_timeout
        self.history_size = history_size
        self.presence_ttl = presence_ttl
        self.presence_events = presence_events
        self.shutdown_message = shutdown_message
        self.shutdown_timeout = shutdown_timeout
        self.eager_sends = eager_sends
        self.backend: Backend = backend or create_backend(
            url, history_size=history_size, history_ttl=history_ttl, presence_ttl=presence_ttl
        )
        self._encoder = Encoder(envelope)
        self._outboxes = Outboxes(rule, write_timeout, eager_sends)
        self._node = secrets.token_hex(4)
        self._counter = 0
        self._rooms: dict[str, Room] = {}
        self._connections: dict[int, Connection] = {}
        self._users: dict[str, set[Connection]] = {}
        self._totals = Totals()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._running = False
        self._timeout = 5.0
        #: Set when an idle writer lags behind: the next publish yields once so writers run.
        self._pressure = False
        self._stop_draining: Callable[[], None] = _nothing
        self._heartbeat = (
            None
            if heartbeat_interval is None and heartbeat_timeout is None
            else Heartbeat(heartbeat_interval, heartbeat_timeout)
        )

    @property
    def envelope(self) -> bool:
        """Whether messages are sent as JSON envelopes with positions."""
        return self._encoder.envelope

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        """Connect the backend and start the writers' task group and the watchdog."""
        if self._task_group is not None:
            raise RuntimeError("this Hub is already running")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await self.backend.connect(self._on_delivery, self._on_presence)
        except BaseException as exc:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._task_group = task_group
        self._outboxes.start()
        self._running = True
        task_group.start_soon(
            self._outboxes.watchdog, self._live_outboxes, name="brillo-realtime-watchdog"
        )
        if self._heartbeat is not None:
            task_group.start_soon(
                self._heartbeat.run, self._room_outboxes, name="brillo-realtime-heartbeat"
            )
        # under brillo.serve, SIGTERM drains the hub before the server closes its sockets
        self._stop_draining = on_drain(self.drain)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Graceful shutdown: final message, flush, close 1001, then stop the backend.

        An error of the backend's background work (see :meth:`Backend.close`) is raised here.
        """
        task_group = self._task_group
        if task_group is None:
            return
        self._running = False
        self._stop_draining()
        try:
            with anyio.CancelScope(shield=True):
                await self.drain(self.shutdown_timeout)
        finally:
            self._task_group = None
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
                await self.backend.close()

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """A lifespan for the app: ``Brillo(lifespan=hub.lifespan)``. Starts and stops the hub."""
        async with self:
            yield

    def wrap_lifespan(
        self, lifespan: Callable[[Any], AbstractAsyncContextManager[Any]]
    ) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
        """Compose with the app's own lifespan: the hub starts first, stops last.

        ``Brillo(lifespan=hub.wrap_lifespan(my_lifespan))``; the state ``my_lifespan`` yields is
        passed through.
        """

        @asynccontextmanager
        async def combined(app: Any) -> AsyncIterator[Any]:
            async with self, lifespan(app) as state:
                yield state

        return combined

    @property
    def running(self) -> bool:
        """True between start and the beginning of shutdown."""
        return self._running

    def _live_outboxes(self) -> Iterator[Outbox]:
        return (connection._outbox for connection in self._connections.values())

    def _room_outboxes(self) -> list[Outbox]:
        """The outboxes of the connections in at least one room (the heartbeat's)."""
        return [c._outbox for c in self._connections.values() if c._in_a_room()]

    def touch(self, websocket: SocketLike | Connection) -> None:
        """Report that the client behind ``websocket`` was heard from (any message, a pong).

        Cheap and synchronous: call it for every message received. With a heartbeat, a
        connection not touched for ``heartbeat_timeout`` seconds is closed; without one this
        does nothing.
        """
        heartbeat = self._heartbeat
        if heartbeat is None:
            return
        connection = (
            websocket if isinstance(websocket, Connection) else self._connections.get(id(websocket))
        )
        if connection is not None:
            heartbeat.touch(connection._outbox)

    async def drain(self, timeout: float | None = None, *, batch_size: int = BATCH_SIZE) -> int:
        """Close every connection gracefully, ``batch_size`` at a time, within ``timeout``.

        Each gets what is queued for it, then ``shutdown_message`` (if set), then a 1001 close
        ("server shutting down"); connections that join meanwhile are closed too. ``timeout``
        defaults to ``shutdown_timeout``. The hub keeps running. Returns how many were closed.
        Shutdown does this; so does :func:`brillo.serve.serve` on SIGTERM, before uvicorn
        closes the sockets itself.
        """
        final = None
        if self.shutdown_message is not None:
            final = self._encoder.frame(self._encoder.encode(self.shutdown_message))
        direct = self._totals.direct

        def farewell() -> Item | None:
            return None if final is None else Item(final, direct, None)

        return await close_in_batches(
            self._live_outboxes,
            farewell,
            self.shutdown_timeout if timeout is None else timeout,
            batch_size,
        )

    # -- membership ------------------------------------------------------------------------------

    @asynccontextmanager
    async def join(
        self,
        websocket: SocketLike,
        room: str,
        *,
        user: str | None = None,
        meta: Mapping[str, Any] | None = None,
        since: Position | str | None = None,
    ) -> AsyncIterator[Membership]:
        """Put ``websocket`` in ``room`` for the duration of the block; always takes it out.

        ``user`` identifies the person behind the connection (default: the connection key);
        ``meta`` is presence metadata (e.g. ``{"name": "Ada"}``). With ``since`` (the last position
        the client saw), the missed messages are queued before live ones, with no gap and no
        duplicate, or :attr:`Membership.recovery` says a resync is required.
        """
        membership = await self.enter(websocket, room, user=user, meta=meta, since=since)
        try:
            yield membership
        finally:
            with anyio.CancelScope(shield=True):
                await self.leave(websocket, room)

    async def enter(
        self,
        websocket: SocketLike,
        room: str,
        *,
        user: str | None = None,
        meta: Mapping[str, Any] | None = None,
        since: Position | str | None = None,
    ) -> Membership:
        """Explicit form of :meth:`join`; pair every call with :meth:`leave` (in a ``finally``)."""
        if not isinstance(room, str) or not room or room.startswith(_DIRECT):
            raise ValueError(f"invalid room name {room!r}: a non-empty str not starting with '@'")
        if isinstance(since, str):
            since = Position.parse(since)
        connection = await self._attach(websocket, user, meta)
        if connection._room(room) is not None:
            return Membership(self, connection, room)
        entry = self._rooms.get(room)
        created = entry is None
        if entry is None:
            entry = self._rooms[room] = Room(room)
        entry.add(connection._outbox, connection, recovering=since is not None)
        connection._enter(entry)
        try:
            if created:
                try:
                    await self.backend.subscribe(room)
                finally:
                    entry.ready.set()
            else:
                await entry.ready.wait()
            await self.backend.presence_join(
                room, PresenceEntry(connection.key, connection.user, connection.meta)
            )
            recovery = None if since is None else await self._recover(connection, entry, since)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.leave(websocket, room)
            raise
        return Membership(self, connection, room, recovery)

    async def leave(self, websocket: SocketLike | Connection, room: str) -> None:
        """Take the connection out of ``room`` (no-op when it is not in it)."""
        connection = (
            websocket if isinstance(websocket, Connection) else self._connections.get(id(websocket))
        )
        if connection is None:
            return
        entry = connection._exit(room)
        if not connection._kept():
            self._forget(connection)
        if entry is not None:
            await self._leave_room(connection, entry)

    async def attach(
        self,
        websocket: SocketLike,
        *,
        user: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Connection:
        """Register ``websocket`` before it joins any room; it stays until :meth:`detach`.

        For a protocol layer that talks to the socket between its rooms (replies, errors): the
        connection gets its writer at once, :meth:`send` queues to it, and leaving its last room
        keeps it. Pair every call with :meth:`detach` (in a ``finally``).
        """
        connection = await self._attach(websocket, user, meta)
        connection._pinned = True
        return connection

    async def detach(self, websocket: SocketLike) -> None:
        """Take an attached connection out of every room and wait until its writer has ended.

        What is still queued for it is dropped; afterwards nothing of the hub sends to
        ``websocket`` any more, so its owner may use it directly (to close it, say).
        """
        connection = self._connections.get(id(websocket))
        if connection is None:
            return
        connection._pinned = False
        with anyio.CancelScope(shield=True):
            for room in sorted(connection.rooms):
                await self.leave(connection, room)
            if self._connections.get(id(websocket)) is connection:
                self._forget(connection)
            with anyio.move_on_after(self._timeout):
                await connection._outbox.wait_finished()

    def send(self, websocket: SocketLike | Connection, data: Any) -> bool:
        """Queue ``data`` for one connection only, in order with its rooms' messages.

        Encoded like :meth:`publish`. Returns False (and sends nothing) when the hub does not
        know the connection (it never joined, or it is gone).
        """
        connection = (
            websocket if isinstance(websocket, Connection) else self._connections.get(id(websocket))
        )
        if connection is None or self._connections.get(id(connection.socket)) is not connection:
            return False
        self._send_one(connection, "", data)
        return True

    async def _attach(
        self, websocket: SocketLike, user: str | None, meta: Mapping[str, Any] | None
    ) -> Connection:
        connection = self._connections.get(id(websocket))
        if connection is not None:
            if user is not None and user != connection.user:
                raise ValueError(
                    f"this connection already joined as user {connection.user!r}, not {user!r}"
                )
            return connection
        task_group = self._task_group
        if task_group is None or not self._running:
            raise RuntimeError(_NOT_RUNNING)
        if meta:
            try:
                json.dumps(meta)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"presence meta must be JSON-serialisable: {exc}") from exc
        self._counter += 1
        key = f"{self._node}.{self._counter}"
        outbox = self._outboxes.new(key, websocket, eager_send_safe(websocket))
        connection = Connection(
            key, websocket, key if user is None else str(user), meta or {}, outbox
        )
        self._connections[id(websocket)] = connection
        users = self._users.get(connection.user)
        first = users is None
        if users is None:
            users = self._users[connection.user] = set()
        users.add(connection)
        task_group.start_soon(self._write, connection, name=f"brillo-realtime-writer-{key}")
        if first:
            try:
                await self.backend.subscribe(_DIRECT + connection.user)
            except BaseException:
                self._forget(connection)
                raise
        return connection

    async def _write(self, connection: Connection) -> None:
        """The connection's writer task; when it ends the connection leaves every room."""

        async def detach() -> None:
            await self._detach(connection)

        await self._outboxes.run(connection._outbox, detach)

    def _forget(self, connection: Connection) -> None:
        """Drop the connection from the hub's indexes and stop its writer (synchronous part)."""
        if self._connections.get(id(connection.socket)) is connection:
            del self._connections[id(connection.socket)]
        users = self._users.get(connection.user)
        if users is not None:
            users.discard(connection)
            if not users:
                del self._users[connection.user]
                if self._task_group is not None:
                    self._task_group.start_soon(self._unsubscribe, _DIRECT + connection.user)
        self._totals.retire_connection(connection._outbox.retire())

    async def _detach(self, connection: Connection) -> None:
        """Remove a connection whose writer ended from every room, at once."""
        rooms = connection._exit_all()
        if self._connections.get(id(connection.socket)) is connection:
            self._forget(connection)
        else:
            self._totals.retire_connection(connection._outbox.retire())
        for entry in rooms:
            await self._leave_room(connection, entry)

    async def _unsubscribe(self, topic: str) -> None:
        if topic.startswith(_DIRECT) and topic[1:] in self._users:
            return
        with anyio.move_on_after(self._timeout):
            try:
                await self.backend.unsubscribe(topic)
            except Exception as exc:
                logger.debug("realtime: unsubscribe from %r failed: %s", topic, exc)

    async def _leave_room(self, connection: Connection, entry: Room) -> None:
        entry.remove(connection._outbox)
        empty = self._rooms.get(entry.name) is entry and not entry.members
        if empty:
            del self._rooms[entry.name]
            self._totals.retire_room(entry.counters)
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
            try:
                await self.backend.presence_leave(
                    entry.name, PresenceEntry(connection.key, connection.user, connection.meta)
                )
            except Exception as exc:
                logger.warning(
                    "realtime: could not remove %s from the presence of %r: %s",
                    connection.key,
                    entry.name,
                    exc,
                )
            if empty and entry.name not in self._rooms:
                await self._unsubscribe(entry.name)

    # -- recovery --------------------------------------------------------------------------------

    async def _recover(self, connection: Connection, entry: Room, since: Position) -> Recovery:
        """Queue what ``connection`` missed since ``since``, then what was held back meanwhile."""
        outbox = connection._outbox
        try:
            result = await self.backend.history(entry.name, after=since.offset)
        finally:
            held = entry.recovered(outbox)
        current = result.position
        resync = resync_required(since, current, result.first_offset)
        messages: list[tuple[Position, str | bytes]] = []
        lagging = False
        if not resync:
            for position, payload in result.messages:
                messages.append((position, payload))
                message = self._encoder.room_frame(entry.name, payload, position)
                lagging = outbox.offer(Item(message, entry.counters, position.offset)) or lagging
        elif self.envelope:
            notice = self._encoder.resync_frame(entry.name, current)
            lagging = outbox.offer(Item(notice, entry.counters, None)) or lagging
        for item in held:
            if held_is_new(item.offset, current.offset):
                lagging = outbox.offer(item) or lagging
        self._pressure = self._pressure or lagging
        return Recovery(current, messages, resync)

    # -- publishing ------------------------------------------------------------------------------

    def _key_of(self, target: SocketLike | Connection | str | None) -> str:
        if target is None:
            return ""
        if isinstance(target, str):
            return target
        if isinstance(target, Connection):
            return target.key
        connection = self._connections.get(id(target))
        return "" if connection is None else connection.key

    async def publish(
        self, room: str, data: Any, *, exclude: SocketLike | Connection | str | None = None
    ) -> Position | None:
        """Deliver ``data`` (str, bytes or JSON-able) to every member of ``room`` in every process.

        The data is encoded once. Returns the message's history position (``None`` when history
        is disabled). Never waits for a receiver; raises
        :class:`~brillo.realtime.backends.BackendError` when the backend cannot take the message.
        """
        if self._task_group is None:
            raise RuntimeError(_NOT_RUNNING)
        payload = self._encoder.encode(data)
        exclude_key = self._key_of(exclude)
        self._totals.published += 1
        entry = self._rooms.get(room)
        if entry is not None:
            entry.counters.published += 1
        position = await self.backend.publish(
            room, Envelope(payload, exclude=exclude_key), history=self.history_size > 0
        )
        if self._pressure:
            self._pressure = False
            await checkpoint()
        return position

    async def publish_in(
        self,
        transaction: Any,
        room: str,
        data: Any,
        *,
        exclude: SocketLike | Connection | str | None = None,
    ) -> Position | None:
        """:meth:`publish` as part of the app's own database transaction (``postgresql://``).

        ``transaction`` is the connection the transaction is open on (an asyncpg connection):
        members receive ``data`` when it commits and never if it rolls back. Backends that
        cannot do this raise :class:`TypeError`.
        """
        if self._task_group is None:
            raise RuntimeError(_NOT_RUNNING)
        publish_in = getattr(self.backend, "publish_in", None)
        if publish_in is None:
            raise TypeError(
                f"{type(self.backend).__name__} cannot publish inside a transaction; "
                "use a postgresql:// hub"
            )
        envelope = Envelope(self._encoder.encode(data), exclude=self._key_of(exclude))
        self._totals.published += 1
        position: Position | None = await publish_in(
            transaction, room, envelope, history=self.history_size > 0
        )
        return position

    async def send_to_user(self, user: str, data: Any) -> None:
        """Deliver ``data`` to every connection of ``user``, in whatever process it is."""
        if self._task_group is None:
            raise RuntimeError(_NOT_RUNNING)
        payload = self._encoder.encode(data)
        self._totals.published += 1
        await self.backend.publish(_DIRECT + str(user), Envelope(payload), history=False)
        if self._pressure:
            self._pressure = False
            await checkpoint()

    def _send_one(self, connection: Connection, room: str, data: Any) -> None:
        """:meth:`Membership.send`: queue ``data`` for one connection, counted in its room."""
        entry = connection._room(room)
        counters = entry.counters if entry is not None else self._totals.direct
        message = self._encoder.frame(self._encoder.encode(data))
        # The fan-out path for one outbox: sent at once when the writer is idle (eager sends).
        if self._outboxes.fan_out(
            (connection._outbox,), _NOBODY_RECOVERING, Item(message, counters, None), ""
        ):
            self._pressure = True

    # -- backend callbacks (the hot path) --------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        topic = delivery.topic
        if topic[:1] == _DIRECT:
            connections = self._users.get(topic[1:])
            if connections:
                item = Item(self._encoder.frame(delivery.payload), self._totals.direct, None)
                for connection in connections:
                    if connection._outbox.offer(item):
                        self._pressure = True
            return
        entry = self._rooms.get(topic)
        if entry is None:
            return
        position = delivery.position
        item = Item(
            self._encoder.room_frame(topic, delivery.payload, position),
            entry.counters,
            None if position is None else position.offset,
        )
        if self._outboxes.fan_out(entry.members, entry.recovering, item, delivery.exclude):
            self._pressure = True

    def _on_presence(self, event: PresenceEvent) -> None:
        if not self.presence_events:
            return
        entry = self._rooms.get(event.room)
        if entry is None:
            return
        item = Item(self._encoder.presence_frame(event), entry.counters, None)
        if self._outboxes.fan_out(entry.members, entry.recovering, item, ""):
            self._pressure = True

    # -- queries ---------------------------------------------------------------------------------

    def connection(self, websocket: SocketLike) -> Connection | None:
        """The hub's :class:`Connection` for ``websocket``, if it is in a room."""
        return self._connections.get(id(websocket))

    def members(self, room: str) -> list[Connection]:
        """This process's connections in ``room``."""
        entry = self._rooms.get(room)
        return [] if entry is None else list(entry.members.values())

    async def presence(self, room: str) -> dict[str, list[PresenceEntry]]:
        """Who is in ``room`` across every process: user id -> that user's connections."""
        users: dict[str, list[PresenceEntry]] = {}
        for entry in await self.backend.presence(room):
            users.setdefault(entry.user, []).append(entry)
        return users

    async def history(self, room: str, since: Position | str | None = None) -> Recovery:
        """The retained messages of ``room`` after ``since`` (all retained when ``None``)."""
        if isinstance(since, str):
            since = Position.parse(since)
        result = await self.backend.history(room, after=0 if since is None else since.offset)
        current = result.position
        resync = since is not None and resync_required(since, current, result.first_offset)
        return Recovery(current, [] if resync else list(result.messages), resync)

    def stats(self) -> dict[str, Any]:
        """Counters of this process: per room and in total.

        ``{"connections", "users", "queued", "max_queued", "dropped", "published", "delivered",
        "rooms": {room: {"members", "queued", "dropped", "published", "delivered"}},
        "heartbeat": {"pings", "timeouts"}, "refused": {kind: count}}``; ``max_queued`` is the
        longest outbound queue of any connection; ``refused`` counts the WebSocket handshakes,
        connections and messages refused by brillo's protection in this process (see
        :class:`~brillo.middleware.websocket_protection.ProtectionStats`).
        """
        rooms = {
            name: entry.counters.as_dict(len(entry.members)) for name, entry in self._rooms.items()
        }
        outboxes = list(self._live_outboxes())
        stats = self._totals.snapshot(
            rooms,
            len(self._users),
            [outbox.queued for outbox in outboxes],
            sum(outbox.dropped for outbox in outboxes),
        )
        heartbeat = self._heartbeat
        stats["heartbeat"] = (
            {"pings": 0, "timeouts": 0} if heartbeat is None else heartbeat.snapshot()
        )
        stats["refused"] = protection_stats.snapshot()
        return stats
