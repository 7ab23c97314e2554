"""Prototype: ``Hub`` with eager sends in ``_fanout`` (proposed for brillo.realtime.hub).

The Hub gives every connection a writer task and wakes it for every message: one task switch
per delivery, the cost that keeps its fan-out behind a plain send-to-each loop. Here, when a
member's writer is idle and its queue empty, ``_fanout`` runs that member's ``send`` coroutine
right away in the publisher's task: with uvicorn a send that does not have to wait for the
transport completes on that first step, with no task switch. A send that does have to wait (a
slow or stalled client) is handed, half-run, to the member's writer, which finishes it; later
messages queue behind it, so order, the per-connection queue bound and the isolation of stalled
clients are unchanged.

Written against brillo/realtime/hub.py as of commit da22dca (it overrides the private
``_fanout`` and ``_writer``), so it is evidence, not a drop-in module.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from brillo.realtime.hub import _EXPECTED_SEND_ERRORS, Hub, logger


class _Resume:
    """Finish, inside the writer task, a send coroutine first stepped in the publisher's task."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Any:
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


class EagerHub(Hub):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pend: dict[Any, Any] = {}

    def _fanout(self, members: Any, item: Any, exclude: str) -> None:
        half = self._half_queue
        put = self._put
        pend = self._pend
        message = item.message
        fast = delivered = 0
        for connection, pending in members.items():
            if exclude and connection.key == exclude:
                continue
            if pending is not None:
                pending.append(item)
                continue
            queue = connection._queue
            if connection._close_code is not None:
                put(connection, item)
                continue
            waiter = connection._waiter
            if waiter is not None and not queue and connection not in pend:
                # the writer is idle: send right here as far as the send goes without waiting
                coro = connection.socket.send(message)
                try:
                    first = coro.send(None)
                except StopIteration:
                    delivered += 1
                    continue
                except BaseException as exc:
                    pend[connection] = (None, exc, item)
                else:
                    pend[connection] = (coro, first, item)  # the writer finishes it
                fast += 1
                connection._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
                continue
            if len(queue) < half:
                queue.append(item)
                fast += 1
                if waiter is not None:
                    connection._waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
            else:
                put(connection, item)
        item.stats.queued += fast
        item.stats.delivered += delivered

    async def _writer(self, connection: Any) -> None:
        queue = connection._queue
        send = connection.socket.send
        new_waiter = self._new_waiter
        monotonic = time.monotonic
        pend = self._pend
        try:
            with anyio.CancelScope() as scope:
                connection._scope = scope
                while True:
                    p = pend.get(connection)
                    if p is not None:
                        coro, first, item = p
                        item.stats.queued -= 1
                        if coro is None:
                            del pend[connection]
                            raise first
                        connection._busy_since = monotonic()
                        try:
                            await _Resume(coro, first)
                        finally:
                            pend.pop(connection, None)
                        connection._busy_since = 0.0
                        item.stats.delivered += 1
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
                code, reason = 1013, "write timeout"
            else:
                code, reason = connection._close_code or 0, connection._close_reason
            if code:
                with anyio.move_on_after(min(self.write_timeout, 1.0)):
                    await connection.socket.close(code, reason or None)
        except Exception as exc:
            name = type(exc).__name__
            if not (isinstance(exc, OSError | RuntimeError) or name in _EXPECTED_SEND_ERRORS):
                logger.warning("realtime: dropping %s: %s: %s", connection.key, name, exc)
        finally:
            pend.pop(connection, None)
            connection._scope = None
            connection._waiter = None
            connection._busy_since = 0.0
            await self._detach(connection)
            connection._done.set()
