"""The Redis backend's background work never dies silently: reader and heartbeat are supervised.

Against a real redis-server; faults come from what another client can put on a channel, from a
hub callback, or from the Redis client's script call failing in an unexpected way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import redis

from brillo.realtime.backends.base import Delivery, Envelope, PresenceEntry
from brillo.realtime.backends.redis import RedisBackend
from tests.support.backend_contract import connected
from tests.support.realtime import Collector

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

WAIT = 10.0


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait, bounded, until ``predicate()`` holds (background work in another task)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


def watch_refreshes(backend: RedisBackend, fail_first: bool) -> list[list[str]]:
    """Record the keys of every presence refresh; with ``fail_first`` the first one raises."""
    script = backend._scripts["PRESENCE_REFRESH"]
    calls: list[list[str]] = []

    async def refresh(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(keys)
        if fail_first and len(calls) == 1:
            raise RuntimeError("an unexpected failure in the heartbeat")
        return await script(keys=keys, args=args)

    backend._scripts["PRESENCE_REFRESH"] = refresh
    return calls


async def test_a_malformed_message_does_not_stop_the_reader(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend(redis_url)
    deliveries, _ = await connected(backend)
    try:
        await backend.subscribe("room")
        with redis.Redis.from_url(redis_url) as client:
            client.publish("brillo:rt:c:room", b"p|join|0|[]")  # JSON, but not an entry
        await backend.publish("room", Envelope("after"), history=True)
        assert [d.payload for d in await deliveries.wait(1, timeout=WAIT)] == ["after"]
    finally:
        await backend.close()
    assert any("ignoring a malformed message" in r.getMessage() for r in caplog.records)


async def test_the_heartbeat_restarts_after_an_unexpected_failure(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="brillo.realtime")
    backend = RedisBackend(redis_url, presence_ttl=0.3, reconnect_max=0.1)
    await connected(backend)
    refreshes = watch_refreshes(backend, fail_first=True)
    try:
        await backend.presence_join("room", PresenceEntry("a.1", "ada", {}))
        await eventually(lambda: len(refreshes) >= 3)
    finally:
        await backend.close()
    failures = [r for r in caplog.records if "presence heartbeat failed" in r.getMessage()]
    assert failures
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None


async def test_topic_names_mean_nothing_to_the_backend(redis_url: str) -> None:
    """A room named like the hub's direct topics ("@...") keeps its presence refreshed."""
    backend = RedisBackend(redis_url, presence_ttl=0.3)
    await connected(backend)
    refreshes = watch_refreshes(backend, fail_first=False)
    try:
        await backend.presence_join("@team", PresenceEntry("a.1", "ada", {}))
        await eventually(lambda: ["brillo:rt:p:@team", "brillo:rt:pi:@team"] in refreshes)
    finally:
        await backend.close()


async def test_a_meta_json_refuses_is_an_error_at_join_not_in_the_heartbeat(
    redis_url: str,
) -> None:
    backend = RedisBackend(redis_url, presence_ttl=0.3)
    await connected(backend)
    refreshes = watch_refreshes(backend, fail_first=False)
    try:
        with pytest.raises(TypeError):
            await backend.presence_join("room", PresenceEntry("a.1", "ada", {"x": object()}))
        await backend.presence_join("other", PresenceEntry("b.1", "bob", {}))
        await eventually(lambda: len(refreshes) >= 2)
        assert all("brillo:rt:p:room" not in keys for keys in refreshes)
    finally:
        await backend.close()


class Fatal(BaseException):
    """Something that must end the reader for good (not an Exception)."""


async def test_close_re_raises_what_ended_a_task_after_cleaning_up(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def fatal(delivery: Delivery) -> None:
        raise Fatal("give up")

    backend = RedisBackend(redis_url)
    await backend.connect(fatal, Collector())
    await backend.subscribe("room")
    await backend.publish("room", Envelope("x"), history=False)
    await eventually(lambda: any("stopped for good" in r.getMessage() for r in caplog.records))
    with pytest.raises(Fatal, match="give up"):
        await backend.close()
    with redis.Redis.from_url(redis_url) as client:
        # the pub/sub connection was closed all the same
        await eventually(lambda: all(int(c["sub"]) == 0 for c in client.client_list()))
