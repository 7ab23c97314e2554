"""Bridges between async code and blocking code: thread offloading and iterator adaptation."""

from __future__ import annotations

import functools
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread

from brillo.exceptions import BrilloDeprecationWarning

__all__ = ["iterate_in_threadpool", "run_in_threadpool", "run_until_first_complete"]

P = ParamSpec("P")
T = TypeVar("T")


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call the blocking ``func(*args, **kwargs)`` in anyio's worker thread pool and await it."""
    if kwargs:
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
    return await anyio.to_thread.run_sync(func, *args)


class _Exhausted(Exception):
    """Stands in for StopIteration, which cannot cross a thread/future boundary intact."""


def _advance(iterator: Iterator[T]) -> T:
    try:
        return next(iterator)
    except StopIteration:
        raise _Exhausted from None


async def iterate_in_threadpool(iterator: Iterable[T]) -> AsyncIterator[T]:
    """Turn a blocking (sync) iterable into an async iterator.

    Each ``next()`` runs in the thread pool, so a slow generator never blocks the event loop.
    """
    it = iter(iterator)
    run_sync = anyio.to_thread.run_sync
    while True:
        try:
            item = await run_sync(_advance, it)
        except _Exhausted:
            return
        yield item


async def run_until_first_complete(
    *args: tuple[Callable[..., Awaitable[Any]], dict[str, Any]],
) -> None:
    """Run each ``(func, kwargs)`` pair concurrently; cancel the rest when the first one returns.

    Deprecated (as in Starlette): use an ``anyio`` task group and cancel its scope instead.
    """
    warnings.warn(
        "run_until_first_complete is deprecated and will be removed in a future version; "
        "use an anyio task group instead.",
        BrilloDeprecationWarning,
        stacklevel=2,
    )

    async with anyio.create_task_group() as tg:

        async def _run_then_cancel(
            func: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]
        ) -> None:
            await func(**kwargs)
            tg.cancel_scope.cancel()

        for func, kwargs in args:
            tg.start_soon(_run_then_cancel, func, kwargs)
