"""PostgresBackend against a real PostgreSQL cluster: the shared contract, plus what only it does.

asyncpg is asyncio-only, so these tests run on asyncio only. Each test gets a fresh database of
the pytest process's own cluster (see conftest.py); the restart tests get a cluster of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import asyncpg
import pytest

from brillo.realtime import Hub
from brillo.realtime.backends import create_backend
from brillo.realtime.backends.base import BackendError, Delivery, Envelope, PresenceEntry
from brillo.realtime.backends.postgres import PostgresBackend
from tests.support.backend_contract import BackendContract, connected
from tests.support.realtime import Collector, Peer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

WAIT = 10.0


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait, bounded, until ``predicate()`` holds (background work in another task)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


class TestPostgresContract(BackendContract):
    @pytest.fixture
    def make_backend(self, postgres_url: str) -> Callable[..., PostgresBackend]:
        def make(**options: Any) -> PostgresBackend:
            return PostgresBackend(postgres_url, **options)

        return make


async def test_the_url_scheme_builds_it(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        backend = create_backend(url, history_size=7, history_ttl=None, presence_ttl=3.0)
        assert isinstance(backend, PostgresBackend)
        assert (backend.history_size, backend.presence_ttl) == (7, 3.0)


async def test_two_processes_share_messages_presence_and_history(postgres_url: str) -> None:
    one, two = PostgresBackend(postgres_url), PostgresBackend(postgres_url)
    got_one, _ = await connected(one)
    got_two, presence_two = await connected(two)
    try:
        await one.subscribe("room")
        await two.subscribe("room")
        await one.presence_join("room", PresenceEntry("a.1", "ada", {"name": "Ada"}))
        position = await two.publish("room", Envelope("hello"), history=True)
        assert [d.payload for d in await got_one.wait(1)] == ["hello"]
        assert [d.payload for d in await got_two.wait(1)] == ["hello"]
        listed = await two.presence("room")
        assert [(e.connection, e.user, e.meta) for e in listed] == [("a.1", "ada", {"name": "Ada"})]
        event = (await presence_two.wait(1))[0]
        assert (event.event, event.entry.user) == ("join", "ada")
        assert (await one.history("room")).position == position
    finally:
        await one.close()
        await two.close()


LARGE_TEXT = "é€𝄞 " * 4000  # 40,000 bytes of UTF-8, far past NOTIFY's 8,000
LARGE_BYTES = bytes(range(256)) * 200


@pytest.mark.parametrize("history", [True, False])
async def test_payloads_over_the_notify_limit_go_through_the_table(
    postgres_url: str, history: bool
) -> None:
    backend = PostgresBackend(postgres_url)
    deliveries, _ = await connected(backend)
    try:
        await backend.subscribe("big")
        sent: list[str | bytes] = [LARGE_TEXT, "small", LARGE_BYTES, "a\x00b" * 3000, "x" * 7990]
        for payload in sent:
            await backend.publish("big", Envelope(payload, exclude="n.1"), history=history)
        items = await deliveries.wait(len(sent), timeout=WAIT)
        assert [d.payload for d in items] == sent  # in order, each with its own type
        assert all(d.exclude == "n.1" for d in items)
        if history:
            assert [d.position.offset for d in items] == [1, 2, 3, 4, 5]
            replay = await backend.history("big")
            assert [payload for _, payload in replay.messages] == sent
    finally:
        await backend.close()


async def test_publish_in_the_apps_transaction(postgres_url: str) -> None:
    """A message published inside a transaction goes out on commit, and never on rollback."""
    backend = PostgresBackend(postgres_url)
    deliveries, _ = await connected(backend)
    app = await asyncpg.connect(postgres_url)
    try:
        await app.execute("CREATE TABLE chat (id serial PRIMARY KEY, text text)")
        await backend.subscribe("room")

        class Rollback(Exception):
            pass

        with pytest.raises(Rollback):
            async with app.transaction():
                await app.execute("INSERT INTO chat (text) VALUES ('never')")
                await backend.publish_in(app, "room", Envelope("never"), history=True)
                raise Rollback
        async with app.transaction():
            await app.execute("INSERT INTO chat (text) VALUES ('hello')")
            position = await backend.publish_in(app, "room", Envelope("hello"), history=True)
            await backend.publish_in(app, "room", Envelope("no history"), history=False)
            await backend.publish_in(app, "room", Envelope("no history"), history=False)
            assert deliveries.items == []  # nothing before the commit
        items = await deliveries.wait(3)
        assert [d.payload for d in items] == ["hello", "no history", "no history"]
        assert position is not None
        assert position.offset == 1  # the rolled-back publish took no position
        assert items[0].position == position
        assert [t for (t,) in await app.fetch("SELECT text FROM chat")] == ["hello"]
        replay = await backend.history("room")
        assert [payload for _, payload in replay.messages] == ["hello"]
        await backend.publish("room", Envelope("after"), history=True)
        items = await deliveries.wait(4)
        assert items[3].payload == "after"
        assert items[3].position is not None
        assert items[3].position.offset == 2
        assert len(deliveries.items) == 4  # the rolled-back message never arrived
    finally:
        await app.close()
        await backend.close()


async def test_publish_in_needs_an_open_transaction(postgres_url: str) -> None:
    backend = PostgresBackend(postgres_url)
    await connected(backend)
    app = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(ValueError, match="connection.transaction"):
            await backend.publish_in(app, "room", Envelope("x"), history=True)
        with pytest.raises(TypeError, match="asyncpg connection"):
            await backend.publish_in(object(), "room", Envelope("x"), history=True)
    finally:
        await app.close()
        await backend.close()


async def test_hub_publish_in_a_transaction(postgres_url: str) -> None:
    async with Hub(postgres_url, envelope=True) as hub:
        peer = Peer()
        await peer.accept()
        app = await asyncpg.connect(postgres_url)
        try:
            async with hub.join(peer.websocket, "room"):
                with pytest.raises(ZeroDivisionError):
                    async with app.transaction():
                        await hub.publish_in(app, "room", {"n": "rolled back"})
                        _ = 1 / 0
                async with app.transaction():
                    position = await hub.publish_in(app, "room", {"n": 1})
                await peer.wait_frames(1)
                assert peer.json() == [
                    {"type": "message", "room": "room", "position": str(position), "data": {"n": 1}}
                ]
        finally:
            await app.close()
    memory = Hub("memory://")
    async with memory:
        with pytest.raises(TypeError, match="cannot publish inside a transaction"):
            await memory.publish_in(object(), "room", "x")


async def test_history_ttl_hides_old_messages(postgres_url: str) -> None:
    backend = PostgresBackend(postgres_url, history_ttl=0.3)
    await connected(backend)
    try:
        await backend.publish("r", Envelope("old"), history=True)
        assert [p for _, p in (await backend.history("r")).messages] == ["old"]
        await anyio.sleep(0.5)
        await backend.publish("r", Envelope("new"), history=True)
        result = await backend.history("r")
        assert [p for _, p in result.messages] == ["new"]
        assert (result.first_offset, result.position.offset) == (2, 2)
    finally:
        await backend.close()


async def test_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    backend = PostgresBackend("postgresql://ada:s3cret@127.0.0.1:1/db", connect_timeout=2)
    with pytest.raises(BackendError, match="cannot reach PostgreSQL") as caught:
        await backend.connect(lambda d: None, lambda e: None)
    assert "s3cret" not in str(caught.value)
    assert "ada:***@127.0.0.1:1" in str(caught.value)


async def test_a_meta_too_large_for_a_notification_is_refused_at_join(postgres_url: str) -> None:
    backend = PostgresBackend(postgres_url)
    await connected(backend)
    try:
        with pytest.raises(ValueError, match="presence meta too large"):
            await backend.presence_join("r", PresenceEntry("a.1", "ada", {"bio": "x" * 9000}))
        assert await backend.presence("r") == []
    finally:
        await backend.close()


async def test_a_malformed_notification_does_not_stop_the_listener(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = PostgresBackend(postgres_url)
    deliveries, _ = await connected(backend)
    other = await asyncpg.connect(postgres_url)
    try:
        await backend.subscribe("room")
        for junk in ("t1|x|y|z", "p|", "b0||0|4|0|roomnot base64!", "pj0|4|room[]"):
            await other.execute("SELECT pg_notify('brillo_rt_events', $1)", junk)
        await backend.publish("room", Envelope("after"), history=True)
        assert [d.payload for d in await deliveries.wait(1, timeout=WAIT)] == ["after"]
    finally:
        await other.close()
        await backend.close()
    warnings = [r for r in caplog.records if "malformed notification" in r.getMessage()]
    assert len(warnings) == 4


async def test_the_heartbeat_restarts_after_an_unexpected_failure(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="brillo.realtime")
    backend = PostgresBackend(postgres_url, presence_ttl=0.3, reconnect_max=0.1)
    await connected(backend)
    calls: list[int] = []
    refresh = backend._refresh

    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("an unexpected failure in the heartbeat")
        await refresh()

    backend._refresh = flaky  # type: ignore[method-assign]
    try:
        await backend.presence_join("room", PresenceEntry("a.1", "ada", {}))
        await eventually(lambda: len(calls) >= 3)
        assert [e.connection for e in await backend.presence("room")] == ["a.1"]
    finally:
        await backend.close()
    failures = [r for r in caplog.records if "presence heartbeat failed" in r.getMessage()]
    assert failures
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None


class Fatal(BaseException):
    """Something that must end the listener for good (not an Exception)."""


async def test_close_re_raises_what_ended_the_listener_after_cleaning_up(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def fatal(delivery: Delivery) -> None:
        raise Fatal("give up")

    backend = PostgresBackend(postgres_url)
    await backend.connect(fatal, Collector())
    await backend.subscribe("room")
    await backend.publish("room", Envelope("x"), history=False)
    await eventually(lambda: any("stopped for good" in r.getMessage() for r in caplog.records))
    with pytest.raises(Fatal, match="give up"):
        await backend.close()
    check = await asyncpg.connect(postgres_url)
    try:
        # every connection of the backend was closed all the same
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'brillo-%'"
        with anyio.fail_after(WAIT):
            while await check.fetchval(query):
                await anyio.sleep(0.05)
    finally:
        await check.close()


async def test_hubs_in_two_processes_share_rooms(postgres_url: str) -> None:
    async with (
        Hub(postgres_url, envelope=True, presence_events=True) as one,
        Hub(postgres_url, envelope=True, presence_events=True) as two,
    ):
        a, b = Peer(), Peer()
        await a.accept()
        await b.accept()
        async with (
            one.join(a.websocket, "room", user="ada"),
            two.join(b.websocket, "room", user="bob"),
        ):
            await a.wait(lambda p: any('"user":"bob"' in t for t in p.texts))
            position = await two.publish("room", {"text": "hi"}, exclude=b.websocket)
            await one.send_to_user("bob", {"direct": True})
            await a.wait(lambda p: any('"data":{"text":"hi"}' in t for t in p.texts))
            await b.wait(lambda p: '{"direct":true}' in p.texts)
            assert not any('"text":"hi"' in t for t in b.texts)  # excluded across processes
            assert sorted(await one.presence("room")) == ["ada", "bob"]
            assert position is not None
            c = Peer()
            await c.accept()
            since = f"{position.epoch}:{position.offset - 1}"
            async with one.join(c.websocket, "room", since=since) as membership:
                assert membership.recovery is not None
                assert not membership.recovery.resync_required
                await c.wait(lambda p: any('"data":{"text":"hi"}' in t for t in p.texts))
