"""PostgresBackend without a server: options, URL schemes, the asyncio-only refusal on trio.

What needs a real cluster is in tests/integration/realtime/test_realtime_postgres*.py.
"""

from __future__ import annotations

import pytest

from brillo.realtime.backends import create_backend
from brillo.realtime.backends.postgres import PostgresBackend


def test_the_schemes_build_it() -> None:
    for url in ("postgresql://u@127.0.0.1:5/db", "postgres://u@127.0.0.1:5/db"):
        backend = create_backend(url, history_size=3, history_ttl=None, presence_ttl=2.0)
        assert isinstance(backend, PostgresBackend)
        assert (backend.history_size, backend.presence_ttl) == (3, 2.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"history_size": -1}, "history_size"),
        ({"history_ttl": 0}, "history_ttl"),
        ({"presence_ttl": 0}, "presence_ttl"),
        ({"prefix": "Bad-Prefix"}, "invalid prefix"),
        ({"prefix": "x" * 41}, "invalid prefix"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_invalid_options_are_refused_clearly(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PostgresBackend("postgresql://u@127.0.0.1:5/db", **options)  # type: ignore[arg-type]


def test_the_schema_sql_uses_the_prefix() -> None:
    sql = PostgresBackend("postgresql://u@h/db", prefix="chat_").schema_sql()
    assert "CREATE TABLE IF NOT EXISTS chat_messages" in sql
    assert "brillo_rt_" not in sql


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_it_refuses_trio_clearly() -> None:
    with pytest.raises(RuntimeError, match="asyncio only"):
        await PostgresBackend("postgresql://u@127.0.0.1:1/db").connect(
            lambda d: None, lambda e: None
        )
