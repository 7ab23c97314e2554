"""Each connection's way out: a bounded queue, one writer task, eager sends, the write timeout.

:class:`Outbox` owns that state for one connection; :class:`Outboxes` holds what one hub's
outboxes share and does what spans many of them: :meth:`Outboxes.fan_out`, the hot path, and
the watchdog. Nothing here knows rooms, users or backends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from typing import Any, Protocol

import anyio

from brillo.realtime._messages import Message
from brillo.realtime._rules import QueueRule, Verdict
from brillo.realtime._sockets import SocketLike, client_gone, server_send
from brillo.realtime._stats import Counters

__all__ = ["Item", "Outbox", "Outboxes"]

logger = logging.getLogger("brillo.realtime")


class Item:
    """One queued delivery; shared by every local recipient of one publish."""

    __slots__ = ("counters", "message", "offset")

    def __init__(self, message: Message, counters: Counters, offset: int | None) -> None:
        self.message = message
        self.counters = counters
        self.offset = offset


class _Waiter(Protocol):
    """What a writer sleeps on: an ``asyncio.Future`` or, on trio, a :class:`_TrioWaiter`."""

    def done(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...

    def __await__(self) -> Generator[Any, Any, Any]: ...


class _TrioWaiter:
    """A one-shot trio event with the two methods of a future the writers use."""

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


class _Resume:
    """Awaitable that drives a coroutine first stepped elsewhere, from the value it yielded.

    Fan-out runs a member's send up to its first suspension (``first``, an asyncio future);
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


