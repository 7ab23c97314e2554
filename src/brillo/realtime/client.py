"""A Python client of the channel protocol, for tests, scripts and services (asyncio).

Built on the ``websockets`` library (``pip install websockets``; it is in brillo's test extra)::

    async with ChannelClient("ws://127.0.0.1:8000/ws") as client:
        lobby = await client.join("chat:lobby")
        reply = await lobby.push("say", {"text": "hi"})
        event = await lobby.next_event("said", timeout=5)

Like the browser client it reconnects by itself (exponential backoff with jitter), rejoins its
rooms from the last position seen (no message twice, none lost while history reaches back),
keeps presence from the server's diffs and answers heartbeat pings. A push whose connection is
lost before the reply raises :class:`ChannelClientError` with code ``"disconnected"``; one that
gets no reply in time, ``"timeout"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from brillo.realtime._clientstate import ClientState, Event, Reply, RoomState
from brillo.realtime._protocol import SUBPROTOCOL

__all__ = ["ChannelClient", "ChannelClientError", "ClientChannel", "Event"]

logger = logging.getLogger("brillo.realtime.client")


class ChannelClientError(Exception):
    """An error reply (``code``, ``message``), or ``timeout`` / ``disconnected`` / ``closed``."""

    def __init__(self, code: str, message: str, room: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.room = room


class ClientChannel:
    """One room of a :class:`ChannelClient`."""

    def __init__(self, client: ChannelClient, room: str, payload: Any) -> None:
        self.client = client
        self.room = room
        self.payload = payload
        self.wanted = False
        self.joined = asyncio.Event()
        self.reply: Any = None
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self.resyncs = 0

    @property
    def state(self) -> RoomState | None:
        return self.client._state.rooms.get(self.room)

    @property
    def position(self) -> str | None:
        """The last position seen (``"epoch:offset"``): a rejoin resumes from it."""
        state = self.state
        return None if state is None else state.since

    @property
    def presence(self) -> dict[str, list[dict[str, Any]]]:
        """``user -> [{"connection", "meta"}]``, kept from the server's diffs."""
        state = self.state
        return {} if state is None else state.presence_list()

    async def join(
        self, payload: Any = None, *, since: str | None = None, timeout: float | None = None
    ) -> Any:
        """Join (or wait until rejoined); the join reply's payload.

        ``since`` (``"epoch:offset"``) resumes from that position, as a rejoin does by itself.
        """
        if payload is not None:
            self.payload = payload
        if since is not None:
            self.client._state.join_frame(self.room, self.payload, since)
        self.wanted = True
        if not self.joined.is_set():
            await self.client._join(self, timeout)
        return self.reply

    async def push(self, event: str, payload: Any = None, *, timeout: float | None = None) -> Any:
        """Push ``event``; the reply's payload (:class:`ChannelClientError` on an error reply)."""
        limit = self.client.timeout if timeout is None else timeout
        async with asyncio.timeout(limit):
            await self.joined.wait()
            ref, frame = self.client._state.push_frame(self.room, event, payload)
            assert ref is not None
            reply = await self.client._request(ref, frame)
        return _payload(reply)

    async def cast(self, event: str, payload: Any = None) -> bool:
        """Push ``event`` without asking for a reply; False when not connected."""
        _, frame = self.client._state.push_frame(self.room, event, payload, reply=False)
        return await self.client._send_now(frame)

    async def leave(self) -> None:
        """Leave the room (not rejoined after a reconnect)."""
        self.wanted = False
        self.joined.clear()
        self.client.channels.pop(self.room, None)
        ref, frame = self.client._state.leave_frame(self.room)
        if self.client.connected:
            with contextlib.suppress(ChannelClientError):
                async with asyncio.timeout(self.client.timeout):
                    await self.client._request(ref, frame)

    async def next_event(self, event: str | None = None, *, timeout: float | None = None) -> Event:
        """The next message of the room (of ``event`` when given, skipping others)."""
        async with asyncio.timeout(self.client.timeout if timeout is None else timeout):
            while True:
                item = await self._events.get()
                if event is None or item.event == event:
                    return item

    async def events(self) -> AsyncIterator[Event]:
        """Every message of the room, as it comes."""
        while True:
            yield await self._events.get()

    def _deliver(self, event: Event) -> None:
        self._events.put_nowait(event)


def _payload(reply: Reply) -> Any:
    if reply.error is not None:
        raise ChannelClientError(
            str(reply.error.get("code")), str(reply.error.get("message")), reply.room
        )
    return reply.payload


