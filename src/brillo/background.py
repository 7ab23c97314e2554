"""Work to run after a response has been sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

from brillo._utils import is_async_callable
from brillo.concurrency import run_in_threadpool

__all__ = ["BackgroundTask", "BackgroundTasks"]

P = ParamSpec("P")


class BackgroundTask:
    """A deferred call to ``func(*args, **kwargs)``.

    Awaiting the task (``await task()``) runs it; a plain (sync) ``func`` runs in the thread pool
    so it cannot block the event loop.
    """

    __slots__ = ("args", "func", "is_async", "kwargs")

    def __init__(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = is_async_callable(func)

    async def __call__(self) -> None:
        """Run the task to completion."""
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            await run_in_threadpool(self.func, *self.args, **self.kwargs)


class BackgroundTasks(BackgroundTask):
    """An ordered group of background tasks, run one after another when awaited.

    If one task raises, the remaining tasks do not run and the error propagates.
    """

    __slots__ = ("tasks",)

    def __init__(self, tasks: Sequence[BackgroundTask] | None = None) -> None:
        self.tasks: list[BackgroundTask] = list(tasks) if tasks else []

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        """Append ``func(*args, **kwargs)`` to the group."""
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        """Run every task in the order added."""
        for task in self.tasks:
            await task()
