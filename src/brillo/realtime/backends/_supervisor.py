"""Supervision of a backend's background tasks (a reader, a heartbeat): never dead silently.

A failure other than cancellation is logged with its traceback and the task body starts again
after a pause that doubles from 50 ms up to ``reconnect_max`` (back to 50 ms after a long healthy
run). A BaseException that is not an Exception ends the task for good: it is logged at once and
:meth:`Supervisor.stop` re-raises it after cancelling the others. asyncio only (the Redis and
PostgreSQL clients are).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from brillo.realtime.backends.base import logger

__all__ = ["FIRST_DELAY", "Supervisor"]

#: First pause before a reconnect or a restart, in seconds (doubles up to ``reconnect_max``).
FIRST_DELAY = 0.05


class Supervisor:
    """The background tasks of one backend (``label`` names it in log messages)."""

    __slots__ = ("closing", "label", "reconnect_max", "tasks")

    def __init__(self, label: str, reconnect_max: float) -> None:
        self.label = label
        self.reconnect_max = reconnect_max
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []

    def start(
        self,
        name: str,
        body: Callable[[], Awaitable[None]],
        reset: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run ``body`` in a task until :meth:`stop`; ``reset`` runs before each restart."""
        self.closing = False

        async def supervise() -> None:
            loop = asyncio.get_running_loop()
            delay = FIRST_DELAY
            while True:
                started = loop.time()
                try:
                    await body()
                except Exception:
                    self.stopping()
                    if loop.time() - started > 10 * self.reconnect_max:
                        delay = FIRST_DELAY
                    logger.exception(
                        "realtime: the %s %s failed; restarting it in %.2fs",
                        self.label,
                        name,
                        delay,
                    )
                if reset is not None:
                    await reset()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)

        def ended(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and (exc := task.exception()) is not None:
                logger.error("realtime: the %s %s stopped for good", self.label, name, exc_info=exc)

        slug = self.label.lower().replace(" ", "-")
        task = asyncio.create_task(supervise(), name=f"brillo-realtime-{slug}-{name}")
        task.add_done_callback(ended)
        self.tasks.append(task)

    def stopping(self) -> None:
        """Raise CancelledError when the calling task is being stopped.

        A cancellation that lands inside a database client can come out as a timeout or a
        connection error; handlers that retry call this first so the task still ends.
        """
        task = asyncio.current_task()
        if self.closing or (task is not None and task.cancelling()):
            raise asyncio.CancelledError

    async def stop(self) -> list[BaseException]:
        """Cancel every task and wait for them; returns what ended one for good."""
        self.closing = True
        tasks, self.tasks = self.tasks, []
        pending = set(tasks)
        while pending:  # again if a cancellation was lost in the client (see stopping)
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        return [exc for t in tasks if not t.cancelled() and (exc := t.exception()) is not None]


def raise_failures(label: str, failures: list[BaseException]) -> None:
    """Re-raise what :meth:`Supervisor.stop` returned: one error as is, several as a group."""
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise BaseExceptionGroup(f"the {label} backend's tasks failed", failures)
