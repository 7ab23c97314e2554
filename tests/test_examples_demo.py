"""The demo app (examples/demo) through the TestClient: validation, chat, editor, dashboard.

The browser tests in tests/integration/browser drive the same app in chromium over real uvicorn.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from brillo.realtime.testing import ReplyError, connect_channels
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
    with connect_channels(client) as anonymous:
        with pytest.raises(ReplyError) as info:
            anonymous.join("chat:lobby")
        assert (info.value.code, info.value.message) == ("forbidden", "pick a name first")
        anonymous.join("doc:notes")  # the editor needs no name


def test_chat_round_trip_history_and_replay(client: TestClient) -> None:
    sign_in(client)
    with connect_channels(client) as ada:
        ada.join("chat:lobby")
        assert list(ada.presence("chat:lobby")) == ["Ada"]
        for n in range(3):
            assert ada.push("chat:lobby", "message", {"text": f"  hello {n} "}) is None
        got = [ada.receive_event("chat:lobby", "chat") for _ in range(3)]
    assert [e.payload["text"] for e in got] == ["hello 0", "hello 1", "hello 2"]
    assert {e.payload["user"] for e in got} == {"Ada"}

    # A new connection gets the recent history first.
    with connect_channels(client) as ada:
        ada.join("chat:lobby")
        history = [ada.receive_event("chat:lobby", "chat") for _ in range(3)]
        assert [e.position for e in history] == [e.position for e in got]
        ada.assert_no_broadcast("chat:lobby")
    # Reconnecting from the first position replays exactly what came after it.
    with connect_channels(client) as ada:
        ada.join("chat:lobby", since=got[0].position)
        replay = [ada.receive_event("chat:lobby", "chat").payload["text"] for _ in range(2)]
        assert replay == ["hello 1", "hello 2"]
        ada.push("chat:lobby", "message", {"text": "live"})
        assert ada.receive_event("chat:lobby", "chat").payload["text"] == "live"
    # A position from another epoch (history lost) asks the client to resync.
    with connect_channels(client) as ada:
        ada.join("chat:lobby", since="gone:1")
        assert [n.frame["type"] for n in ada.notices if n.kind == "resync"] == ["resync"]


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("message", [1, 2], "invalid_payload"),
        ("message", {"text": ""}, "invalid_payload"),
        ("message", {"text": "   "}, "invalid_payload"),
        ("message", {"text": 5}, "invalid_payload"),
        ("message", {"text": "x" * 2001}, "invalid_payload"),
        ("nope", None, "unknown_event"),
    ],
)
def test_chat_answers_bad_messages(
    client: TestClient, event: str, payload: object, code: str
) -> None:
    sign_in(client)
    with connect_channels(client) as ada:
        ada.join("chat:lobby")
        with pytest.raises(ReplyError) as info:
            ada.push("chat:lobby", event, payload)
        assert info.value.code == code
        assert info.value.message


@pytest.mark.parametrize(
    ("frame", "code"), [("{not json", 1007), (b"binary", 1003), ('{"type": 1}', 1007)]
)
def test_chat_closes_on_protocol_violations(
    client: TestClient, frame: str | bytes, code: int
) -> None:
    sign_in(client)
    with client.websocket_connect("/ws") as ws:
        if isinstance(frame, bytes):
            ws.send_bytes(frame)
        else:
            ws.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == code


def test_two_chatters_see_each_other(client: TestClient) -> None:
    sign_in(client, "Ada")
    with connect_channels(client) as ada:
        ada.join("chat:duo")
        ada.join("typing:duo")
        sign_in(client, "Bob")  # the cookie jar now holds Bob's session
        with connect_channels(client) as bob:
            bob.join("chat:duo")
            bob.join("typing:duo")
            assert sorted(bob.presence("chat:duo")) == ["Ada", "Bob"]
            assert sorted(ada.presence("chat:duo")) == ["Ada", "Bob"]
            bob.push("typing:duo", "typing")
            ada.assert_broadcast("typing:duo", "typing", {"user": "Bob"})
            bob.assert_no_broadcast("typing:duo")  # the typist does not hear itself
            bob.push("chat:duo", "message", {"text": "hi"})
            assert ada.receive_event("chat:duo", "chat").payload["text"] == "hi"
        assert sorted(ada.presence("chat:duo")) == ["Ada"]
        diffs = [n.frame for n in ada.notices if n.kind == "presence" and n.room == "chat:duo"]
        assert [d["user"] for d in diffs if d["event"] == "leave"] == ["Bob"]


def test_editor_orders_and_transforms_concurrent_edits(client: TestClient) -> None:
    with connect_channels(client) as one, connect_channels(client) as two:
        a, b = one.join("doc:t"), two.join("doc:t")
        assert a["version"] == b["version"] == 0
        assert a["client_id"] != b["client_id"]
        # Both edit version 0; the server applies one, transforms the other.
        assert one.push("doc:t", "edit", {"version": 0, "op": ["hello"], "seq": 1}) == {
            "version": 1
        }
        assert two.push("doc:t", "edit", {"version": 0, "op": ["world"], "seq": 1}) == {
            "version": 2
        }
        ops = [one.receive_event("doc:t", "op").payload for _ in range(2)]
        assert [op["version"] for op in ops] == [1, 2]
        assert [op["client_id"] for op in ops] == [a["client_id"], b["client_id"]]
        text = ""
        for op in ops:
            text = ot.apply(text, op["op"])
        assert sorted(text.split("hello")) in (["", "world"],)
        # A late joiner gets the current state.
        with connect_channels(client) as late:
            assert late.join("doc:t")["text"] == text
        # Stale or malformed edits are refused with an error and a fresh snapshot.
        with pytest.raises(ReplyError, match="unknown version"):
            one.push("doc:t", "edit", {"version": 99, "op": ["x"]})
        assert one.receive_event("doc:t", "doc").payload["version"] == 2
        with pytest.raises(ReplyError, match="expects a document"):
            one.push("doc:t", "edit", {"version": 2, "op": [3, "x"]})
        with pytest.raises(ReplyError, match="invalid_payload"):
            one.push("doc:t", "edit", {"version": "2"})


def test_dashboard_pushes_metrics(client: TestClient) -> None:
    with connect_channels(client) as viewer:
        viewer.join("dashboard")
        metrics = viewer.receive_event("dashboard", "metrics")
        assert metrics.position is None  # this process's figures, in no history
        assert metrics.payload["connections"] >= 1
        assert metrics.payload["rss_bytes"] > 0
    text = client.get("/metrics").text
    assert "brillo_realtime_published" in text


def test_the_demo_describes_its_channels(client: TestClient) -> None:
    doc = client.get("/asyncapi.json").json()
    assert set(doc["channels"]) == {"chat", "typing", "doc", "dashboard", "connection"}
    assert "export class Socket" in client.get("/brillo-channels.js").text


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
