"""The hub's rules as plain objects, without an event loop: queue policy, fan-out, resync, encoding,
which sockets may be sent to eagerly and which send errors mean the client is gone."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from brillo.realtime._messages import Encoder
from brillo.realtime._outbox import Item, Outbox, Outboxes
from brillo.realtime._rules import QueueRule, Verdict, held_is_new, resync_required
from brillo.realtime._sockets import client_gone, eager_send_safe
from brillo.realtime._stats import Counters
from brillo.realtime.backends.base import Position, PresenceEntry, PresenceEvent
from brillo.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected
from tests.support.realtime import ws_scope


class Socket:
    """A socket that is never sent to here (nothing runs a writer in these tests)."""

    async def send(self, message: Any) -> None:
        raise AssertionError("no send expected")

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        raise AssertionError("no close expected")


def item(counters: Counters, n: int = 0, offset: int | None = None) -> Item:
    return Item({"type": "websocket.send", "text": str(n)}, counters, offset)


def texts(outbox: Outbox) -> list[str]:
    return [queued.message["text"] for queued in outbox._queue]


# -- the queue rule ------------------------------------------------------------------------------


def test_queue_rule_verdicts() -> None:
    drop = QueueRule(4, "drop_oldest")
    close = QueueRule(4, "close")
    assert [drop.verdict(n) for n in range(4)] == [Verdict.APPEND] * 4
    assert drop.verdict(4) is Verdict.DROP_OLDEST
    assert [close.verdict(n) for n in range(4)] == [Verdict.APPEND] * 4
    assert close.verdict(4) is Verdict.CLOSE
    assert drop.lag_mark == 2
    assert QueueRule(1, "close").lag_mark == 1
    # an idle writer two messages behind lags; a busy one is simply working through its queue
    assert not drop.lagging(1, writer_busy=False)
    assert drop.lagging(2, writer_busy=False)
    assert not drop.lagging(3, writer_busy=True)


def test_queue_rule_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        QueueRule(0, "close")
    with pytest.raises(ValueError, match="overflow must be"):
        QueueRule(4, "block")  # type: ignore[arg-type]


def test_offer_drop_oldest_keeps_the_newest() -> None:
    counters = Counters()
    outbox = Outbox("k", Socket(), QueueRule(3, "drop_oldest"), eager=False)
    lagging = [outbox.offer(item(counters, n)) for n in range(5)]
    assert texts(outbox) == ["2", "3", "4"]
    assert lagging == [False, True, True, True, True]  # idle writer, lag mark 1
    assert (outbox.dropped, counters.dropped, counters.queued) == (2, 2, 3)
    assert not outbox.closing


def test_offer_close_policy_discards_and_closes_once() -> None:
    counters = Counters()
    outbox = Outbox("k", Socket(), QueueRule(2, "close"), eager=False)
    for n in range(4):
        outbox.offer(item(counters, n))
    assert outbox.closing
    assert outbox._close_code == 1013
    assert texts(outbox) == []
    # the two queued and the one that overflowed; the fourth came after the close
    assert (outbox.dropped, counters.dropped, counters.queued) == (3, 3, 0)


def test_shutdown_close_keeps_the_queue_and_adds_the_farewell_past_the_bound() -> None:
    counters, direct = Counters(), Counters()
    outbox = Outbox("k", Socket(), QueueRule(2, "close"), eager=False)
    outbox.offer(item(counters, 1))
    outbox.offer(item(counters, 2))
    outbox.close(1001, "server shutting down", item(direct, 9))
    assert texts(outbox) == ["1", "2", "9"]
    assert (counters.queued, direct.queued, outbox.dropped) == (2, 1, 0)
    outbox.close(1013, "too late")  # the first close wins
    assert outbox._close_code == 1001


def test_retire_empties_the_queue_and_reports_drops_once() -> None:
    counters = Counters()
    outbox = Outbox("k", Socket(), QueueRule(1, "drop_oldest"), eager=False)
    outbox.offer(item(counters, 1))
    outbox.offer(item(counters, 2))
    assert outbox.retire() == 1
    assert outbox.retire() == 0
    assert (outbox.queued, counters.queued, counters.dropped) == (0, 0, 1)
    assert not outbox.offer(item(counters, 3))
    assert outbox.queued == 0


def test_fan_out_skips_the_excluded_holds_for_the_recovering_and_queues_for_the_rest() -> None:
    outboxes = Outboxes(QueueRule(4, "drop_oldest"), write_timeout=1.0, eager_sends=True)
    a, b, c = (outboxes.new(key, Socket(), eager=True) for key in "abc")
    recovering: dict[Outbox, list[Item]] = {c: []}
    counters = Counters()
    first = item(counters, 1)
    assert not outboxes.fan_out([a, b, c], recovering, first, exclude="b")
    assert texts(a) == ["1"]
    assert texts(b) == []
    assert recovering[c] == [first]
    assert texts(c) == []
    assert counters.queued == 1
    # the queue rule takes over at the lag mark: a lagging idle writer is reported
    lagging = [outboxes.fan_out([a], {}, item(counters, n), "") for n in range(2, 7)]
    assert lagging == [False, True, True, True, True]
    assert texts(a) == ["3", "4", "5", "6"]
    assert a.dropped == 2


def test_fan_out_never_sends_eagerly_without_an_event_loop() -> None:
    """Outboxes bound to no loop (or to trio) treat every socket as not eager."""
    outboxes = Outboxes(QueueRule(4, "drop_oldest"), write_timeout=1.0, eager_sends=True)
    outbox = outboxes.new("a", Socket(), eager=True)
    assert outbox._eager_send is None


# -- recovery ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "current", "first_offset", "resync"),
    [
        (Position("e", 5), Position("e", 9), 3, False),  # history reaches back: replay 6..9
        (Position("e", 5), Position("e", 9), 6, False),  # just reaches: 6 is retained
        (Position("e", 5), Position("e", 9), 7, True),  # 6 is gone
        (Position("e", 9), Position("e", 9), 10, False),  # up to date, nothing retained
        (Position("e", 10), Position("e", 9), 1, True),  # a position from the future
        (Position("old", 5), Position("e", 9), 1, True),  # history was lost
    ],
)
def test_resync_rule(since: Position, current: Position, first_offset: int, resync: bool) -> None:
    assert resync_required(since, current, first_offset) is resync


def test_held_messages_after_the_history_are_new() -> None:
    assert held_is_new(None, 5)
    assert not held_is_new(5, 5)
    assert held_is_new(6, 5)


# -- encoding ------------------------------------------------------------------------------------


def test_encoder_raw_frames() -> None:
    encoder = Encoder(envelope=False)
    assert encoder.encode("é") == "é"
    assert encoder.encode(bytearray(b"\x01")) == b"\x01"
    assert encoder.encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    with pytest.raises(TypeError, match="str, bytes or JSON-serialisable, not object"):
        encoder.encode(object())
    assert encoder.frame("t") == {"type": "websocket.send", "text": "t"}
    assert encoder.frame(b"b") == {"type": "websocket.send", "bytes": b"b"}
    assert encoder.room_frame("r", "t", Position("e", 1)) == encoder.frame("t")


def test_encoder_envelopes_and_notices() -> None:
    encoder = Encoder(envelope=True)
    with pytest.raises(TypeError, match="JSON data only"):
        encoder.encode(b"raw")
    assert encoder.encode("text") == '"text"'
    frame = encoder.room_frame('r"1', '{"n":1}', Position("e", 7))
    assert json.loads(frame["text"]) == {
        "type": "message",
        "room": 'r"1',
        "position": "e:7",
        "data": {"n": 1},
    }
    assert json.loads(encoder.room_frame("r", "1", None)["text"])["position"] is None
    assert json.loads(encoder.resync_frame("r", Position("e", 3))["text"]) == {
        "type": "resync",
        "room": "r",
        "position": "e:3",
    }
    event = PresenceEvent("r", "leave", PresenceEntry("c.1", "ada", {"n": 1}), expired=True)
    assert json.loads(encoder.presence_frame(event)["text"]) == {
        "type": "presence",
        "event": "leave",
        "room": "r",
        "user": "ada",
        "connection": "c.1",
        "meta": {"n": 1},
        "expired": True,
    }


# -- sockets -------------------------------------------------------------------------------------


async def _receive() -> Any:
    return {"type": "websocket.connect"}


async def _plain_send(message: Any) -> None:
    return None


def test_eager_send_safety_is_declared_or_known() -> None:
    websocket = WebSocket(ws_scope(), _receive, _plain_send)
    assert not eager_send_safe(websocket)  # an ASGI send nobody vouches for
    websocket.eager_send_safe = True  # type: ignore[attr-defined]
    assert eager_send_safe(websocket)

    class Declared(Socket):
        eager_send_safe = True

    class OptedOut(Socket):
        eager_send_safe = False

    assert eager_send_safe(Declared())
    assert not eager_send_safe(OptedOut())
    assert not eager_send_safe(Socket())


def test_client_gone_errors() -> None:
    class ConnectionClosed(Exception):  # named like websockets' own base class
        pass

    class ConnectionClosedOK(ConnectionClosed):
        pass

    for gone in (
        OSError("reset"),
        ConnectionResetError(),
        WebSocketDisconnect(1006),
        WebSocketDisconnected("closed"),
        anyio.BrokenResourceError(),
        anyio.ClosedResourceError(),
        anyio.EndOfStream(),
        ConnectionClosedOK(),
    ):
        assert client_gone(gone), gone
    for bug in (RuntimeError("cancel scope"), ValueError(), KeyError()):
        assert not client_gone(bug), bug
