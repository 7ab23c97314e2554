"""The realtime hub: rooms, fan-out with per-connection backpressure, presence and history.

A :class:`Hub` owns one task group (opened by ``async with hub`` or the app lifespan) in which each
connection that joined at least one room has exactly one writer task. Publishing encodes the data
once, hands it to the backend, and the backend's delivery is fanned out by appending one shared,
pre-built ASGI message to each member's bounded queue: no await per member, so a slow client can
never delay the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio
import anyio.abc
from anyio.lowlevel import checkpoint

from brillo.realtime.backends import create_backend
from brillo.realtime.backends.base import (
    Backend,
    Delivery,
    Envelope,
    Kind,
    Position,
    PresenceEntry,
    PresenceEvent,
)

__all__ = ["Connection", "Hub", "Membership", "Recovery", "SocketLike"]

logger = logging.getLogger("brillo.realtime")

_DIRECT = "@"
_NOT_RUNNING = (
    "the Hub is not running: start it with `async with hub:` or the app lifespan "
    "(lifespan=hub.lifespan)"
)
_EXPECTED_SEND_ERRORS = frozenset(
    {
        "WebSocketDisconnect",
        "WebSocketDisconnected",
        "ClientDisconnected",
        "BrokenResourceError",
        "ClosedResourceError",
        "EndOfStream",
    }
)


class _Waiter(Protocol):
    """What a writer sleeps on: an ``asyncio.Future`` or, on trio, a :class:`_TrioWaiter`."""

    def done(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...

    def __await__(self) -> Generator[Any, Any, Any]: ...


class _TrioWaiter:
    """A one-shot trio event with the two methods of a future the hub uses."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        import trio

        self._event = trio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    def set_result(self, result: None, /) -> None:
        self._event.set()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._event.wait().__await__()


def _waiter_factory() -> Callable[[], _Waiter]:
    """The cheapest one-shot waiter of the running event loop (called inside the loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: anyio's other backend is trio
        return _TrioWaiter
    return loop.create_future


def _wake(connection: Connection) -> None:
    waiter = connection._waiter
    if waiter is not None:
        connection._waiter = None
        if not waiter.done():
            waiter.set_result(None)


class _Resume:
    """Awaitable that drives a coroutine first stepped elsewhere, from the value it yielded.

    The publisher runs a member's send up to its first suspension (``first``, an asyncio future);
    awaiting this in the member's writer task yields that value to the event loop and resumes
    the coroutine with whatever the loop sends or throws back, until it returns.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class SocketLike(Protocol):
    """What the hub needs from a connection: :class:`brillo.websockets.WebSocket` fits."""

    async def send(self, message: Any) -> None:
        """Send one raw ASGI message."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with ``code``."""


class _RoomStats:
    __slots__ = ("delivered", "dropped", "published", "queued")

    def __init__(self) -> None:
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.queued = 0


class _Item:
    """One queued delivery; shared by every local recipient of one publish."""

    __slots__ = ("message", "offset", "stats")

    def __init__(self, message: dict[str, Any], stats: _RoomStats, offset: int | None) -> None:
        self.message = message
        self.stats = stats
        self.offset = offset


class _Room:
    __slots__ = ("members", "name", "ready", "stats")

    def __init__(self, name: str) -> None:
        self.name = name
        # connection -> None when live, or a list buffering live items while it recovers history
        self.members: dict[Connection, list[_Item] | None] = {}
        self.stats = _RoomStats()
        self.ready = anyio.Event()


class Connection:
    """One WebSocket as the hub sees it: its user, its rooms and its bounded outbound queue.

    Created by the hub on the first join of a socket; ``key`` is unique across processes.
    """

    __slots__ = (
        "__weakref__",
        "_close_code",
        "_close_reason",
        "_done",
        "_inflight",
        "_queue",
        "_rooms",
        "_busy_since",
        "_scope",
        "_stuck",
        "_waiter",
        "dropped",
        "key",
        "meta",
        "socket",
        "user",
    )

    def __init__(self, key: str, socket: SocketLike, user: str, meta: Mapping[str, Any]) -> None:
        self.key = key
        self.socket = socket
        self.user = user
        self.meta = dict(meta)
        #: Messages dropped from this connection's queue by the ``drop_oldest`` policy.
        self.dropped = 0
        self._queue: deque[_Item] = deque()
        self._rooms: dict[str, _Room] = {}
        self._waiter: _Waiter | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        self._scope: anyio.CancelScope | None = None
        self._busy_since = 0.0
        self._stuck = False
        #: A send started eagerly by the publisher that had to wait: (coroutine, what it
        #: yielded or the error it raised, item); its writer finishes it before anything else.
        self._inflight: tuple[Any, Any, _Item] | None = None
        self._done = anyio.Event()

    @property
    def rooms(self) -> frozenset[str]:
        """Names of the rooms this connection is in."""
        return frozenset(self._rooms)

    @property
    def queued(self) -> int:
        """Messages waiting in this connection's outbound queue."""
        return len(self._queue)

    def __repr__(self) -> str:
        return f"Connection(key={self.key!r}, user={self.user!r})"


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
        kind, payload = self.hub._encode(data)
        room = self.connection._rooms.get(self.room)
        stats = room.stats if room is not None else self.hub._direct_stats
        message = self.hub._raw_message(kind, payload)
        self.hub._put(self.connection, _Item(message, stats, None))


