"""The collaborative document example over the wire: ordering, recovery, resync, bad edits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from brillo.testing import LiveServer
from examples.realtime import document
from tests.support.wire import recv_json

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


class Editor:
    """A client that keeps its own copy of the text, as a browser editor would."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.text = ""
        self.position: str | None = None
        self.edits: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        message: dict[str, Any] = await recv_json(self.client)
        if message["type"] == "snapshot":
            self.text, self.position = message["text"], message["position"]
        elif message["type"] == "message":
            edit = message["data"]["edit"]
            self.text = document.apply_edit(self.text, edit)
            self.position = message["position"]
            self.edits.append(message)
        return message

    async def until_length(self, count: int) -> None:
        while len(self.edits) < count:
            await self.next()


@pytest.fixture
def server() -> Iterator[LiveServer]:
    document.documents.clear()
    with LiveServer(document.app) as live:
        yield live


async def test_editors_converge(server: LiveServer) -> None:
    url = server.ws_url + "/docs/readme"
    async with connect(url + "?user=ada") as a, connect(url + "?user=bob") as b:
        ada, bob = Editor(a), Editor(b)
        assert (await ada.next())["type"] == "snapshot"
        assert (await bob.next())["type"] == "snapshot"
        await a.send('{"pos": 0, "insert": "hello"}')
        await b.send('{"pos": 0, "insert": ">> "}')
        await a.send('{"pos": 0, "delete": 0, "insert": "["}')
        await ada.until_length(3)
        await bob.until_length(3)
        assert ada.text == bob.text == document.documents["readme"].text
        assert [e["position"] for e in ada.edits] == [e["position"] for e in bob.edits]


async def test_reconnect_gets_exactly_the_missed_edits(server: LiveServer) -> None:
    url = server.ws_url + "/docs/notes"
    async with connect(url + "?user=ada") as a:
        ada = Editor(a)
        await ada.next()
        async with connect(url + "?user=bob") as b:
            bob = Editor(b)
            await bob.next()
            await a.send('{"pos": 0, "insert": "one "}')
            await bob.until_length(1)
        seen = bob.position
        await a.send('{"pos": 4, "insert": "two "}')
        await a.send('{"pos": 8, "insert": "three"}')
        await ada.until_length(3)
        async with connect(f"{url}?user=bob&since={seen}") as b2:
            bob.client = b2
            await bob.until_length(3)
            assert [e["data"]["edit"]["insert"] for e in bob.edits] == ["one ", "two ", "three"]
            assert bob.text == ada.text == "one two three"
            await a.send('{"pos": 0, "delete": 4}')
            await bob.until_length(4)
            assert bob.text == "two three"


async def test_stale_position_requires_resync(server: LiveServer) -> None:
    url = server.ws_url + "/docs/old"
    async with connect(url + "?since=not-our-epoch:3") as client:
        editor = Editor(client)
        assert (await editor.next())["type"] == "resync"
        snapshot = await editor.next()
        assert snapshot["type"] == "snapshot"
        assert snapshot["text"] == ""


async def test_bad_input_is_closed_with_a_code(server: LiveServer) -> None:
    for query, payload, code in [
        ("", '{"pos": 99, "insert": "x"}', 1007),
        ("", '"just a string"', 1007),
        ("?since=garbage", None, 1008),
    ]:
        async with connect(server.ws_url + "/docs/bad" + query) as client:
            if payload is not None:
                await recv_json(client)  # snapshot
                await client.send(payload)
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await client.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == code
    assert document.hub.members("bad") == []
