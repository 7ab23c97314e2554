"""Closing every connection gracefully, in batches, within a deadline (drain and shutdown).

Each connection's outbox is closed with 1001: what is queued is sent first, then the farewell
(the hub's ``shutdown_message``), then the close frame. Connections are closed a batch at a time,
each batch given its share of the time left, so that a large process does not write every
farewell and close at once and its clients do not all reconnect elsewhere in the same instant;
connections that joined meanwhile are closed in a further round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import anyio

from brillo.realtime._outbox import Item, Outbox

__all__ = ["BATCH_SIZE", "close_in_batches"]

#: Connections closed per batch.
BATCH_SIZE = 200
#: The close reason clients see.
REASON = "server shutting down"


async def close_in_batches(
    outboxes: Callable[[], Iterable[Outbox]],
    farewell: Callable[[], Item | None],
    timeout: float,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Close what ``outboxes()`` lists (1001, flushed, ``farewell()`` last) within ``timeout``.

    Returns how many were closed. An outbox already closing is left to its own close.
    """
    deadline = anyio.current_time() + timeout
    closed: list[Outbox] = []
    seen: set[Outbox] = set()
    while True:
        pending = [o for o in outboxes() if o not in seen and not o.closing]
        if not pending:
            break
        batches = math.ceil(len(pending) / batch_size)
        for number, start in enumerate(range(0, len(pending), batch_size)):
            batch = pending[start : start + batch_size]
            for outbox in batch:
                seen.add(outbox)
                outbox.close(1001, REASON, farewell())
            closed += batch
            share = (deadline - anyio.current_time()) / (batches - number)
            with anyio.move_on_after(max(share, 0.0)):
                for outbox in batch:
                    await outbox.wait_finished()
        if anyio.current_time() >= deadline:
            break
    with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
        for outbox in closed:
            await outbox.wait_finished()
    return len(closed)
