"""Tests for brillo.background: single and grouped background tasks."""

from __future__ import annotations

import threading

import pytest

from brillo.background import BackgroundTask, BackgroundTasks


@pytest.mark.anyio
async def test_async_task_runs_with_args_on_the_loop_thread() -> None:
    calls: list[tuple[object, ...]] = []
    loop_thread = threading.current_thread()

    async def record(a: int, *, b: str) -> None:
        calls.append((a, b, threading.current_thread() is loop_thread))

    task = BackgroundTask(record, 1, b="x")
    assert task.is_async
    await task()
    assert calls == [(1, "x", True)]


@pytest.mark.anyio
async def test_sync_task_runs_in_a_worker_thread() -> None:
    calls: list[bool] = []
    loop_thread = threading.current_thread()

    def record(flag: str) -> None:
        calls.append(threading.current_thread() is loop_thread)
        assert flag == "ok"

    task = BackgroundTask(record, "ok")
    assert not task.is_async
    await task()
    assert calls == [False]


@pytest.mark.anyio
async def test_callable_instance_with_async_call_is_awaited() -> None:
    seen: list[int] = []

    class Job:
        async def __call__(self, n: int) -> None:
            seen.append(n)

    await BackgroundTask(Job(), 7)()
    assert seen == [7]


@pytest.mark.anyio
async def test_background_tasks_run_in_order() -> None:
    order: list[str] = []

    async def first() -> None:
        order.append("first")

    def second(tag: str) -> None:
        order.append(tag)

    tasks = BackgroundTasks([BackgroundTask(first)])
    tasks.add_task(second, "second")
    tasks.add_task(first)
    await tasks()
    assert order == ["first", "second", "first"]


@pytest.mark.anyio
async def test_background_tasks_stop_at_the_first_error() -> None:
    order: list[str] = []

    def boom() -> None:
        raise ValueError("bad task")

    async def after() -> None:
        order.append("after")

    tasks = BackgroundTasks()
    tasks.add_task(boom)
    tasks.add_task(after)
    with pytest.raises(ValueError, match="bad task"):
        await tasks()
    assert order == []


@pytest.mark.anyio
async def test_empty_background_tasks() -> None:
    await BackgroundTasks()()
    assert BackgroundTasks().tasks == []
