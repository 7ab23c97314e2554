"""Tests for brillo.concurrency: thread offloading and sync-to-async iteration."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest

from brillo.concurrency import iterate_in_threadpool, run_in_threadpool, run_until_first_complete
from brillo.exceptions import BrilloDeprecationWarning


@pytest.mark.anyio
async def test_run_in_threadpool_runs_off_the_event_loop_thread() -> None:
    def work(a: int, b: int, *, scale: int = 1) -> tuple[int, str]:
        return (a + b) * scale, threading.current_thread().name

    loop_thread = threading.current_thread().name
    result, thread_name = await run_in_threadpool(work, 2, 3, scale=10)
    assert result == 50
    assert thread_name != loop_thread


@pytest.mark.anyio
async def test_run_in_threadpool_positional_only_and_exceptions() -> None:
    assert await run_in_threadpool(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        await run_in_threadpool(divmod, 1, 0)


@pytest.mark.anyio
async def test_iterate_in_threadpool_yields_every_item_then_stops() -> None:
    threads: set[str] = set()

    def gen() -> Iterator[int]:
        for i in range(5):
            threads.add(threading.current_thread().name)
            yield i

    items = [item async for item in iterate_in_threadpool(gen())]
    assert items == [0, 1, 2, 3, 4]
    assert threading.current_thread().name not in threads


@pytest.mark.anyio
async def test_iterate_in_threadpool_accepts_plain_iterables_and_empty() -> None:
    assert [x async for x in iterate_in_threadpool(["a", "b"])] == ["a", "b"]
    empty: list[str] = []
    assert [x async for x in iterate_in_threadpool(empty)] == []


@pytest.mark.anyio
async def test_iterate_in_threadpool_propagates_errors() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise KeyError("boom")

    seen = []
    with pytest.raises(KeyError):
        async for item in iterate_in_threadpool(broken()):
            seen.append(item)
    assert seen == [1]


@pytest.mark.anyio
async def test_run_until_first_complete_is_deprecated_and_cancels_the_rest() -> None:
    finished = anyio.Event()
    cancelled = False

    async def quick() -> None:
        finished.set()

    async def slow(event: anyio.Event) -> None:
        nonlocal cancelled
        try:
            await event.wait()
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise

    never = anyio.Event()
    with pytest.warns(BrilloDeprecationWarning, match="deprecated"), anyio.fail_after(5):
        await run_until_first_complete((slow, {"event": never}), (quick, {}))
    assert finished.is_set()
    assert cancelled
