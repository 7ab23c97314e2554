"""The hub's application-level heartbeat: server pings, client pongs, dead connections found.

Servers ping at the protocol level only when configured to (and some never do), and a client
whose network path vanished without a FIN looks connected for as long as nothing is sent. With a
heartbeat the hub sends every connection that is in a room ``{"type":"ping"}`` (a JSON text
frame) every ``interval`` seconds; the client answers ``{"type":"pong"}``, and the application
(or a protocol layer) reports anything it receives from a client with ``Hub.touch``. A
connection not touched for ``timeout`` seconds is closed with 1001 ("heartbeat timeout"): its
queue is dropped, it leaves its rooms and its presence is removed (other processes see it go,
or see it expire through the backend's presence expiry if this process dies too).

:class:`Heartbeat` owns that state: when each connection was last heard from, the ping counters
and the timeouts. It knows outboxes, not rooms: the hub hands it those of its connections in a
room.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable

import anyio

from brillo.realtime._outbox import Item, Outbox
from brillo.realtime._stats import Counters

__all__ = ["PING", "Heartbeat"]

logger = logging.getLogger("brillo.realtime")

#: The ping frame's text; clients answer with ``{"type":"pong"}``.
PING = '{"type":"ping"}'
#: The close reason of a connection that missed its heartbeat.
TIMEOUT_REASON = "heartbeat timeout"

_monotonic = time.monotonic


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (
        isinstance(value, int | float) and math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")


class Heartbeat:
    """Pings and liveness for one hub (see the module docstring).

    ``interval`` is the time between pings (``None``: send none, only check liveness);
    ``timeout`` how long a connection may go without a touch (default: twice the interval).
    """

    __slots__ = ("_counters", "_item", "_seen", "interval", "step", "timeout", "timeouts")

    def __init__(self, interval: float | None, timeout: float | None) -> None:
        _positive("heartbeat_interval", interval)
        _positive("heartbeat_timeout", timeout)
        if timeout is None:
            if interval is None:
                raise ValueError("a Heartbeat needs heartbeat_interval or heartbeat_timeout")
            timeout = 2.0 * interval
        self.interval = interval
        self.timeout: float = timeout
        #: Seconds between two checks: a dead connection is closed at most this late.
        self.step = min(interval or timeout, timeout) / 4
        #: Connections closed for missing their heartbeat.
        self.timeouts = 0
        #: When each connection was last heard from (only those in a room, after a check).
        self._seen: dict[Outbox, float] = {}
        self._counters = Counters()
        self._item = Item({"type": "websocket.send", "text": PING}, self._counters, None)

    @property
    def pings(self) -> int:
        """Pings written to connections."""
        return self._counters.delivered

    def touch(self, outbox: Outbox) -> None:
        """The client behind ``outbox`` was heard from: it is alive now."""
        self._seen[outbox] = _monotonic()

    def snapshot(self) -> dict[str, int]:
        """``{"pings", "timeouts"}`` for the hub's stats."""
        return {"pings": self._counters.delivered, "timeouts": self.timeouts}

    async def run(self, outboxes: Callable[[], Iterable[Outbox]]) -> None:
        """Check and ping for ever (a task of the hub); ``outboxes`` lists those in a room.

        A failing round is logged with its traceback and the next one runs as usual.
        """
        next_ping = _monotonic() + (self.interval or math.inf)
        while True:
            await anyio.sleep(self.step)
            now = _monotonic()
            ping = now >= next_ping
            if ping:
                next_ping = now + (self.interval or math.inf)
            try:
                self.check(outboxes(), now, ping)
            except Exception as exc:  # never let one bad round end the heartbeat
                logger.error("realtime: heartbeat round failed: %s", exc, exc_info=exc)

    def check(self, outboxes: Iterable[Outbox], now: float, ping: bool) -> None:
        """One round: close those silent for ``timeout``, ping the others when ``ping``.

        A connection seen for the first time counts as heard from ``now``.
        """
        seen = self._seen
        kept: dict[Outbox, float] = {}
        limit = now - self.timeout
        item = self._item
        for outbox in outboxes:
            if outbox.closing:
                continue
            last = seen.get(outbox, now)
            if last <= limit:
                self.timeouts += 1
                logger.info(
                    "realtime: closing connection %s: nothing heard from it for %.1fs "
                    "(heartbeat timeout %ss)",
                    outbox.key,
                    now - last,
                    self.timeout,
                )
                outbox.close(1001, TIMEOUT_REASON, flush=False)
                continue
            kept[outbox] = last
            if ping:
                outbox.offer(item)
        self._seen = kept
