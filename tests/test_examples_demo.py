"""The demo app (examples/demo) through the TestClient: validation, chat, editor, dashboard.

The browser tests in tests/integration/browser drive the same app in chromium over real uvicorn.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from brillo.testclient import TestClient
from brillo.websockets import WebSocketDisconnect
from examples.demo import ot
from examples.demo.app import create_app
from examples.demo.documents import Document, ResyncRequired


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app("memory://", secret_key="test")) as client:
        yield client


def sign_in(client: TestClient, name: str = "Ada", room: str = "lobby") -> None:
    response = client.post("/login", data={"name": name, "room": room}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/chat?room={room}"


def next_of(ws, kind: str) -> dict:  # type: ignore[no-untyped-def]
    """The next message of a type, skipping presence events and others."""
    for _ in range(20):
        message = ws.receive_json()
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind!r} message")


def test_pages_render(client: TestClient) -> None:
    assert "Join chat" in client.get("/").text
    assert client.get("/dashboard").status_code == 200
    assert "Document “notes”" in client.get("/editor?doc=notes").text
    assert client.get("/static/ot.js").headers["content-type"].startswith("text/javascript")
    # No name yet: the chat page sends you to pick one.
    response = client.get("/chat?room=lobby", follow_redirects=False)
    assert response.status_code == 303


@pytest.mark.parametrize("name", ["", " ", "x" * 33, "<script>", "a\nb"])
def test_login_rejects_bad_names(client: TestClient, name: str) -> None:
    response = client.post("/login", data={"name": name, "room": "lobby"})
    assert response.status_code == 400
    assert "Names are" in response.text
    assert "<script>" not in response.text.split("<main>")[1]


def test_chat_needs_a_name(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws/chat/lobby"):
        pass
    assert info.value.code == 1008


def test_chat_round_trip_history_and_replay(client: TestClient) -> None:
    sign_in(client)
    with client.websocket_connect("/ws/chat/lobby") as ws:
        roster = next_of(ws, "roster")
        assert list(roster["users"]) == ["Ada"]
        for n in range(3):
            ws.send_json({"type": "message", "text": f"  hello {n} "})
        got = [next_of(ws, "message") for _ in range(3)]
    assert [m["data"]["text"] for m in got] == ["hello 0", "hello 1", "hello 2"]
    assert {m["data"]["user"] for m in got} == {"Ada"}
    first = got[0]["position"]

    # A new connection gets the recent history first.
    with client.websocket_connect("/ws/chat/lobby") as ws:
        history = [next_of(ws, "message") for _ in range(3)]
        assert [m["position"] for m in history] == [m["position"] for m in got]
    # Reconnecting from the first position replays exactly what came after it.
    with client.websocket_connect(f"/ws/chat/lobby?since={first}") as ws:
        replay = [next_of(ws, "message") for _ in range(2)]
        assert [m["data"]["text"] for m in replay] == ["hello 1", "hello 2"]
        ws.send_json({"type": "message", "text": "live"})
        assert next_of(ws, "message")["data"]["text"] == "live"
    # A position from another epoch (history lost) asks the client to resync.
    with client.websocket_connect("/ws/chat/lobby?since=gone:1") as ws:
        assert ws.receive_json()["type"] == "resync"


def test_chat_answers_bad_messages(client: TestClient) -> None:
    sign_in(client)
    with client.websocket_connect("/ws/chat/lobby") as ws:
        next_of(ws, "roster")
        for bad in ([1, 2], {"type": "message", "text": ""}, {"type": "message", "text": 5},
                    {"type": "message", "text": "x" * 2001}, {"type": "nope"}):  # fmt: skip
            ws.send_json(bad)
            assert next_of(ws, "error")["detail"]
    with client.websocket_connect("/ws/chat/lobby") as ws:
        ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as info:
            next_of(ws, "never")
        assert info.value.code == 1007
    with client.websocket_connect("/ws/chat/lobby") as ws:
        ws.send_bytes(b"binary")
        with pytest.raises(WebSocketDisconnect) as info:
            next_of(ws, "never")
        assert info.value.code == 1003
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws/chat/lobby?since=junk") as junk,
    ):
        next_of(junk, "never")
    assert info.value.code == 1008


def test_two_chatters_see_each_other(client: TestClient) -> None:
    sign_in(client, "Ada")
    with client.websocket_connect("/ws/chat/duo") as ada:
        next_of(ada, "roster")
        sign_in(client, "Bob")  # the cookie jar now holds Bob's session
        with client.websocket_connect("/ws/chat/duo") as bob:
            assert sorted(next_of(bob, "roster")["users"]) == ["Ada", "Bob"]
            joined = next_of(ada, "presence")
            while joined["user"] != "Bob" or joined["room"] != "duo":
                joined = next_of(ada, "presence")
            assert joined["event"] == "join"
            bob.send_json({"type": "typing"})
            typing = next_of(ada, "message")
            assert typing["data"] == {"kind": "typing", "user": "Bob"}
            bob.send_json({"type": "message", "text": "hi"})
            assert next_of(ada, "message")["data"]["text"] == "hi"
        left = next_of(ada, "presence")
        while left["event"] != "leave" or left["room"] != "duo":
            left = next_of(ada, "presence")
        assert left["user"] == "Bob"


def test_editor_orders_and_transforms_concurrent_edits(client: TestClient) -> None:
    with client.websocket_connect("/ws/doc/t") as one, client.websocket_connect("/ws/doc/t") as two:
        a, b = next_of(one, "doc"), next_of(two, "doc")
        assert a["version"] == b["version"] == 0
        # Both edit version 0 at once; the server applies one, transforms the other.
        one.send_json({"type": "edit", "version": 0, "op": ["hello"], "seq": 1})
        two.send_json({"type": "edit", "version": 0, "op": ["world"], "seq": 1})
        ops = [next_of(one, "message")["data"] for _ in range(2)]
        assert [op["version"] for op in ops] == [1, 2]
        text = ""
        for op in ops:
            text = ot.apply(text, op["op"])
        assert sorted(text.split("hello")) in (["", "world"],)
        # A late joiner gets the current state.
        with client.websocket_connect("/ws/doc/t") as late:
            assert next_of(late, "doc")["text"] == text
        # Stale or malformed edits are refused with an error and a fresh snapshot.
        one.send_json({"type": "edit", "version": 99, "op": ["x"]})
        assert "unknown version" in next_of(one, "error")["detail"]
        assert next_of(one, "doc")["version"] == 2
        one.send_json({"type": "edit", "version": 2, "op": [3, "x"]})
        assert "expects a document" in next_of(one, "error")["detail"]
        one.send_json({"type": "edit", "version": "2"})
        assert next_of(one, "error")


def test_dashboard_pushes_metrics(client: TestClient) -> None:
    with client.websocket_connect("/ws/dashboard") as ws:
        metrics = next_of(ws, "metrics")
        assert metrics["connections"] >= 1
        assert metrics["rss_bytes"] > 0
    text = client.get("/metrics").text
    assert "brillo_realtime_published" in text


# -- operational transformation --------------------------------------------------------------


def random_op(doc: str, rnd: random.Random) -> list[int | str]:
    op: list[int | str] = []
    i = 0
    while i < len(doc):
        k = rnd.randint(1, len(doc) - i)
        roll = rnd.random()
        if roll < 0.4:
            op.append(k)
        elif roll < 0.7:
            op.append(-k)
        else:
            op += [k, rnd.choice(["x", "yz", "é"])]
        i += k
    if rnd.random() < 0.5:
        op.append("end")
    return ot.normalize(op)


def test_transform_converges_on_random_concurrent_edits() -> None:
    rnd = random.Random(7)
    for _ in range(3000):
        doc = "".join(rnd.choice("abcdef") for _ in range(rnd.randint(0, 12)))
        a, b = random_op(doc, rnd), random_op(doc, rnd)
        a2, b2 = ot.transform(a, b)
        assert ot.apply(ot.apply(doc, a), b2) == ot.apply(ot.apply(doc, b), a2)


def test_document_transforms_stale_edits_and_keeps_bounded_history() -> None:
    doc = Document("d", max_history=2, max_length=20)
    doc.submit(0, ["abc"])
    assert doc.submit(0, ["X"]) == ["X", 3]  # based on v0: goes first, past "abc"
    assert doc.text == "Xabc"
    doc.submit(2, [4, "!"])
    with pytest.raises(ResyncRequired):
        doc.submit(0, ["late"])
    with pytest.raises(ot.OTError, match="at most 20"):
        doc.submit(3, [5, "y" * 20])


@pytest.mark.parametrize(
    "raw", [None, "abc", [0], [""], [True], [1.5], [{"x": 1}], list(range(1, 10_002))]
)
def test_parse_refuses_malformed_operations(raw: object) -> None:
    with pytest.raises(ot.OTError):
        ot.parse(raw)
