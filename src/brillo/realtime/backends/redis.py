"""The Redis backend: ``redis://host:port/db`` (or ``rediss://``).

One pub/sub connection per process carries every subscribed topic; commands use redis-py's
connection pool. Publishing appends to a capped Redis Stream and publishes in one Lua script, so
what subscribers see live and what history replays never disagree. Presence lives in a sorted set
per room scored by expiry, refreshed by each process's heartbeat; entries of a process that died
expire within ``presence_ttl`` seconds and are announced as expired leaves.

The pub/sub reader and the heartbeat are supervised: a failure other than a lost connection is
logged with its traceback and the task restarts after a pause (doubling up to ``reconnect_max``);
what ends one for good is logged at once and re-raised by :meth:`RedisBackend.close`.

redis-py's asyncio client runs on asyncio only.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from brillo.realtime.backends import _redis_scripts as scripts
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
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - exercised only without the extra
    aioredis = None  # type: ignore[assignment]
    RedisError = Exception  # type: ignore[assignment,misc]

__all__ = ["RedisBackend"]


class RedisBackend(Backend):
    """Backend shared by every process that points at the same Redis database.

    :param url: a redis-py URL, e.g. ``redis://127.0.0.1:6379/0``.
    :param history_size: messages kept per topic in a capped stream (0 keeps none).
    :param history_ttl: seconds history is kept after the last publish (``None``: no expiry).
    :param presence_ttl: seconds after which members of a silent process expire.
    :param prefix: prefix of every key and channel.
    :param reconnect_max: longest pause between two reconnect attempts, in seconds.
    :param subscribe_timeout: seconds to wait for Redis to confirm a subscription.
    :param max_connections: Redis connections this process opens at most for commands (the
        pub/sub connection included). A burst of joins (every client reconnecting after a
        deploy) waits for a free connection instead of failing.
    :param pool_timeout: seconds a command waits for a free connection before it fails with
        :class:`BackendError`.
    """

    def __init__(
        self,
        url: str,
        *,
        history_size: int = 100,
        history_ttl: float | None = None,
        presence_ttl: float = 30.0,
        prefix: str = "brillo:rt:",
        reconnect_max: float = 5.0,
        subscribe_timeout: float = 5.0,
        max_connections: int = 32,
        pool_timeout: float = 20.0,
    ) -> None:
        if aioredis is None:  # pragma: no cover
            raise RuntimeError("the Redis backend needs redis-py: pip install 'redis>=5'")
        if history_size < 0:
            raise ValueError("history_size must be >= 0")
        if history_ttl is not None and history_ttl <= 0:
            raise ValueError("history_ttl must be positive or None")
        if presence_ttl <= 0:
            raise ValueError("presence_ttl must be positive")
        if max_connections < 2:  # the pub/sub reader holds one for good
            raise ValueError("max_connections must be >= 2")
        if pool_timeout <= 0:
            raise ValueError("pool_timeout must be positive")
        self.url = url
        self.history_size = history_size
        self.history_ttl_ms = 0 if history_ttl is None else max(1, int(history_ttl * 1000))
        self.presence_ttl = presence_ttl
        self.prefix = prefix
        self.reconnect_max = reconnect_max
        self.subscribe_timeout = subscribe_timeout
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.node = secrets.token_hex(6)
        self._channel_prefix = f"{prefix}c:".encode()
        self._control = f"{prefix}ctl:{self.node}"
        self._redis: Any = None
        self._pubsub: Any = None
        self._scripts: dict[str, Any] = {}
        self._topics: set[str] = set()
        self._pending: dict[str, asyncio.Event] = {}
        self._local: dict[str, dict[str, PresenceEntry]] = {}
        self._readd = False
        self._connected = asyncio.Event()
        self._supervisor = Supervisor("Redis", reconnect_max)
        self._on_delivery: DeliveryCallback | None = None
        self._on_presence: PresenceCallback | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self, on_delivery: DeliveryCallback, on_presence: PresenceCallback) -> None:
        """Connect, check that Redis answers, and start the pub/sub reader and the heartbeat."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "the Redis realtime backend runs on asyncio only (redis-py's asyncio client); "
                "use memory:// on trio"
            ) from None
        self._on_delivery = on_delivery
        self._on_presence = on_presence
        # a blocking pool: redis-py's default pool raises "Too many connections" as soon as more
        # than 100 commands are in flight (a burst of joins), and grows without bound below that
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=self.max_connections, timeout=self.pool_timeout
        )
        self._redis = aioredis.Redis.from_pool(pool)
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            self._redis = None
            raise BackendError(f"cannot reach Redis at {self.url}: {exc}") from exc
        for name in ("PUBLISH", "HISTORY", "PRESENCE_JOIN", "PRESENCE_LEAVE"):
            self._scripts[name] = self._redis.register_script(getattr(scripts, name))
        self._scripts["PRESENCE_REFRESH"] = self._redis.register_script(scripts.PRESENCE_REFRESH)
        self._scripts["PRESENCE_LIST"] = self._redis.register_script(scripts.PRESENCE_LIST)
        self._supervisor.start("pub/sub reader", self._reader, self._drop_pubsub)
        self._supervisor.start("presence heartbeat", self._heartbeat)
        try:
            await asyncio.wait_for(self._connected.wait(), self.subscribe_timeout)
        except TimeoutError:
            await self.close()
            raise BackendError(f"Redis at {self.url} did not accept a subscription") from None

    async def close(self) -> None:
        """Stop the reader and heartbeat tasks and close every Redis connection.

        Re-raises what ended a task for good (anything but cancellation), after the cleanup.
        """
        failures = await self._supervisor.stop()
        await self._drop_pubsub()
        if self._redis is not None:
            redis_client, self._redis = self._redis, None
            with contextlib.suppress(RedisError, OSError):
                await redis_client.aclose()
        self._on_delivery = None
        self._on_presence = None
        raise_failures("Redis", failures)

    # -- keys ------------------------------------------------------------------------------------

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}c:{topic}"

    def _keys(self, topic: str) -> list[str]:
        return [f"{self.prefix}m:{topic}", f"{self.prefix}h:{topic}"]

    def _presence_keys(self, room: str) -> list[str]:
        return [f"{self.prefix}p:{room}", f"{self.prefix}pi:{room}"]

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        if self._redis is None:
            raise BackendError("the Redis backend is not connected")
        try:
            return await self._scripts[name](keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise BackendError(f"Redis operation failed: {exc}") from exc

    # -- messages --------------------------------------------------------------------------------

    async def publish(self, topic: str, envelope: Envelope, *, history: bool) -> Position | None:
        """Publish through Redis; with ``history`` append to the topic's stream atomically."""
        payload = envelope.payload
        kind = b"t" if isinstance(payload, str) else b"b"  # the wire's frame code
        if not history:
            data = b"m|||" + kind + b"|" + envelope.exclude.encode() + b"|"
            data += payload.encode() if isinstance(payload, str) else payload
            if self._redis is None:
                raise BackendError("the Redis backend is not connected")
            try:
                await self._redis.publish(self._channel(topic), data)
            except (RedisError, OSError) as exc:
                raise BackendError(f"Redis publish failed: {exc}") from exc
            return None
        epoch, offset = await self._run(
            "PUBLISH",
            self._keys(topic),
            [
                self._channel(topic),
                secrets.token_hex(6),
                kind,
                envelope.exclude,
                payload,
                self.history_size,
                self.history_ttl_ms,
            ],
        )
        return Position(epoch.decode(), int(offset))

    async def subscribe(self, topic: str) -> None:
        """Subscribe the process's pub/sub connection to ``topic`` and wait for Redis to confirm."""
        if topic in self._topics:
            return
        self._topics.add(topic)
        channel = self._channel(topic)
        waiter = self._pending[channel] = asyncio.Event()
        pubsub = self._pubsub
        if pubsub is None:  # reconnecting: the reader subscribes to every topic when it is back
            return
        try:
            await pubsub.subscribe(channel)
        except (RedisError, OSError):
            return  # the reader notices the broken connection and resubscribes
        try:
            await asyncio.wait_for(waiter.wait(), self.subscribe_timeout)
        except TimeoutError:
            logger.warning("realtime: Redis did not confirm the subscription to %r", topic)

    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        if topic not in self._topics:
            return
        self._topics.discard(topic)
        channel = self._channel(topic)
        self._pending.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe(channel)

    async def history(self, topic: str, after: int = 0) -> HistoryResult:
        """Read the topic's meta and stream in one script; keep entries after ``after``."""
        epoch_raw, offset_raw, entries = await self._run(
            "HISTORY", self._keys(topic), [secrets.token_hex(6), self.history_ttl_ms]
        )
        epoch = epoch_raw.decode()
        current = int(offset_raw)
        messages: list[tuple[Position, str | bytes]] = []
        first = current + 1
        for index, (_, fields) in enumerate(entries):
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            offset = int(values[b"o"])
            if index == 0:
                first = offset
            if offset <= after:
                continue
            data: bytes = values[b"d"]
            text = values[b"k"] == b"t"
            messages.append((Position(epoch, offset), data.decode() if text else data))
        return HistoryResult(Position(epoch, current), first, messages)

    # -- presence --------------------------------------------------------------------------------

    async def presence_join(self, room: str, entry: PresenceEntry) -> None:
        """Add ``entry`` to the room's sorted set and announce the join."""
        info = entry_to_json(entry)  # a meta that JSON refuses must not reach the heartbeat
        self._local.setdefault(room, {})[entry.connection] = entry
        ttl_ms = max(1, int(self.presence_ttl * 1000))
        await self._run(
            "PRESENCE_JOIN",
            self._presence_keys(room),
            [entry.connection, info, ttl_ms, self._channel(room)],
        )

    async def presence_leave(self, room: str, entry: PresenceEntry) -> None:
        """Remove ``entry`` and announce the leave when it was still present."""
        local = self._local.get(room)
        if local is not None:
            local.pop(entry.connection, None)
            if not local:
                del self._local[room]
        await self._run(
            "PRESENCE_LEAVE",
            self._presence_keys(room),
            [entry.connection, entry_to_json(entry), self._channel(room)],
        )

    async def presence(self, room: str) -> list[PresenceEntry]:
        """Live entries of every process, expired ones left out."""
        raw = await self._run("PRESENCE_LIST", self._presence_keys(room), [])
        return [entry_from_json(item) for item in raw]

    async def _heartbeat(self) -> None:
        """Every ``presence_ttl / 3`` seconds refresh this process's presence entries.

        A round also reaps the expired entries of the rooms this process has members in.
        """
        interval = self.presence_ttl / 3
        ttl_ms = max(1, int(self.presence_ttl * 1000))
        while True:
            await asyncio.sleep(interval)
            # Take the re-add request before the round: the reader may ask again while this
            # round's scripts run (a reconnect in between), and that request must survive it.
            readd, self._readd = self._readd, False
            mode = "all" if readd else "xx"
            try:
                for room, entries in list(self._local.items()):
                    args: list[Any] = [ttl_ms, self._channel(room), mode]
                    for entry in list(entries.values()):
                        args += [entry.connection, entry_to_json(entry)]
                    await self._scripts["PRESENCE_REFRESH"](
                        keys=self._presence_keys(room), args=args
                    )
            except BaseException as exc:
                self._readd = self._readd or readd  # not done: try again next round
                if not isinstance(exc, RedisError | OSError):
                    raise
                self._supervisor.stopping()
                logger.debug("realtime: presence heartbeat failed: %s", exc)

    # -- pub/sub reader --------------------------------------------------------------------------

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _reader(self) -> None:
        """Subscribe to every topic, then dispatch messages; reconnect when Redis is lost."""
        delay = FIRST_DELAY
        lost = False
        while True:
            try:
                if self._pubsub is None:
                    pubsub = self._redis.pubsub()
                    channels = [self._control, *(self._channel(t) for t in self._topics)]
                    try:
                        await pubsub.subscribe(*channels)
                    except BaseException:
                        with contextlib.suppress(RedisError, OSError):
                            await pubsub.aclose()
                        raise
                    self._pubsub = pubsub
                    if lost:
                        logger.warning("realtime: reconnected to Redis at %s", self.url)
                        self._readd = True
                        lost = False
                    delay = FIRST_DELAY
                message = await self._pubsub.get_message(timeout=None)
                if message is not None:
                    self._dispatch(message)
            except (RedisError, OSError) as exc:
                self._supervisor.stopping()
                await self._drop_pubsub()
                logger.warning(
                    "realtime: lost the Redis pub/sub connection (%s); reconnecting in %.2fs",
                    exc or type(exc).__name__,
                    delay,
                )
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)

    def _dispatch(self, message: dict[str, Any]) -> None:
        """Hand one pub/sub message to the hub; a malformed one is logged and skipped."""
        kind = message["type"]
        channel: bytes = message["channel"]
        if kind == b"subscribe" or kind == "subscribe":
            name = channel.decode()
            if name == self._control:
                self._connected.set()
            waiter = self._pending.pop(name, None)
            if waiter is not None:
                waiter.set()
            return
        if kind not in ("message", b"message") or not channel.startswith(self._channel_prefix):
            return
        topic = channel[len(self._channel_prefix) :].decode()
        data: bytes = message["data"]
        item: Delivery | PresenceEvent
        try:
            if data[:2] == b"m|":
                _, epoch, offset, wire_kind, exclude, payload = data.split(b"|", 5)
                item = Delivery(
                    topic,
                    payload.decode() if wire_kind == b"t" else payload,
                    exclude=exclude.decode(),
                    position=Position(epoch.decode(), int(offset)) if epoch else None,
                )
            elif data[:2] == b"p|":
                _, event, expired, raw = data.split(b"|", 3)
                item = PresenceEvent(
                    topic,
                    "join" if event == b"join" else "leave",
                    entry_from_json(raw),
                    expired == b"1",
                )
            else:
                return
        except Exception as exc:  # whatever another client put on the channel
            logger.warning(
                "realtime: ignoring a malformed message on %r: %s: %s",
                topic,
                type(exc).__name__,
                exc,
            )
            return
        if isinstance(item, Delivery):
            call_back(self._on_delivery, item)
        else:
            call_back(self._on_presence, item)