class ChannelClient:
    """A connection to a brillo channels endpoint that survives reconnects.

    :param url: ``ws://`` or ``wss://`` URL of the endpoint.
    :param reconnect: reconnect when the connection is lost (a 1008 close ends it for good).
    :param min_delay: seconds before the first reconnect attempt, on average.
    :param max_delay: cap of the exponential backoff.
    :param timeout: seconds a join or push waits for its reply (and the first connection).
    :param heartbeat: seconds of silence before the client pings; twice that and it reconnects.
    :param on_state: called with ``"connecting" | "open" | "reconnecting" | "closed"``.
    :param connect_options: passed to ``websockets.asyncio.client.connect`` (headers, ...).
    """

    def __init__(
        self,
        url: str,
        *,
        reconnect: bool = True,
        min_delay: float = 0.25,
        max_delay: float = 10.0,
        timeout: float = 10.0,
        heartbeat: float = 25.0,
        on_state: Callable[[str], None] | None = None,
        **connect_options: Any,
    ) -> None:
        self.url = url
        self.reconnect = reconnect
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.on_state = on_state
        self.connect_options = connect_options
        self.channels: dict[str, ClientChannel] = {}
        self.state = "idle"
        self.close_code: int | None = None
        self._state = ClientState()
        self._ws: Any = None
        self._pending: dict[str | int, tuple[asyncio.Future[Reply], bool]] = {}
        self._task: asyncio.Task[None] | None = None
        self._open = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self.state == "open"

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    async def __aenter__(self) -> ChannelClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Start the connection loop and wait (up to ``timeout``) until it is open."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="brillo-channel-client")
        async with asyncio.timeout(self.timeout):
            await self._open.wait()

    async def close(self) -> None:
        """Close for good; pending requests fail with ``closed``."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail(lambda sent: True, "closed", "the client was closed")
        self._set_state("closed")

    def channel(self, room: str, payload: Any = None) -> ClientChannel:
        """The :class:`ClientChannel` of ``room`` (created on first use)."""
        found = self.channels.get(room)
        if found is None:
            found = self.channels[room] = ClientChannel(self, room, payload)
        return found

    async def join(
        self,
        room: str,
        payload: Any = None,
        *,
        since: str | None = None,
        timeout: float | None = None,
    ) -> ClientChannel:
        """Join ``room``; returns its :class:`ClientChannel` (the reply is ``channel.reply``)."""
        channel = self.channel(room, payload)
        await channel.join(payload, since=since, timeout=timeout)
        return channel

    # -- internals ---------------------------------------------------------------------------

    async def _send_now(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None or not self.connected:
            return False
        try:
            await ws.send(json.dumps(frame))
        except Exception as exc:  # the reader notices the loss and reconnects
            logger.debug("channel client: a send failed: %r", exc)
            return False
        return True

    async def _request(self, ref: str | int, frame: dict[str, Any]) -> Reply:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        ws = self._ws
        if ws is None or not self.connected:
            raise ChannelClientError("disconnected", "not connected", frame.get("room"))
        self._pending[ref] = (future, True)
        try:
            await ws.send(json.dumps(frame))
            return await future
        except Exception as exc:
            if isinstance(exc, ChannelClientError):
                raise
            raise ChannelClientError("disconnected", str(exc), frame.get("room")) from exc
        finally:
            self._pending.pop(ref, None)

    async def _join(self, channel: ClientChannel, timeout: float | None) -> None:
        limit = self.timeout if timeout is None else timeout
        async with asyncio.timeout(limit):
            while True:
                await self._open.wait()
                try:
                    await self._send_join(channel)
                    return
                except ChannelClientError as exc:
                    if exc.code != "disconnected":
                        channel.wanted = False
                        self.channels.pop(channel.room, None)
                        raise
                    await asyncio.sleep(0)  # the loop reconnects; then try again

    async def _send_join(self, channel: ClientChannel) -> None:
        ref, frame = self._state.join_frame(channel.room, channel.payload)
        reply = await self._request(ref, frame)
        channel.reply = _payload(reply)
        channel.joined.set()

    def _fail(self, which: Callable[[bool], bool], code: str, message: str) -> None:
        for ref, (future, sent) in list(self._pending.items()):
            if which(sent) and not future.done():
                future.set_exception(ChannelClientError(code, message))
                self._pending.pop(ref, None)

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake
        from websockets.typing import Subprotocol

        attempt = 0
        while not self._closing:
            self._set_state("connecting" if attempt == 0 else "reconnecting")
            try:
                async with connect(
                    self.url,
                    subprotocols=[Subprotocol(SUBPROTOCOL)],
                    **self.connect_options,
                ) as ws:
                    self._ws = ws
                    self._set_state("open")
                    self._open.set()
                    attempt = 0
                    rejoin = asyncio.create_task(self._rejoin_all(), name="brillo-client-rejoin")
                    try:
                        await self._read(ws)
                    finally:
                        rejoin.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await rejoin
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                logger.debug("channel client: connection lost: %r", exc)
                self.close_code = getattr(getattr(exc, "rcvd", None), "code", None)
            finally:
                self._ws = None
                self._open.clear()
                self._state.disconnected()
                for channel in self.channels.values():
                    channel.joined.clear()
                self._fail(lambda sent: sent, "disconnected", "the connection was lost")
            if not self.reconnect or self.close_code == 1008:
                self._set_state("closed")
                return
            ceiling = min(self.max_delay, self.min_delay * 2**attempt)
            attempt += 1
            self._set_state("reconnecting")
            await asyncio.sleep(ceiling / 2 + random.random() * ceiling / 2)

    async def _rejoin_all(self) -> None:
        """After a reconnect: join every wanted room again, from its last position."""
        for channel in [c for c in self.channels.values() if c.wanted]:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._send_join(channel)
            except (ChannelClientError, TimeoutError) as exc:
                logger.warning("channel client: rejoining %r failed: %s", channel.room, exc)

    async def _read(self, ws: Any) -> None:
        pinged = False
        while True:
            try:
                async with asyncio.timeout(self.heartbeat):
                    text = await ws.recv()
            except TimeoutError:
                if pinged:  # silent through a ping too: the connection is dead
                    await ws.close(4000, "heartbeat timeout")
                    return
                pinged = True
                await ws.send('{"type":"ping"}')
                continue
            pinged = False
            item = self._state.receive(json.loads(text))
            if item is None:
                continue
            if isinstance(item, Reply):
                entry = self._pending.get(item.ref)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(item)
            elif isinstance(item, Event):
                channel = self.channels.get(item.room)
                if channel is not None:
                    channel._deliver(item)
            elif item.kind == "ping":
                await ws.send('{"type":"pong"}')
            elif item.kind == "resync" and item.room in self.channels:
                self.channels[item.room].resyncs += 1
