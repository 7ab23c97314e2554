"""brillo._utils: the private helpers other modules share."""

from __future__ import annotations

import functools

import anyio
import pytest

from brillo._utils import create_collapsing_task_group, is_async_callable


class Boom(Exception):
    pass


@pytest.mark.anyio
async def test_collapsing_task_group_raises_a_lone_body_failure_as_itself() -> None:
    with pytest.raises(Boom, match="body") as info:
        async with create_collapsing_task_group():
            raise Boom("body")
    assert not isinstance(info.value, BaseExceptionGroup)


@pytest.mark.anyio
async def test_collapsing_task_group_raises_a_lone_child_failure_as_itself() -> None:
    async def child() -> None:
        raise Boom("child")

    with pytest.raises(Boom, match="child"):
        async with create_collapsing_task_group() as tg:
            tg.start_soon(child)
            await anyio.sleep_forever()


@pytest.mark.anyio
async def test_collapsing_task_group_keeps_concurrent_failures_together() -> None:
    async def child() -> None:
        raise Boom("child")

    with pytest.raises(BaseExceptionGroup) as info:
        async with create_collapsing_task_group() as tg:
            tg.start_soon(child)  # starts while the body fails: it runs to its raise
            raise Boom("body")
    assert sorted(str(e) for e in info.value.exceptions) == ["body", "child"]


@pytest.mark.anyio
async def test_collapsing_task_group_is_quiet_when_nothing_fails() -> None:
    done: list[int] = []

    async def child(n: int) -> None:
        done.append(n)

    async with create_collapsing_task_group() as tg:
        for n in range(3):
            tg.start_soon(child, n)
    assert sorted(done) == [0, 1, 2]


def test_is_async_callable_sees_through_partials_and_call_methods() -> None:
    async def coro(a: int) -> None: ...

    def plain(a: int) -> None: ...

    class AsyncCall:
        async def __call__(self) -> None: ...

    assert is_async_callable(functools.partial(functools.partial(coro, 1)))
    assert not is_async_callable(functools.partial(plain, 1))
    assert is_async_callable(AsyncCall())
    assert not is_async_callable(AsyncCall)


def test_is_async_callable_knows_an_autospec_of_a_coroutine_function() -> None:
    from unittest.mock import create_autospec

    async def coro() -> None: ...

    def plain() -> None: ...

    assert is_async_callable(create_autospec(coro))
    assert not is_async_callable(create_autospec(plain))