class Outbox:
    """One connection's outbound side: its queue, its writer's state, how it closes.

    Built without an event loop (so its rules can be tested on their own); :meth:`run` is the
    writer, run as a task of the hub. ``dropped`` counts the messages its queue lost.
    """

    __slots__ = (
        "_busy_since",
        "_close_code",
        "_close_reason",
        "_done",
        "_eager",
        "_eager_send",
        "_finished",
        "_inflight",
        "_queue",
        "_raw",
        "_retired",
        "_rule",
        "_scope",
        "_send",
        "_stuck",
        "_waiter",
        "dropped",
        "key",
        "socket",
    )

    def __init__(self, key: str, socket: SocketLike, rule: QueueRule, eager: bool) -> None:
        self.key = key
        self.socket = socket
        self.dropped = 0
        self._send = socket.send
        self._rule = rule
        #: The send fan-out may start in the publishing task (see SocketLike): the server's own
        #: send under brillo's WebSocket (``_raw``), else the socket's.
        raw = server_send(socket) if eager else None
        self._raw = raw is not None
        self._eager_send = raw or (socket.send if eager else None)
        #: ``_eager_send`` while an eager send may start now (the writer sleeps on its waiter,
        #: nothing queued or in flight, not closing), else None: fan-out reads only this.
        self._eager: Callable[[Any], Awaitable[None]] | None = None
        self._queue: deque[Item] = deque()
        self._waiter: _Waiter | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        self._retired = False
        self._scope: anyio.CancelScope | None = None
        self._busy_since = 0.0
        self._stuck = False
        #: A send fan-out started that had to wait: (coroutine, what it yielded or the error
        #: it raised, item); the writer finishes it before anything else.
        self._inflight: tuple[Any, Any, Item] | None = None
        self._finished = False
        self._done: anyio.Event | None = None

    @property
    def queued(self) -> int:
        """Messages waiting in the queue."""
        return len(self._queue)

    @property
    def closing(self) -> bool:
        """True once the outbox was told to close (it takes nothing more)."""
        return self._close_code is not None

    # -- taking messages ---------------------------------------------------------------------

    def offer(self, item: Item) -> bool:
        """Queue ``item`` under the queue rule; True when an idle writer lags behind.

        A full queue drops its oldest message or closes the connection with 1013, as the rule
        says. Nothing is taken once the outbox is closing.
        """
        if self._close_code is not None or self._retired:
            return False
        queue = self._queue
        length = len(queue)
        rule = self._rule
        lagging = rule.lagging(length, self._busy_since != 0.0)
        verdict = rule.verdict(length)
        if verdict is Verdict.DROP_OLDEST:
            old = queue.popleft()
            old.counters.queued -= 1
            old.counters.dropped += 1
            self.dropped += 1
        elif verdict is Verdict.CLOSE:
            item.counters.dropped += 1
            self.dropped += 1
            self.close(1013, "slow consumer: outbound queue full")
            return lagging
        queue.append(item)
        item.counters.queued += 1
        if self._waiter is not None:
            self._wake()
        return lagging

    def _wake(self) -> None:
        """Wake the writer sleeping on its waiter (no eager send may overtake what woke it)."""
        self._eager = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- ending ------------------------------------------------------------------------------

    def _discard(self, as_dropped: bool) -> None:
        """Empty the queue, counting its messages as dropped or just as no longer queued."""
        for item in self._queue:
            item.counters.queued -= 1
            if as_dropped:
                item.counters.dropped += 1
        if as_dropped:
            self.dropped += len(self._queue)
        self._queue.clear()

    def close(
        self, code: int, reason: str, last: Item | None = None, *, flush: bool | None = None
    ) -> None:
        """Close the connection with ``code`` once the writer is done (first call wins).

        1001 (shutdown) lets the queue flush first, then ``last`` (a farewell, queued whatever
        the bound); any other code discards the queue and abandons a send in progress (a slow
        client is not waited for). ``flush`` overrides that choice (a heartbeat timeout closes
        with 1001 without waiting for a client that is gone).
        """
        if self._close_code is not None:
            return
        self._close_code = code
        self._close_reason = reason
        if last is not None and not self._retired:
            self._queue.append(last)
            last.counters.queued += 1
        if not (code == 1001 if flush is None else flush):
            self._discard(as_dropped=True)
            if self._scope is not None:
                self._scope.cancel()
        self._wake()

    def retire(self) -> int:
        """The connection left the hub: drop what is queued and let the writer end quietly.

        A send in progress is abandoned unless the outbox is closing (the close then follows).
        Returns the count of messages this outbox dropped the first time, then 0 (the hub
        keeps it in its totals once).
        """
        if self._retired:
            return 0
        self._retired = True
        self._discard(as_dropped=False)
        if self._scope is not None and self._close_code is None:
            self._scope.cancel()
        self._wake()
        return self.dropped

    def expire(self, limit: float) -> None:
        """Abandon the current send if it started at or before ``limit`` (the write timeout)."""
        since = self._busy_since
        if since and since <= limit and not self._stuck:
            self._stuck = True
            if self._scope is not None:
                self._scope.cancel()

    def hand_over(self, coro: Any, first: Any, item: Item) -> None:
        """Give the writer a send fan-out started: ``coro`` yielded ``first`` (or, with ``coro``
        None, raised ``first``); the writer finishes it before anything else."""
        self._inflight = (coro, first, item)
        item.counters.queued += 1
        self._wake()

    async def wait_finished(self) -> None:
        """Wait until the writer has ended."""
        if not self._finished:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()

    # -- the writer --------------------------------------------------------------------------

    async def run(
        self,
        new_waiter: Callable[[], _Waiter],
        write_timeout: float,
        after: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """The writer: send the queue in order until closed or retired; then close the socket.

        Never raises an error of the socket: a client that is gone is logged at DEBUG, any other
        failure as a WARNING with its traceback. ``after`` runs when the writer ends, before
        :meth:`wait_finished` returns.
        """
        queue = self._queue
        send = self._send
        # the server's own send under brillo's WebSocket (see _finish_inflight), else the socket's
        direct = self._eager_send if self._raw and self._eager_send is not None else send
        monotonic = time.monotonic
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                while True:
                    inflight = self._inflight
                    if inflight is not None:
                        await self._finish_inflight(inflight)
                        continue
                    if not queue:
                        if self._close_code is not None:
                            break
                        if self._retired:
                            return
                        waiter = self._waiter = new_waiter()
                        self._eager = self._eager_send  # (cleared by whatever wakes it)
                        await waiter
                        continue
                    item = queue.popleft()
                    counters = item.counters
                    counters.queued -= 1
                    self._busy_since = monotonic()
                    try:
                        await direct(item.message)
                    except Exception:
                        if direct is send:
                            raise
                        await send(item.message)  # the socket's own error and state
                    self._busy_since = 0.0
                    counters.delivered += 1
            self._scope = None
            await self._close_socket(write_timeout)
        except Exception as exc:
            if client_gone(exc):
                logger.debug("realtime: connection %s is gone (%s)", self.key, type(exc).__name__)
            else:
                logger.warning(
                    "realtime: dropping connection %s after a send failed: %s: %s",
                    self.key,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
        finally:
            inflight, self._inflight = self._inflight, None
            if inflight is not None and inflight[0] is not None:
                inflight[0].close()
            self._scope = None
            self._waiter = None
            self._eager = None
            self._busy_since = 0.0
            try:
                if after is not None:
                    await after()
            finally:
                self._finished = True
                if self._done is not None:
                    self._done.set()

    async def _finish_inflight(self, inflight: tuple[Any, Any, Item]) -> None:
        """Finish, in the writer's task, a send fan-out started (see :meth:`Outboxes.fan_out`).

        A send of the server's own that failed is redone through the socket's ``send``, the
        general path, so the socket ends in the state and with the error its own send gives.
        """
        coro, first, item = inflight
        item.counters.queued -= 1
        self._busy_since = time.monotonic()
        try:
            try:
                if coro is None:  # the send failed on its first step
                    raise first
                await _Resume(coro, first)
            except Exception:
                if not self._raw:
                    raise
                await self._send(item.message)
        finally:
            self._inflight = None
            self._busy_since = 0.0
        item.counters.delivered += 1

    async def _close_socket(self, write_timeout: float) -> None:
        if self._stuck:
            logger.info(
                "realtime: dropping connection %s: a send took longer than %ss",
                self.key,
                write_timeout,
            )
            code, reason = 1013, "write timeout"
        else:
            code, reason = self._close_code or 0, self._close_reason
        if code:
            with anyio.move_on_after(min(write_timeout, 1.0)):
                await self.socket.close(code, reason or None)


def _waiter_factory() -> Callable[[], _Waiter]:
    """The cheapest one-shot waiter of the running event loop (called inside the loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: anyio's other backend is trio
        return _TrioWaiter
    return loop.create_future


class _Pass:
    """The state of one fan-out pass, shared between :meth:`Outboxes.fan_out` and the pass."""

    __slots__ = ("current", "delivered", "detached", "lagging", "queued")

    def __init__(self) -> None:
        self.current: Outbox | None = None
        self.detached = False
        self.lagging = False
        self.delivered = 0
        self.queued = 0


class Outboxes:
    """What one hub's outboxes share (queue rule, write timeout, the loop's waiters), and fan-out.

    ``eager_sends`` allows eager sends at all; they also need asyncio (trio's suspension points
    are bound to the task that reached them) and a socket that is safe for them.
    """

    __slots__ = ("eager_sends", "new_waiter", "rule", "write_timeout")

    def __init__(self, rule: QueueRule, write_timeout: float, eager_sends: bool) -> None:
        self.rule = rule
        self.write_timeout = write_timeout
        self.eager_sends = eager_sends
        self.new_waiter: Callable[[], _Waiter] = _TrioWaiter

    def start(self) -> None:
        """Bind to the running event loop (called when the hub starts)."""
        self.new_waiter = _waiter_factory()

    def new(self, key: str, socket: SocketLike, eager: bool) -> Outbox:
        """An outbox for ``socket``; ``eager`` when its sends may start in the publisher."""
        asyncio_loop = self.new_waiter is not _TrioWaiter
        return Outbox(key, socket, self.rule, eager and self.eager_sends and asyncio_loop)

    async def run(self, outbox: Outbox, after: Callable[[], Awaitable[None]]) -> None:
        """Run ``outbox``'s writer (in a task of the hub), then ``after``."""
        await outbox.run(self.new_waiter, self.write_timeout, after)

    def fan_out(
        self,
        outboxes: Iterable[Outbox],
        recovering: dict[Outbox, list[Item]],
        item: Item,
        exclude: str,
    ) -> bool:
        """Give ``item`` to every outbox: the hot path, no task switch and no per-member
        allocation beyond the send itself. Returns True when an idle writer lags behind.

        ``exclude`` is the key of an outbox that is skipped; outboxes in ``recovering`` buffer
        the item instead (their history is being read). An outbox whose writer sleeps with
        nothing queued takes the send right here when its socket is safe for it (see
        :class:`SocketLike`): the members' sends are awaited one after the other inside one
        pass (:meth:`_pass`), stepped from here, so over healthy sockets each completes
        without a task switch, like a plain loop. A send that has to wait suspends the pass:
        that pass is handed, stopped at that member, to the member's writer, which finishes
        the send and ends the pass there; a fresh pass goes on with the next member. Other
        outboxes queue the item (:meth:`Outbox.offer` from the lag mark on).
        """
        members = iter(outboxes)
        counters = item.counters
        lagging = False
        while True:
            fan = _Pass()
            driver = self._pass(fan, members, recovering, item, exclude)
            try:
                first = driver.send(None)
            except StopIteration:
                waiting = None
            else:
                fan.detached = True
                waiting = fan.current
            if fan.queued:
                counters.queued += fan.queued
            if fan.delivered:
                counters.delivered += fan.delivered
            lagging = lagging or fan.lagging
            if waiting is None:
                return lagging
            waiting.hand_over(driver, first, item)

    async def _pass(
        self,
        fan: _Pass,
        members: Iterator[Outbox],
        recovering: dict[Outbox, list[Item]],
        item: Item,
        exclude: str,
    ) -> None:
        """One fan-out pass over ``members`` (see :meth:`fan_out`), counting into ``fan``.

        Once ``fan.detached``, the pass belongs to the writer of ``fan.current``: it finishes
        that member's send (raising its error to that writer) and stops.
        """
        message = item.message
        lag_mark = self.rule.lag_mark
        queued = 0
        for outbox in members:
            send = outbox._eager
            if send is None or exclude or recovering:
                if exclude and outbox.key == exclude:
                    continue
                if recovering and outbox in recovering:
                    recovering[outbox].append(item)
                    continue
                if send is None:
                    queue = outbox._queue
                    if len(queue) >= lag_mark or outbox._close_code is not None:
                        if outbox.offer(item):
                            fan.lagging = True
                        continue
                    queue.append(item)
                    queued += 1
                    if outbox._waiter is not None:  # an idle writer: wake it
                        outbox._wake()
                    continue
            if queued:  # counted before a send that may end this pass here
                fan.queued += queued
                queued = 0
            fan.current = outbox
            try:
                await send(message)
            except Exception as exc:
                if fan.detached:
                    raise
                outbox.hand_over(None, exc, item)
                continue
            if fan.detached:
                return
            fan.delivered += 1
        fan.queued += queued

    async def watchdog(self, outboxes: Callable[[], Iterable[Outbox]]) -> None:
        """Abandon the sends that take longer than the write timeout, for ever.

        One scan every quarter timeout: the per-send cost is two stores.
        """
        timeout = self.write_timeout
        while True:
            await anyio.sleep(timeout / 4)
            limit = time.monotonic() - timeout
            for outbox in list(outboxes()):
                outbox.expire(limit)
