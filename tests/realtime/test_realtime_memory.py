"""MemoryBackend: the shared backend contract, plus what only the embedded backend does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from brillo.realtime.backends import create_backend, register_backend
from brillo.realtime.backends.base import Envelope, Position
from brillo.realtime.backends.memory import MemoryBackend
from tests.support.backend_contract import BackendContract, connected


class TestMemoryContract(BackendContract):
    @pytest.fixture
    def make_backend(self) -> Callable[..., MemoryBackend]:
        def make(**options: Any) -> MemoryBackend:
            return MemoryBackend(**options)

        return make


@pytest.mark.anyio
async def test_restart_changes_the_epoch() -> None:
    first, second = MemoryBackend(), MemoryBackend()
    await connected(first)
    await connected(second)
    a = await first.publish("r", Envelope("x"), history=True)
    b = await second.publish("r", Envelope("x"), history=True)
    assert a is not None
    assert b is not None
    assert a.epoch != b.epoch


def test_position_parse_round_trip() -> None:
    position = Position("abc123", 42)
    assert Position.parse(str(position)) == position
    for bad in ("", "42", "abc:", "abc:x", "abc:-1", ":3"):
        with pytest.raises(ValueError, match="invalid position"):
            Position.parse(bad)


def test_create_backend_by_scheme() -> None:
    assert isinstance(create_backend("memory://"), MemoryBackend)
    with pytest.raises(ValueError, match="unsupported realtime backend URL"):
        create_backend("nats://x")
    with pytest.raises(ValueError, match="unsupported"):
        create_backend("no-scheme")


def test_register_backend() -> None:
    made: list[str] = []

    def factory(url: str, **options: Any) -> MemoryBackend:
        made.append(url)
        return MemoryBackend(history_size=options["history_size"])

    register_backend("testonly", factory)
    backend = create_backend("testonly://x", history_size=3, history_ttl=None, presence_ttl=1.0)
    assert made == ["testonly://x"]
    assert isinstance(backend, MemoryBackend)
    assert backend.history_size == 3


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="history_size"):
        MemoryBackend(history_size=-1)
    with pytest.raises(ValueError, match="history_ttl"):
        MemoryBackend(history_ttl=0)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_redis_backend_refuses_trio_clearly() -> None:
    from brillo.realtime.backends.redis import RedisBackend

    with pytest.raises(RuntimeError, match="asyncio only"):
        await RedisBackend("redis://127.0.0.1:1/0").connect(lambda d: None, lambda e: None)
