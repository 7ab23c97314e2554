"""The channel protocol through the TestClient (asyncio and trio), with the test helpers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from brillo.realtime import Hub
from brillo.realtime.channels import Channel, Channels
from brillo.realtime.testing import ANY, ChannelTestSession, ReplyError, connect_channels
from brillo.testclient import TestClient
from brillo.websockets import WebSocketDisconnect
from tests.realtime._channels_app import build

Connect = Callable[..., AbstractContextManager[ChannelTestSession]]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_hub(**options: Any) -> Hub:
    options.setdefault("envelope", True)
    options.setdefault("presence_events", True)
    return Hub("memory://", **options)


@pytest.fixture
def hub() -> Hub:
    return make_hub()


@pytest.fixture
def setup(hub: Hub, backend: str) -> Iterator[tuple[TestClient, Channels, list[str]]]:
    app, channels, left = build(hub)
    with TestClient(app, backend=backend) as client:  # type: ignore[arg-type]
        yield client, channels, left


@pytest.fixture
def client(setup: tuple[TestClient, Channels, list[str]]) -> TestClient:
    return setup[0]


@pytest.fixture
def connect(client: TestClient) -> Connect:
    def open_one(user: str = "ada") -> AbstractContextManager[ChannelTestSession]:
        return connect_channels(client, f"/ws?user={user}")

    return open_one


def test_join_push_reply_and_broadcast(connect: Connect) -> None:
    with connect("ada") as ada, connect("bob") as bob:
        assert ada.join("room:1") == {"room": "1", "user": "ada"}
        assert bob.join("room:1") == {"room": "1", "user": "bob"}
        reply = ada.push("room:1", "say", {"text": "hi"})
        position = reply["position"]
        for session in (ada, bob):
            event = session.assert_broadcast("room:1", "said", {"text": "hi"})
            assert event.position == position
        assert ada.push("room:1", "move", {"x": 1, "y": 2}) == {"x": 2, "y": 3}
        assert ada.push("room:1", "count", 2) == 2
        assert ada.push("room:1", "count", 3) == 5  # ctx.state lives as long as the connection
        assert ada.push("room:1", "anything", [1, "two"]) == [1, "two"]
        ada.push("room:1", "tag", {"name": "x"})
        bob.assert_broadcast("room:1", "tagged", {"name": "x"})
        ada.assert_no_broadcast("room:1")  # include_self=False
        bob.assert_no_broadcast()


def test_the_subprotocol_is_accepted_when_offered(client: TestClient) -> None:
    with client.websocket_connect("/ws?user=a", subprotocols=["brillo.channels.v1"]) as ws:
        assert ws.accepted_subprotocol == "brillo.channels.v1"
    with client.websocket_connect("/ws?user=a") as ws:
        assert ws.accepted_subprotocol is None
        ws.send_text('{"type":"ping"}')
        assert ws.receive_json() == {"type": "pong"}


@pytest.mark.parametrize(
    ("event", "payload", "code", "message"),
    [
        ("nope", None, "unknown_event", "no event 'nope'"),
        ("say", {"text": 5}, "invalid_payload", "Expected `str`, got `int` - at `$.text`"),
        ("say", {"text": ""}, "invalid_payload", "length >= 1"),
        ("say", {}, "invalid_payload", "missing required field `text`"),
        ("say", "hi", "invalid_payload", "Expected `object`"),
        ("move", {"x": "1", "y": 2}, "invalid_payload", "Expected `int`, got `str`"),
        ("tag", {"name": 1}, "invalid_payload", "Expected `str`"),
        ("count", True, "invalid_payload", "Expected an integer, got a boolean"),
        ("fail", None, "internal_error", "the handler failed"),
        ("refuse", None, "conflict", "someone else got there first"),
        ("unencodable", None, "internal_error", "the reply could not be sent"),
    ],
)
def test_bad_pushes_get_error_replies_and_the_connection_stays(
    connect: Connect, event: str, payload: Any, code: str, message: str
) -> None:
    with connect() as ada:
        ada.join("room:1")
        with pytest.raises(ReplyError) as info:
            ada.push("room:1", event, payload)
        assert info.value.code == code
        assert message in info.value.message
        assert info.value.room == "room:1"
        assert ada.push("room:1", "count", 1) == 1  # still connected, still in the room


def test_a_failing_handler_is_logged(connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    with connect() as ada, caplog.at_level(logging.ERROR, logger="brillo.realtime"):
        ada.join("room:1")
        with pytest.raises(ReplyError):
            ada.push("room:1", "fail")
    failures = [r for r in caplog.records if "the handler of 'fail'" in r.getMessage()]
    assert failures
    assert failures[0].exc_info is not None
    assert "boom" in str(failures[0].exc_info[1])


def test_errors_without_a_ref_are_error_frames(connect: Connect) -> None:
    with connect() as ada:
        ada.send({"type": "push", "room": "room:9", "event": "say", "payload": {}})
        ada.sync()
        errors = [n.frame for n in ada.notices if n.kind == "error"]
        assert errors == [
            {"type": "error", "room": "room:9", "error": {"code": "not_joined", "message": ANY}}
        ]


@pytest.mark.parametrize(
    ("room", "payload", "code", "message"),
    [
        ("room:private", None, "forbidden", "the private room needs the token"),
        ("room:closed", None, "forbidden", "not allowed to join"),
        ("room:broken", None, "internal_error", "the join failed"),
        ("room:explodes", None, "unavailable", "this room is being repaired"),
        ("room:1", {"token": 5}, "invalid_payload", "Expected `str`"),
        ("elsewhere:1", None, "unknown_room", "no channel for 'elsewhere:1'"),
        ("", None, "invalid_room", "1 to 256 characters"),
        ("@ada", None, "invalid_room", "not starting with '@'"),
        ("x" * 257, None, "invalid_room", "1 to 256 characters"),
    ],
)
def test_refused_joins_say_why(
    connect: Connect, hub: Hub, room: str, payload: Any, code: str, message: str
) -> None:
    with connect("ada") as ada, connect("bob") as bob:
        bob.join("room:private", {"token": "sesame"})
        with pytest.raises(ReplyError) as info:
            ada.join(room, payload)
        assert (info.value.code, info.value.room) == (code, room)
        assert message in info.value.message
        # Nothing of the refused join remains: no membership, no presence, no leave hook.
        ada.sync()
        if room != "room:private":
            assert hub.members(room) == []
        assert "ada" not in bob.presence("room:private")
        assert ada.join("room:private", {"token": "sesame"})["user"] == "ada"


def test_already_joined_too_many_rooms_and_not_joined(hub: Hub, backend: str) -> None:
    app, _, _ = build(hub, max_rooms=2)
    with TestClient(app, backend=backend) as client, connect_channels(client, "/ws") as s:  # type: ignore[arg-type]
        s.join("room:1")
        with pytest.raises(ReplyError, match="already_joined"):
            s.join("room:1")
        s.join("lobby")
        with pytest.raises(ReplyError, match="too_many_rooms"):
            s.join("room:3")
        s.leave("lobby")
        s.join("room:3")
        with pytest.raises(ReplyError, match="not_joined"):
            s.push("lobby", "echo", {})
        with pytest.raises(ReplyError, match="not_joined"):
            s.leave("lobby")


def test_multiplexing_many_rooms_on_one_socket(connect: Connect, setup: Any) -> None:
    left = setup[2]
    with connect("ada") as ada, connect("bob") as bob:
        ada.join("room:a")
        ada.join("room:b")
        ada.join("lobby")
        bob.join("room:b")
        bob.push("room:b", "say", {"text": "to b"})
        ada.assert_broadcast("room:b", "said", {"text": "to b"})
        ada.assert_no_broadcast("room:a")
        assert ada.push("lobby", "echo", {"x": 1}) == {"x": 1}
        ada.leave("room:b")
        assert left == ["ada left room:b"]
        bob.push("room:b", "say", {"text": "gone"})
        ada.assert_no_broadcast()
        assert ada.push("room:a", "count", 1) == 1  # the other rooms are untouched
    # (the lobby's channel has no leave hook)
    assert sorted(left) == ["ada left room:a", "ada left room:b", "bob left room:b"]


def test_presence_state_and_diffs(connect: Connect, hub: Hub) -> None:
    with connect("ada") as ada:
        ada.join("room:p")
        assert list(ada.presence("room:p")) == ["ada"]
        with connect("bob") as bob:
            bob.join("room:p")
            expected = {
                "ada": [{"connection": ANY, "meta": {"name": "ada"}}],
                "bob": [{"connection": ANY, "meta": {"name": "bob"}}],
            }
            assert bob.presence("room:p") == expected
            assert ada.presence("room:p") == expected
            with connect("bob") as bob2:  # a second tab of bob's
                bob2.join("room:p")
                assert len(ada.presence("room:p")["bob"]) == 2
            assert len(ada.presence("room:p")["bob"]) == 1
        assert list(ada.presence("room:p")) == ["ada"]
        diffs = [n.frame for n in ada.notices if n.kind == "presence"]
        assert [(d["event"], d["user"]) for d in diffs] == [
            ("join", "ada"),
            ("join", "bob"),
            ("join", "bob"),
            ("leave", "bob"),
            ("leave", "bob"),
        ]
    assert hub.stats()["connections"] == 0


def test_history_resume_replay_and_resync(connect: Connect) -> None:
    with connect("bob") as bob:
        bob.join("room:h")
        positions = [bob.push("room:h", "say", {"text": f"m{n}"})["position"] for n in range(5)]
    with connect("ada") as ada:
        # A first join gets the channel's replay (3) and the room's position.
        ada.join("room:h")
        got = [ada.receive_event("room:h").payload["text"] for _ in range(3)]
        assert got == ["m2", "m3", "m4"]
        assert ada.position("room:h") == positions[-1]
        ada.assert_no_broadcast()
    with connect("ada") as ada:
        # A rejoin from a position gets exactly what came after it.
        ada.join("room:h", since=positions[1])
        got = [ada.receive_event("room:h").payload["text"] for _ in range(3)]
        assert got == ["m2", "m3", "m4"]
        ada.assert_no_broadcast()
    with connect("ada") as ada:
        ada.send({"type": "join", "ref": "r", "room": "room:h", "since": "lost-epoch:2"})
        ada.sync()
        resync = [n.frame for n in ada.notices if n.kind == "resync"]
        assert resync == [{"type": "resync", "room": "room:h", "position": positions[-1]}]
    with connect("ada") as ada, pytest.raises(ReplyError, match="invalid_since"):
        ada.join("room:h", since="nonsense")


def test_the_position_in_the_join_reply_lets_a_quiet_client_resume(connect: Connect) -> None:
    with connect("ada") as ada:
        ada.send({"type": "join", "ref": "j", "room": "room:q"})
        reply = ada._reply("j")
        assert reply.position is not None
        assert reply.position.endswith(":0")
    with connect("bob") as bob:
        bob.join("room:q")
        bob.push("room:q", "say", {"text": "while ada was away"})
    with connect("ada") as ada:
        ada.send({"type": "join", "ref": "j", "room": "room:q", "since": reply.position})
        ada._reply("j")
        assert ada.receive_event("room:q").payload == {"text": "while ada was away"}


def test_direct_pushes_and_the_context(connect: Connect) -> None:
    with connect("ada") as ada:
        ada.join("room:1")
        assert ada.push("room:1", "whoami") == {
            "user": "ada",
            "meta": {"name": "ada"},
            "room": "room:1",
        }
        event = ada.receive_event("room:1")
        assert (event.event, event.payload, event.position) == ("private", {"for": "ada"}, None)


def test_broadcast_from_outside_a_handler(hub: Hub) -> None:
    app, channels, _ = build(hub)
    with TestClient(app) as client, connect_channels(client, "/ws?user=ada") as ada:
        ada.join("room:news")
        client.portal.call(channels.broadcast, "room:news", "said", {"text": "extra"})  # type: ignore[union-attr]
        ada.assert_broadcast("room:news", "said", {"text": "extra"})


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (b"binary", 1003, "text frames only"),
        ("{not json", 1007, "a frame must be a JSON object"),
        ("[1, 2]", 1007, "a frame must be a JSON object"),
        ('{"type": "shout"}', 1007, "unknown frame type 'shout'"),
        ('{"room": "x"}', 1007, "unknown frame type None"),
        ('{"type": "join"}', 1007, "a join frame needs a 'room' string"),
        ('{"type": "push", "room": "x"}', 1007, "a push frame needs an 'event' string"),
        ('{"type": "push", "room": "x", "event": "e", "ref": [1]}', 1007, "'ref' must be"),
        ('{"type": "join", "room": "x", "since": 5}', 1007, "'since' must be"),
        ('{"type": "ping", "pad": "' + "x" * 70_000 + '"}', 1009, "at most 65536"),
    ],
)
def test_protocol_violations_close_the_connection(
    client: TestClient, frame: str | bytes, code: int, reason: str
) -> None:
    with client.websocket_connect("/ws?user=ada") as ws:
        if isinstance(frame, bytes):
            ws.send_bytes(frame)
        else:
            ws.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == code
    assert reason in (info.value.reason or "")


def test_identify_can_refuse_a_connection(client: TestClient) -> None:
    with client.websocket_connect("/ws?user=banned") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert (info.value.code, info.value.reason) == (1008, "not allowed to connect")


def test_a_member_that_stops_answering_heartbeats_is_closed(backend: str) -> None:
    hub = make_hub(heartbeat_interval=0.05, heartbeat_timeout=0.3)
    app, _, _ = build(hub)
    with TestClient(app, backend=backend) as client:  # type: ignore[arg-type]
        # One that answers (the helper pongs every ping) stays through many pings ...
        with connect_channels(client, "/ws?user=ada") as ada:
            ada.join("room:1")
            while sum(n.kind == "ping" for n in ada.notices) < 12:
                ada.sync()
            assert ada.push("room:1", "count", 1) == 1
        # ... one that reads but never answers is closed with 1001 and leaves its rooms.
        with client.websocket_connect("/ws?user=bob") as ws:
            ws.send_text('{"type":"join","ref":"1","room":"room:1"}')
            with pytest.raises(WebSocketDisconnect) as info:
                while True:
                    ws.receive_text()
            assert (info.value.code, info.value.reason) == (1001, "heartbeat timeout")
        assert hub.stats()["heartbeat"]["timeouts"] == 1


def test_channels_need_an_envelope_hub_and_presence_events() -> None:
    with pytest.raises(ValueError, match="envelope=True"):
        Channels(Hub("memory://"))
    with pytest.raises(ValueError, match="presence_events=True"):
        Channels(Hub("memory://", envelope=True), [Channel("a:{b}")])
    Channels(Hub("memory://", envelope=True), [Channel("a:{b}", presence=False)])
    hub = make_hub()
    with pytest.raises(ValueError, match="two channels named 'a'"):
        Channels(hub, [Channel("a:{b}"), Channel("a")])


def test_declaration_errors() -> None:
    channel = Channel("x:{id}")
    with pytest.raises(ValueError, match="invalid channel pattern"):
        Channel("@x")

    @channel.on("e")
    async def e(ctx: Any, payload: int) -> None: ...

    with pytest.raises(ValueError, match="already handles 'e'"):

        @channel.on("e")
        async def again(ctx: Any, payload: int) -> None: ...

    with pytest.raises(TypeError, match="must take two parameters"):

        @channel.on("f")
        async def one(ctx: Any) -> None: ...

    with pytest.raises(TypeError, match="unsupported payload type"):

        @channel.on("g")
        async def weird(ctx: Any, payload: object()) -> None: ...  # type: ignore[valid-type]

    assert channel.match("x:1") == {"id": "1"}
    assert channel.match("x:1:2") is None
    assert channel.match("y:1") is None


def test_the_client_script_and_the_asyncapi_route(client: TestClient) -> None:
    script = client.get("/brillo-channels.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "export class Socket" in script.text
    etag = script.headers["etag"]
    assert client.get("/brillo-channels.js", headers={"if-none-match": etag}).status_code == 304
    assert client.head("/brillo-channels.js").content == b""
    assert client.post("/brillo-channels.js").status_code == 405
    doc = client.get("/asyncapi.json").json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["default"] == {
        "host": "testserver",
        "protocol": "ws",
        "pathname": "/ws",
    }
    assert json.dumps(doc)  # JSON all the way
