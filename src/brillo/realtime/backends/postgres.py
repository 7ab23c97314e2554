"""The PostgreSQL backend: ``postgresql://user:password@host:port/database``.

Built on asyncpg. Each process holds one connection that LISTENs on the backend's channel and a
small pool for commands. Publishing is one call of a SQL function that, in one transaction,
advances the topic's position, appends the message to the history table, trims it, and NOTIFYs
every process; a payload too large for NOTIFY (8,000 bytes with its header) is stored in the
table and the notification carries its row id instead. Because it is one SQL call, the app can
run it inside its own transaction (:meth:`PostgresBackend.publish_in`, ``Hub.publish_in``): the
message is published when the transaction commits and not at all when it rolls back.

Presence lives in an unlogged table with an expiry per entry, refreshed by each process's
heartbeat; any process's heartbeat deletes expired entries and announces them as expired leaves.

The listener is supervised. When its connection is lost it reconnects with backoff (50 ms
doubling up to ``reconnect_max``), LISTENs again, and reads what it missed from the history table:
for each subscribed topic, the messages after the last position it delivered, handed to the hub
in order before any newer live message, none twice. Messages published without history while the
listener was away are not recovered (as with Redis). Any other failure of the listener or of the
heartbeat is logged with its traceback and the task restarts; what ends one for good is re-raised
by :meth:`PostgresBackend.close`.

asyncpg runs on asyncio only. The LISTEN connection must be a real session: not through a
pooler in transaction mode (PgBouncer's ``pool_mode = transaction``).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from brillo.realtime.backends._postgres_sql import NOTIFY_LIMIT, Statements
from brillo.realtime.backends._supervisor import FIRST_DELAY, Supervisor, raise_failures
from brillo.realtime.backends.base import (
    Backend,
    BackendError,
    Delivery,
    DeliveryCallback,
    Envelope,
    HistoryResult,
    Position,
    PresenceCallback,
    PresenceEntry,
    PresenceEvent,
    call_back,
    entry_from_json,
    entry_to_json,
    logger,
)

try:
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the extra
    asyncpg = None

__all__ = ["PostgresBackend"]

#: What a lost or refused connection raises out of asyncpg.
_DB_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)
if asyncpg is not None:
    _DB_ERRORS += (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)

_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,39}")
#: The inbox entry that makes the listener read what it missed (queued before each LISTEN).
_RECOVER = object()


def _shown(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def _encode(payload: str | bytes) -> tuple[str, str]:
    """``(kind, body)`` of a payload in a notification (see ``_postgres_sql``)."""
    if isinstance(payload, str):
        if "\x00" not in payload:
            return "t", payload
        return "u", base64.b64encode(payload.encode()).decode("ascii")
    return "b", base64.b64encode(payload).decode("ascii")


def _stored(kind: str, data: bytes) -> str | bytes:
    """A payload read from the messages table, with the type it was published with."""
    return data.decode() if kind == "t" else bytes(data)


async def _keep(connection: Any) -> None:
    """The pool's reset: nothing, the backend's statements leave no session state behind."""


class PostgresBackend(Backend):
    """Backend shared by every process that points at the same PostgreSQL database.

    :param url: a libpq-style URL, ``postgresql://user:password@host:port/database``.
    :param history_size: messages kept per topic (0 keeps none, positions still count).
    :param history_ttl: seconds a message stays in history (``None``: until pushed out).
    :param presence_ttl: seconds after which members of a silent process expire.
    :param prefix: prefix of the backend's tables, functions and channel (lower-case letters,
        digits, ``_``; up to 40 characters).
    :param reconnect_max: longest pause between two reconnect attempts, in seconds.
    :param connect_timeout: seconds to wait for a connection (and, at start, for the LISTEN).
    :param command_timeout: seconds one statement may take before it fails.
    :param pool_size: most connections of the command pool.
    :param health_interval: seconds of silence after which the LISTEN connection is checked.
    :param create_schema: create the tables and functions at start (needs the right to);
        ``False`` expects them made beforehand from :meth:`schema_sql`.
    """

    def __init__(
        self,
        url: str,
        *,
        history_size: int = 100,
        history_ttl: float | None = None,
        presence_ttl: float = 30.0,
        prefix: str = "brillo_rt_",
        reconnect_max: float = 5.0,
        connect_timeout: float = 10.0,
        command_timeout: float = 10.0,
        pool_size: int = 10,
        health_interval: float = 5.0,
        create_schema: bool = True,
    ) -> None:
        if asyncpg is None:  # pragma: no cover
            raise RuntimeError(
                "the PostgreSQL backend needs asyncpg: pip install 'brillo[postgres]'"
            )
        if history_size < 0:
            raise ValueError("history_size must be >= 0")
        if history_ttl is not None and history_ttl <= 0:
            raise ValueError("history_ttl must be positive or None")
        if presence_ttl <= 0:
            raise ValueError("presence_ttl must be positive")
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"invalid prefix {prefix!r}: lower-case letters, digits and '_', "
                "not starting with a digit, at most 40 characters"
            )
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.url = url
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.presence_ttl = presence_ttl
        self.prefix = prefix
        self.reconnect_max = reconnect_max
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.pool_size = pool_size
        self.health_interval = health_interval
        self.create_schema = create_schema
        self.node = secrets.token_hex(6)
        self._sql = Statements(prefix)
        self._shown = _shown(url)
        self._pool: Any = None
        self._listener: Any = None
        self._topics: set[str] = set()
        #: Per subscribed topic, the last position delivered (or the one at subscription).
        self._last: dict[str, tuple[str | None, int]] = {}
        #: This process's presence entries: room -> connection -> entry JSON.
        self._local: dict[str, dict[str, str]] = {}
        self._inbox: deque[Any] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._connected: asyncio.Event | None = None
        self._supervisor = Supervisor("PostgreSQL", reconnect_max)
        self._on_delivery: DeliveryCallback | None = None
        self._on_presence: PresenceCallback | None = None

    def schema_sql(self) -> str:
        """The SQL that creates this backend's tables and functions (for a migration)."""
        return self._sql.schema

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self, on_delivery: DeliveryCallback, on_presence: PresenceCallback) -> None:
        """Open the pool, create the schema, start the listener and the heartbeat."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "the PostgreSQL realtime backend runs on asyncio only (asyncpg); "
                "use memory:// on trio"
            ) from None
        self._on_delivery = on_delivery
        self._on_presence = on_presence
        connected = self._connected = asyncio.Event()
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=0,
                max_size=self.pool_size,
                timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                reset=_keep,
                server_settings={"application_name": "brillo-realtime"},
            )
        except _DB_ERRORS as exc:
            raise BackendError(f"cannot reach PostgreSQL at {self._shown}: {exc}") from exc
        try:
            await self._prepare()
        except BaseException:
            await self._close_pool()
            raise
        self._supervisor.start("listener", self._listen, self._drop_listener)
        self._supervisor.start("presence heartbeat", self._heartbeat)
        try:
            await asyncio.wait_for(connected.wait(), self.connect_timeout)
        except TimeoutError:
            await self.close()
            raise BackendError(f"PostgreSQL at {self._shown} did not accept a LISTEN") from None

    async def _prepare(self) -> None:
        try:
            connection = await self._pool.acquire()
        except _DB_ERRORS as exc:
            raise BackendError(f"cannot reach PostgreSQL at {self._shown}: {exc}") from exc
        try:
            encoding = await connection.fetchval("SHOW server_encoding")
            if encoding != "UTF8":
                raise BackendError(
                    f"the realtime backend needs a UTF8 database; {self._shown} is {encoding}"
                )
            if self.create_schema:
                async with connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", self._sql.lock_key)
                    await connection.execute(self._sql.schema)
        except _DB_ERRORS as exc:
            raise BackendError(
                f"could not prepare the realtime tables in {self._shown}: {exc}"
            ) from exc
        finally:
            await self._pool.release(connection)

    async def close(self) -> None:
        """Stop the listener and the heartbeat, close every connection. Idempotent.

        Re-raises what ended a task for good (anything but cancellation), after the cleanup.
        """
        failures = await self._supervisor.stop()
        await self._drop_listener()
        await self._close_pool()
        self._inbox.clear()
        self._on_delivery = None
        self._on_presence = None
        raise_failures("PostgreSQL", failures)

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), 2.0)
        except _DB_ERRORS:
            pool.terminate()
        except BaseException:
            pool.terminate()
            raise

    async def _drop_listener(self) -> None:
        connection, self._listener = self._listener, None
        if connection is None:
            return
        try:
            await connection.close(timeout=2.0)
        except _DB_ERRORS:
            connection.terminate()
        except BaseException:
            connection.terminate()
            raise

    # -- commands --------------------------------------------------------------------------------

    def _commands(self) -> Any:
        pool = self._pool
        if pool is None:
            raise BackendError("the PostgreSQL backend is not connected")
        return pool

    async def publish(self, topic: str, envelope: Envelope, *, history: bool) -> Position | None:
        """Publish through PostgreSQL; with ``history`` append to the topic's history atomically."""
        pool = self._commands()
        kind, body = _encode(envelope.payload)
        try:
            row = await pool.fetchrow(
                self._sql.publish,
                topic,
                kind,
                envelope.exclude,
                body,
                history,
                self.history_size,
                self.history_ttl,
                self._sql.channel,
            )
        except _DB_ERRORS as exc:
            raise BackendError(f"PostgreSQL publish failed: {exc}") from exc
        return Position(row[0], row[1]) if history else None

    async def publish_in(
        self, connection: Any, topic: str, envelope: Envelope, *, history: bool
    ) -> Position | None:
        """Publish as part of the transaction open on ``connection`` (an asyncpg connection).

        Subscribers receive the message when that transaction commits, never when it rolls back;
        until it ends, other publishers to ``topic`` wait (positions follow commit order). Errors
        of the connection are raised as asyncpg raises them: the transaction is the caller's.
        """
        in_transaction = getattr(connection, "is_in_transaction", None)
        if in_transaction is None or not hasattr(connection, "fetchrow"):
            raise TypeError(
                "publish_in takes an asyncpg connection (asyncpg.Connection or one from an "
                f"asyncpg pool), not {type(connection).__name__}"
            )
        if not in_transaction():
            raise ValueError(
                "publish_in publishes inside the connection's transaction, and none is open: "
                "use `async with connection.transaction():`"
            )
        kind, body = _encode(envelope.payload)
        row = await connection.fetchrow(
            self._sql.publish,
            topic,
            kind,
            envelope.exclude,
            body,
            history,
            self.history_size,
            self.history_ttl,
            self._sql.channel,
        )
        return Position(row[0], row[1]) if history else None

    async def subscribe(self, topic: str) -> None:
        """Deliver ``topic``'s messages from its current position on."""
        if topic in self._topics:
            return
        pool = self._commands()
        try:
            row = await pool.fetchrow(self._sql.topic_position, topic)
        except _DB_ERRORS as exc:
            raise BackendError(f"PostgreSQL subscribe failed: {exc}") from exc
        if topic in self._topics:  # subscribed meanwhile
            return
        self._topics.add(topic)
        self._last[topic] = (None, 0) if row is None else (row[0], row[1])

    async def unsubscribe(self, topic: str) -> None:
        """Stop delivering ``topic``."""
        self._topics.discard(topic)
        self._last.pop(topic, None)

    async def history(self, topic: str, after: int = 0) -> HistoryResult:
        """The topic's position and its retained messages after ``after``, in one snapshot."""
        pool = self._commands()
        try:
            rows = await pool.fetch(self._sql.history, topic, after, self.history_ttl)
            if rows[0]["epoch"] is None:  # first look at this topic: give it an epoch
                await pool.execute(self._sql.position, topic)
                rows = await pool.fetch(self._sql.history, topic, after, self.history_ttl)
        except _DB_ERRORS as exc:
            raise BackendError(f"PostgreSQL history failed: {exc}") from exc
        head = rows[0]
        epoch: str = head["epoch"]
        current: int = head["current"]
        first = head["first"]
        messages = [
            (Position(epoch, row["pos"]), _stored(row["kind"], row["payload"]))
            for row in rows
            if row["pos"] is not None
        ]
        return HistoryResult(
            Position(epoch, current), current + 1 if first is None else first, messages
        )

    # -- presence --------------------------------------------------------------------------------

    async def presence_join(self, room: str, entry: PresenceEntry) -> None:
        """Record ``entry`` with an expiry and announce the join."""
        info = entry_to_json(entry)
        if len(info.encode()) + len(room.encode()) + 16 >= NOTIFY_LIMIT:
            raise ValueError(
                "presence meta too large: with the room name it must stay under about "
                f"{NOTIFY_LIMIT - 100} bytes of JSON to fit in a PostgreSQL notification"
            )
        pool = self._commands()
        try:
            await pool.execute(
                self._sql.presence_join,
                room,
                entry.connection,
                self.node,
                info,
                self.presence_ttl,
                self._sql.channel,
            )
        except _DB_ERRORS as exc:
            raise BackendError(f"PostgreSQL presence update failed: {exc}") from exc
        self._local.setdefault(room, {})[entry.connection] = info

    async def presence_leave(self, room: str, entry: PresenceEntry) -> None:
        """Remove ``entry`` and announce the leave when it was still present."""
        local = self._local.get(room)
        if local is not None:
            local.pop(entry.connection, None)
            if not local:
                del self._local[room]
        pool = self._commands()
        try:
            await pool.execute(self._sql.presence_leave, room, entry.connection, self._sql.channel)
        except _DB_ERRORS as exc:
            raise BackendError(f"PostgreSQL presence update failed: {exc}") from exc

    async def presence(self, room: str) -> list[PresenceEntry]:
        """Live entries of every process, in join order, expired ones left out."""
        pool = self._commands()
        try:
            rows = await pool.fetch(self._sql.presence_list, room)
        except _DB_ERRORS as exc:
            raise BackendError(f"PostgreSQL presence query failed: {exc}") from exc
        return [entry_from_json(row[0]) for row in rows]

    async def _heartbeat(self) -> None:
        """Every ``presence_ttl / 3`` seconds: extend this process's entries, reap expired ones.

        Entries this process has but the table lost (a crash of the server, or expired while
        it was unreachable) are added back and announced as joins.
        """
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            try:
                await self._refresh()
            except _DB_ERRORS as exc:
                self._supervisor.stopping()
                logger.debug("realtime: presence heartbeat failed: %s", exc)

    async def _refresh(self) -> None:
        pool = self._commands()
        args = (self.node, self.presence_ttl, self._sql.channel)
        local = [(room, c, info) for room, m in list(self._local.items()) for c, info in m.items()]
        kept = await pool.fetchval(self._sql.presence_refresh, *args, [], [], [])
        if kept >= len(local):
            return
        rooms, connections, infos = (list(column) for column in zip(*local, strict=True))
        await pool.fetchval(self._sql.presence_refresh, *args, rooms, connections, infos)
        for room, connection, _ in local:  # left while they were being added back
            if connection not in self._local.get(room, ()):
                await pool.execute(self._sql.presence_leave, room, connection, self._sql.channel)

    # -- the listener ----------------------------------------------------------------------------

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        """asyncpg's notification callback: queue the note for the listener task, in order."""
        self._inbox.append(payload)
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    async def _listen(self) -> None:
        """Connect, LISTEN, catch up, then hand notifications to the hub; reconnect when lost."""
        loop = asyncio.get_running_loop()
        delay = FIRST_DELAY
        lost = False
        inbox = self._inbox
        while True:
            try:
                if not inbox or inbox[-1] is not _RECOVER:
                    inbox.append(_RECOVER)  # read the gap once LISTEN is on, before newer notes
                connection = self._listener = await asyncpg.connect(
                    self.url,
                    timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                    server_settings={"application_name": "brillo-realtime-listener"},
                )
                gone: asyncio.Future[None] = loop.create_future()

                def terminated(_: Any, gone: asyncio.Future[None] = gone) -> None:
                    if not gone.done():
                        gone.set_result(None)

                connection.add_termination_listener(terminated)
                await connection.add_listener(self._sql.channel, self._notified)
                if lost:
                    logger.warning("realtime: reconnected to PostgreSQL at %s", self._shown)
                    lost = False
                if self._connected is not None:
                    self._connected.set()
                delay = FIRST_DELAY
                await self._pump(connection, gone)
            except _DB_ERRORS as exc:
                self._supervisor.stopping()
                await self._drop_listener()
                logger.warning(
                    "realtime: lost the PostgreSQL LISTEN connection (%s); reconnecting in %.2fs",
                    exc or type(exc).__name__,
                    delay,
                )
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)

    async def _pump(self, connection: Any, gone: asyncio.Future[None]) -> None:
        """Handle queued notes in arrival order until the connection is gone.

        A note that needs the database (a catch-up, a large payload) stays first in the queue
        until it succeeds, so a failure there is retried after the reconnect.
        """
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        while True:
            while inbox:
                note = inbox[0]
                if note is _RECOVER:
                    await self._recover(connection)
                elif note[:1] == "r":
                    await self._fetch_spilled(note)
                else:
                    self._handle(note)
                inbox.popleft()
            if gone.done():
                raise ConnectionError("PostgreSQL closed the LISTEN connection")
            wake = self._wake = loop.create_future()
            done, _ = await asyncio.wait(
                (wake, gone), timeout=self.health_interval, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:  # quiet for a while: make sure the connection still works
                self._wake = None
                await connection.fetchval("SELECT 1", timeout=self.command_timeout)

    def _handle(self, note: str) -> None:
        """One notification to a delivery or a presence event; malformed ones are logged."""
        try:
            if note[:1] == "p":
                self._presence_note(note)
                return
            head = note.split("|", 5)
            length = int(head[3])
            rest = head[5]
            topic = rest[:length]
            if topic not in self._topics:
                return
            end = length + int(head[4])
            body = rest[end:]
            kind = note[0]
            if kind == "t":
                payload: str | bytes = body
            elif kind == "b":
                payload = base64.b64decode(body, validate=True)
            elif kind == "u":
                payload = base64.b64decode(body, validate=True).decode()
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except Exception as exc:  # whatever another client NOTIFYs on the channel
            self._malformed(note, exc)
            return
        self._deliver(topic, head[1], head[2], rest[length:end], payload)

    def _deliver(
        self, topic: str, epoch: str, pos: str | int, exclude: str, payload: str | bytes
    ) -> bool:
        """Hand a message to the hub unless it was delivered already (after a catch-up)."""
        position = None
        if epoch:
            offset = int(pos)
            last = self._last.get(topic)
            if last is not None and last[0] == epoch and offset <= last[1]:
                return False
            self._last[topic] = (epoch, offset)
            position = Position(epoch, offset)
        call_back(self._on_delivery, Delivery(topic, payload, exclude=exclude, position=position))
        return True

    def _presence_note(self, note: str) -> None:
        try:
            _, length, rest = note.split("|", 2)
            size = int(length)
            room = rest[:size]
            if room not in self._topics:
                return
            event = PresenceEvent(
                room,
                "join" if note[1] == "j" else "leave",
                entry_from_json(rest[size:]),
                note[2] == "1",
            )
        except Exception as exc:  # whatever another client NOTIFYs on the channel
            self._malformed(note, exc)
            return
        call_back(self._on_presence, event)

    def _malformed(self, note: str, exc: BaseException) -> None:
        logger.warning(
            "realtime: ignoring a malformed notification %.60r: %s: %s",
            note,
            type(exc).__name__,
            exc,
        )

    async def _fetch_spilled(self, note: str) -> None:
        """A message too large for NOTIFY: read its payload from the table, then deliver it."""
        try:
            head = note.split("|", 5)
            ident = int(head[0][1:])
            length = int(head[3])
            rest = head[5]
            topic = rest[:length]
            exclude = rest[length : length + int(head[4])]
        except (ValueError, IndexError) as exc:
            self._malformed(note, exc)
            return
        if topic not in self._topics:
            return
        row = await self._commands().fetchrow(self._sql.spilled, ident)
        if row is None:
            logger.warning(
                "realtime: a large message to %r was removed before it could be read", topic
            )
            return
        self._deliver(topic, head[1], head[2], exclude, _stored(row[0], row[1]))

    async def _recover(self, connection: Any) -> None:
        """Deliver, in order, what was published to subscribed topics while nobody listened."""
        topics = [topic for topic in self._topics if topic in self._last]
        if not topics:
            return
        epochs = [self._last[topic][0] or "" for topic in topics]
        positions = [self._last[topic][1] for topic in topics]
        rows = await connection.fetch(self._sql.gap, topics, epochs, positions)
        caught_up = 0
        for topic, epoch, pos, kind, exclude, payload in rows:
            if topic in self._topics:
                caught_up += self._deliver(topic, epoch, pos, exclude, _stored(kind, payload))
        if caught_up:
            logger.info(
                "realtime: caught up on %d message(s) published while the PostgreSQL listener "
                "was away",
                caught_up,
            )