Overflow = Literal["drop_oldest", "close"]


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
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if overflow not in ("drop_oldest", "close"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'close', not {overflow!r}")
        if write_timeout <= 0 or shutdown_timeout < 0:
            raise ValueError("write_timeout must be positive and shutdown_timeout >= 0")
        self.url = url
        self.queue_size = queue_size
        self.overflow: Overflow = overflow
        self.write_timeout = write_timeout
        self.history_size = history_size
        self.presence_ttl = presence_ttl
        self.envelope = envelope
        self.presence_events = presence_events
        self.shutdown_message = shutdown_message
        self.shutdown_timeout = shutdown_timeout
        self.backend: Backend = backend or create_backend(
            url, history_size=history_size, history_ttl=history_ttl, presence_ttl=presence_ttl
        )
        self._node = secrets.token_hex(4)
        self._counter = 0
        self._drop_oldest = overflow == "drop_oldest"
        self._rooms: dict[str, _Room] = {}
        self._connections: dict[int, Connection] = {}
        self._users: dict[str, set[Connection]] = {}
        self._direct_stats = _RoomStats()
        self._published = 0
        self._delivered_base = 0
        self._dropped_base = 0
        self._task_group: anyio.abc.TaskGroup | None = None
        self._running = False
        self._timeout = 5.0
        self._half_queue = max(1, queue_size // 2)
        self._pressure = False
        self._new_waiter: Callable[[], _Waiter] = _TrioWaiter
        self._eager = False

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
        self._new_waiter = _waiter_factory()
        # Eager sends step a coroutine outside its writer task: sound on asyncio, whose
        # awaitables are not bound to a task, not on trio (its traps name the current task).
        self._eager = self._new_waiter is not _TrioWaiter
        self._running = True
        task_group.start_soon(self._watchdog, name="brillo-realtime-watchdog")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Graceful shutdown: final message, flush, close 1001, then stop the backend."""
        task_group = self._task_group
        if task_group is None:
            return
        self._running = False
        try:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
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

    async def _shutdown(self) -> None:
        connections = list(self._connections.values())
        final = None
        if self.shutdown_message is not None:
            kind, payload = self._encode(self.shutdown_message)
            final = self._raw_message(kind, payload)
        for connection in connections:
            if final is not None and connection._close_code is None:
                connection._queue.append(_Item(final, self._direct_stats, None))
                self._direct_stats.queued += 1
            self._begin_close(connection, 1001, "server shutting down")
        with anyio.move_on_after(self.shutdown_timeout):
            for connection in connections:
                await connection._done.wait()

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
        existing = connection._rooms.get(room)
        if existing is not None:
            return Membership(self, connection, room)
        entry = self._rooms.get(room)
        created = entry is None
        if entry is None:
            entry = self._rooms[room] = _Room(room)
        entry.members[connection] = [] if since is not None else None
        connection._rooms[room] = entry
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
        entry = connection._rooms.pop(room, None)
        last = not connection._rooms
        if last:
            self._forget(connection)
        if entry is not None:
            await self._leave_room(connection, entry)

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
        connection = Connection(key, websocket, key if user is None else str(user), meta or {})
        self._connections[id(websocket)] = connection
        users = self._users.get(connection.user)
        first = users is None
        if users is None:
            users = self._users[connection.user] = set()
        users.add(connection)
        task_group.start_soon(self._writer, connection, name=f"brillo-realtime-writer-{key}")
        if first:
            try:
                await self.backend.subscribe(_DIRECT + connection.user)
            except BaseException:
                self._forget(connection)
                raise
        return connection

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
        self._dropped_base += connection.dropped
        connection.dropped = 0
        for item in connection._queue:
            item.stats.queued -= 1
        connection._queue.clear()
        if connection._scope is not None and connection._close_code is None:
            connection._scope.cancel()
        _wake(connection)

    async def _unsubscribe(self, topic: str) -> None:
        if topic.startswith(_DIRECT) and topic[1:] in self._users:
            return
        with anyio.move_on_after(self._timeout):
            try:
                await self.backend.unsubscribe(topic)
            except Exception as exc:
                logger.debug("realtime: unsubscribe from %r failed: %s", topic, exc)

    async def _leave_room(self, connection: Connection, entry: _Room) -> None:
        entry.members.pop(connection, None)
        entry_now = self._rooms.get(entry.name)
        empty = entry_now is entry and not entry.members
        if empty:
            del self._rooms[entry.name]
            self._delivered_base += entry.stats.delivered
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

    async def _recover(self, connection: Connection, entry: _Room, since: Position) -> Recovery:
        try:
            result = await self.backend.history(entry.name, after=since.offset)
        finally:
            pending = entry.members.get(connection)
            if connection in entry.members:
                entry.members[connection] = None
        current = result.position
        resync = (
            since.epoch != current.epoch
            or since.offset > current.offset
            or since.offset + 1 < result.first_offset
        )
        messages: list[tuple[Position, str | bytes]] = []
        if not resync:
            for position, kind, payload in result.messages:
                messages.append((position, payload))
                message = self._build_message(entry.name, kind, payload, position)
                self._put(connection, _Item(message, entry.stats, position.offset))
        elif self.envelope:
            notice = json.dumps(
                {"type": "resync", "room": entry.name, "position": str(current)},
                separators=(",", ":"),
            )
            self._put(
                connection,
                _Item({"type": "websocket.send", "text": notice}, entry.stats, None),
            )
        for item in pending or ():
            if item.offset is None or item.offset > current.offset:
                self._put(connection, item)
        return Recovery(current, messages, resync)

    # -- publishing ------------------------------------------------------------------------------

    def _encode(self, data: Any) -> tuple[Kind, str | bytes]:
        if self.envelope:
            if isinstance(data, bytes | bytearray | memoryview):
                raise TypeError("a Hub with envelope=True carries JSON data only, not bytes")
        elif isinstance(data, str):
            return "t", data
        elif isinstance(data, bytes | bytearray | memoryview):
            return "b", bytes(data)
        try:
            return "t", json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"realtime data must be str, bytes or JSON-serialisable, not "
                f"{type(data).__name__}: {exc}"
            ) from exc

    @staticmethod
    def _raw_message(kind: Kind, payload: str | bytes) -> dict[str, Any]:
        if kind == "t":
            return {"type": "websocket.send", "text": payload}
        return {"type": "websocket.send", "bytes": payload}

    def _build_message(
        self, room: str, kind: Kind, payload: str | bytes, position: Position | None
    ) -> dict[str, Any]:
        if not self.envelope or kind != "t":
            return self._raw_message(kind, payload)
        pos = "null" if position is None else f'"{position}"'
        assert isinstance(payload, str)
        text = f'{{"type":"message","room":{json.dumps(room)},"position":{pos},"data":{payload}}}'
        return {"type": "websocket.send", "text": text}

    @staticmethod
    def _key_of(target: SocketLike | Connection | str | None, hub: Hub) -> str:
        if target is None:
            return ""
        if isinstance(target, str):
            return target
        if isinstance(target, Connection):
            return target.key
        connection = hub._connections.get(id(target))
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
        kind, payload = self._encode(data)
        exclude_key = self._key_of(exclude, self)
        self._published += 1
        entry = self._rooms.get(room)
        if entry is not None:
            entry.stats.published += 1
        position = await self.backend.publish(
            room, Envelope(kind, payload, exclude_key), history=self.history_size > 0
        )
        if self._pressure:
            self._pressure = False
            await checkpoint()
        return position

    async def send_to_user(self, user: str, data: Any) -> None:
        """Deliver ``data`` to every connection of ``user``, in whatever process it is."""
        if self._task_group is None:
            raise RuntimeError(_NOT_RUNNING)
        kind, payload = self._encode(data)
        self._published += 1
        await self.backend.publish(_DIRECT + str(user), Envelope(kind, payload), history=False)
        if self._pressure:
            self._pressure = False
            await checkpoint()

    # -- backend callbacks (the hot path) --------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        topic = delivery.topic
        if topic[:1] == _DIRECT:
            connections = self._users.get(topic[1:])
            if connections:
                item = _Item(
                    self._raw_message(delivery.kind, delivery.payload), self._direct_stats, None
                )
                for connection in connections:
                    self._put(connection, item)
            return
        entry = self._rooms.get(topic)
        if entry is None:
            return
        position = delivery.position
        item = _Item(
            self._build_message(topic, delivery.kind, delivery.payload, position),
            entry.stats,
            None if position is None else position.offset,
        )
        self._fanout(entry.members, item, delivery.exclude)

    def _fanout(
        self, members: dict[Connection, list[_Item] | None], item: _Item, exclude: str
    ) -> None:
        """Queue ``item`` for every member: the hot path, no await and no per-member allocation.

        Members with a short queue take the inline fast path; the others go through :meth:`_put`
        (backpressure policy, pressure flag). Members recovering history buffer it instead.
        """
        half = self._half_queue
        put = self._put
        eager = self._eager
        message = item.message
        fast = delivered = 0
        for connection, pending in members.items():
            if exclude and connection.key == exclude:
                continue
            if pending is not None:
                pending.append(item)
                continue
            queue = connection._queue
            if len(queue) < half and connection._close_code is None:
                waiter = connection._waiter
                if eager and waiter is not None and not queue and connection._inflight is None:
                    # The writer is idle: run the send right here, as far as it goes without
                    # waiting. Over a healthy socket it completes in this one step (no task
                    # switch per delivery); a send that must wait is handed, half-run, to the
                    # writer, so a slow client still only ever holds up its own writer.
                    coro = connection.socket.send(message)
                    try:
                        first = coro.send(None)
                    except StopIteration:
                        delivered += 1
                        continue
                    except Exception as exc:
                        connection._inflight = (None, exc, item)
                    else:
                        connection._inflight = (coro, first, item)
                else:
                    queue.append(item)
                fast += 1
                if waiter is not None:
                    connection._waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
            else:
                put(connection, item)
        item.stats.queued += fast
        if delivered:
            item.stats.delivered += delivered

    def _on_presence(self, event: PresenceEvent) -> None:
        if not self.presence_events:
            return
        entry = self._rooms.get(event.room)
        if entry is None:
            return
        text = json.dumps(
            {
                "type": "presence",
                "event": event.event,
                "room": event.room,
                "user": event.entry.user,
                "connection": event.entry.connection,
                "meta": dict(event.entry.meta),
                "expired": event.expired,
            },
            separators=(",", ":"),
        )
        item = _Item({"type": "websocket.send", "text": text}, entry.stats, None)
        self._fanout(entry.members, item, "")

    def _put(self, connection: Connection, item: _Item) -> None:
        if connection._close_code is not None:
            return
        queue = connection._queue
        length = len(queue)
        if length >= self._half_queue and connection._busy_since == 0.0:
            # an idle writer lags behind: make the publisher yield so writers get to run
            self._pressure = True
        if length >= self.queue_size:
            if self._drop_oldest:
                old = queue.popleft()
                old.stats.queued -= 1
                old.stats.dropped += 1
                connection.dropped += 1
            else:
                item.stats.dropped += 1
                connection.dropped += 1
                self._begin_close(connection, 1013, "slow consumer: outbound queue full")
                return
        queue.append(item)
        item.stats.queued += 1
        waiter = connection._waiter
        if waiter is not None:
            connection._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _begin_close(self, connection: Connection, code: int, reason: str) -> None:
        if connection._close_code is not None:
            return
        connection._close_code = code
        connection._close_reason = reason
        if code != 1001:
            for item in connection._queue:
                item.stats.queued -= 1
                item.stats.dropped += 1
                connection.dropped += 1
            connection._queue.clear()
            if connection._scope is not None:
                connection._scope.cancel()  # abandon a send stuck on this slow client
        _wake(connection)

    # -- the writer ------------------------------------------------------------------------------

    async def _writer(self, connection: Connection) -> None:
        queue = connection._queue
        send = connection.socket.send
        new_waiter = self._new_waiter
        monotonic = time.monotonic
        try:
            with anyio.CancelScope() as scope:
                connection._scope = scope
                while True:
                    inflight = connection._inflight
                    if inflight is not None:
                        await self._finish_inflight(connection, inflight)
                        continue
                    if not queue:
                        if connection._close_code is not None:
                            break
                        if self._connections.get(id(connection.socket)) is not connection:
                            return
                        waiter = connection._waiter = new_waiter()
                        await waiter
                        continue
                    item = queue.popleft()
                    stats = item.stats
                    stats.queued -= 1
                    connection._busy_since = monotonic()
                    await send(item.message)
                    connection._busy_since = 0.0
                    stats.delivered += 1
            connection._scope = None
            if connection._stuck:
                logger.info(
                    "realtime: dropping connection %s: a send took longer than %ss",
                    connection.key,
                    self.write_timeout,
                )
                code, reason = 1013, "write timeout"
            else:
                code, reason = connection._close_code or 0, connection._close_reason
            if code:
                with anyio.move_on_after(min(self.write_timeout, 1.0)):
                    await connection.socket.close(code, reason or None)
        except Exception as exc:
            name = type(exc).__name__
            if isinstance(exc, OSError | RuntimeError) or name in _EXPECTED_SEND_ERRORS:
                logger.debug("realtime: connection %s is gone (%s)", connection.key, name)
            else:
                logger.warning(
                    "realtime: dropping connection %s after a send failed: %s: %s",
                    connection.key,
                    name,
                    exc,
                )
        finally:
            inflight, connection._inflight = connection._inflight, None
            if inflight is not None and inflight[0] is not None:
                inflight[0].close()
            connection._scope = None
            connection._waiter = None
            connection._busy_since = 0.0
            await self._detach(connection)
            connection._done.set()

    @staticmethod
    async def _finish_inflight(connection: Connection, inflight: tuple[Any, Any, _Item]) -> None:
        """Finish, in the writer's task, a send the publisher started (see :meth:`_fanout`)."""
        coro, first, item = inflight
        item.stats.queued -= 1
        if coro is None:  # the send failed on its first step
            connection._inflight = None
            raise first
        connection._busy_since = time.monotonic()
        try:
            await _Resume(coro, first)
        finally:
            connection._inflight = None
            connection._busy_since = 0.0
        item.stats.delivered += 1

    async def _watchdog(self) -> None:
        """Cancel the writers whose current send has taken longer than ``write_timeout``.

        One scan of the connections every quarter timeout: the per-send cost is two stores.
        """
        timeout = self.write_timeout
        while True:
            await anyio.sleep(timeout / 4)
            limit = time.monotonic() - timeout
            for connection in list(self._connections.values()):
                since = connection._busy_since
                if since and since <= limit and not connection._stuck:
                    connection._stuck = True
                    if connection._scope is not None:
                        connection._scope.cancel()

    async def _detach(self, connection: Connection) -> None:
        """Remove a connection whose writer ended from every room, at once."""
        rooms = list(connection._rooms.values())
        connection._rooms.clear()
        if self._connections.get(id(connection.socket)) is connection:
            self._forget(connection)
        else:
            for item in connection._queue:
                item.stats.queued -= 1
            connection._queue.clear()
        for entry in rooms:
            await self._leave_room(connection, entry)

    # -- queries ---------------------------------------------------------------------------------

    def connection(self, websocket: SocketLike) -> Connection | None:
        """The hub's :class:`Connection` for ``websocket``, if it is in a room."""
        return self._connections.get(id(websocket))

    def members(self, room: str) -> list[Connection]:
        """This process's connections in ``room``."""
        entry = self._rooms.get(room)
        return [] if entry is None else list(entry.members)

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
        resync = since is not None and (
            since.epoch != current.epoch
            or since.offset > current.offset
            or since.offset + 1 < result.first_offset
        )
        messages = [] if resync else [(pos, payload) for pos, _, payload in result.messages]
        return Recovery(current, messages, resync)

    def stats(self) -> dict[str, Any]:
        """Counters of this process: per room and in total.

        ``{"connections", "users", "queued", "max_queued", "dropped", "published", "delivered",
        "rooms": {room: {"members", "queued", "dropped", "published", "delivered"}}}``;
        ``max_queued`` is the longest outbound queue of any connection.
        """
        rooms: dict[str, Any] = {}
        for name, entry in self._rooms.items():
            stats = entry.stats
            rooms[name] = {
                "members": len(entry.members),
                "queued": stats.queued,
                "dropped": stats.dropped,
                "published": stats.published,
                "delivered": stats.delivered,
            }
        connections = self._connections.values()
        return {
            "connections": len(self._connections),
            "users": len(self._users),
            "queued": sum(len(c._queue) for c in connections),
            "max_queued": max((len(c._queue) for c in connections), default=0),
            "dropped": self._dropped_base + sum(c.dropped for c in connections),
            "published": self._published,
            "delivered": sum(r["delivered"] for r in rooms.values())
            + self._direct_stats.delivered
            + self._delivered_base,
            "rooms": rooms,
        }
