# ruff: noqa: E501  (the scenarios are JavaScript, kept one statement a line)
"""brillo-channels.js rule by rule, in real chromium, over a scripted WebSocket.

The module is served by brillo (``Channels.routes``) under a real uvicorn; each test hands the
client a fake WebSocket class (the ``WebSocket`` option) whose frames the test scripts, so
duplicates, reconnects, presence races and timeouts happen exactly when the test says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.realtime.channels import Channels
from brillo.responses import HTMLResponse
from brillo.routing import Route
from brillo.testing import LiveServer

pytestmark = pytest.mark.allow_threads("asyncio_")

FAKE = """
window.FakeWS = class FakeWS {
  constructor(url, protocols) {
    this.url = url; this.protocols = protocols; this.sent = []; this.readyState = 0;
    this.closedWith = null; FakeWS.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code, reason) { this.readyState = 3; this.closedWith = code; }
  open() { this.readyState = 1; this.onopen(); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
  drop(code = 1006, reason = "") { this.readyState = 3; this.onclose({ code, reason }); }
  last(type) { return [...this.sent].reverse().find((f) => f.type === type); }
};
window.FakeWS.all = [];
window.tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    hub = Hub("memory://", envelope=True, presence_events=True)
    channels = Channels(hub)

    async def blank(request: Any) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>unit</title>")

    app = Brillo(routes=[Route("/", blank), *channels.routes("/ws")], lifespan=hub.lifespan)
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def run(browser: Browser, server: LiveServer) -> Iterator[Callable[[str], Any]]:
    page: Page = browser.new_page()
    page.goto(server.url + "/")
    page.evaluate(FAKE)

    def evaluate(body: str) -> Any:
        script = (
            "async () => { const m = await import('/brillo-channels.js');"
            " const { Socket } = m; const W = window.FakeWS;" + body + "}"
        )
        return page.evaluate(script)

    yield evaluate
    page.close()


def test_join_push_reply_and_duplicates_dropped(run: Callable[[str], Any]) -> None:
    result = run(
        """
        const socket = new Socket("/ws", { WebSocket: W, heartbeat: 0 });
        const room = socket.channel("chat:1", { hello: 1 });
        const seen = [];
        room.on("said", (payload, message) => seen.push([payload.n, message.position]));
        const joined = room.join();
        const ws = W.all[0];
        ws.open();
        const join = ws.last("join");
        ws.deliver({ type: "message", room: "chat:1", position: "e:5", data: { event: "said", payload: { n: 5 } } });
        ws.deliver({ type: "reply", ref: join.ref, room: "chat:1", position: "e:5", payload: { ok: 1 } });
        const reply = await joined;
        const pushed = room.push("say", { text: "x" });
        const push = ws.last("push");
        ws.deliver({ type: "reply", ref: push.ref, room: "chat:1", payload: { done: true } });
        for (const n of [6, 5, 6, 7]) {
          ws.deliver({ type: "message", room: "chat:1", position: "e:" + n, data: { event: "said", payload: { n } } });
        }
        const failed = room.push("say", {}).catch((e) => [e.code, e.message, e.room]);
        ws.deliver({ type: "reply", ref: ws.last("push").ref, room: "chat:1", error: { code: "invalid_payload", message: "bad" } });
        return { join, url: ws.url, protocols: ws.protocols, reply, pushed: await pushed, push,
                 seen, failed: await failed, position: room.position };
        """
    )
    assert result["join"] == {"type": "join", "ref": "1", "room": "chat:1", "payload": {"hello": 1}}
    assert result["url"].startswith("ws://")
    assert result["url"].endswith("/ws")
    assert result["protocols"] == ["brillo.channels.v1"]
    assert result["reply"] == {"ok": 1}
    assert result["pushed"] == {"done": True}
    assert result["push"] == {
        "type": "push",
        "ref": "2",
        "room": "chat:1",
        "event": "say",
        "payload": {"text": "x"},
    }
    assert result["seen"] == [[5, "e:5"], [6, "e:6"], [7, "e:7"]]  # 5 and 6 not twice
    assert result["failed"] == ["invalid_payload", "invalid_payload: bad", "chat:1"]
    assert result["position"] == "e:7"


def test_reconnect_backoff_rejoin_from_the_last_position_and_buffered_pushes(
    run: Callable[[str], Any],
) -> None:
    result = run(
        """
        const socket = new Socket("/ws", { WebSocket: W, heartbeat: 0, minDelay: 40, maxDelay: 100,
                                           random: () => 1 });
        const states = [];
        socket.addEventListener("state", (e) => states.push([e.detail.state, e.detail.delay ?? null]));
        const room = socket.channel("chat:1");
        const joined = room.join();
        W.all[0].open();
        W.all[0].deliver({ type: "reply", ref: W.all[0].last("join").ref, room: "chat:1", position: "e:3" });
        await joined;
        W.all[0].deliver({ type: "message", room: "chat:1", position: "e:4", data: { event: "x", payload: 1 } });
        const inFlight = room.push("a", 1).catch((e) => e.code);   // sent, then the socket dies
        W.all[0].drop();
        const buffered = room.push("b", 2);                        // waits for the rejoin
        const lost = await inFlight;
        await tick(60);                                            // first retry after 40 ms
        W.all[1].drop();                                           // refused again
        await tick(120);                                           // then 80 ms
        const ws = W.all[2];
        ws.open();
        const rejoin = ws.last("join");
        const before = ws.sent.filter((f) => f.type === "push").length;
        ws.deliver({ type: "reply", ref: rejoin.ref, room: "chat:1", position: "e:9" });
        await tick(0);
        const sentAfter = ws.sent.filter((f) => f.type === "push");
        ws.deliver({ type: "reply", ref: sentAfter[0].ref, room: "chat:1", payload: "ok" });
        return { states, lost, rejoin, before, sentAfter, buffered: await buffered,
                 sockets: W.all.length, position: room.position, roomState: room.state };
        """
    )
    assert result["lost"] == "disconnected"
    assert result["rejoin"]["since"] == "e:4"  # from the last message seen
    assert result["before"] == 0  # the buffered push waits for the join reply
    assert [f["event"] for f in result["sentAfter"]] == ["b"]
    assert result["buffered"] == "ok"
    assert result["sockets"] == 3
    assert result["position"] == "e:9"
    assert result["roomState"] == "joined"
    # equal jitter with random() = 1: the full ceiling, doubling from minDelay
    delays = [delay for state, delay in result["states"] if delay is not None]
    assert delays == [40, 80]
    assert [s for s, _ in result["states"]][:2] == ["connecting", "open"]
    assert result["states"][-1][0] == "open"


def test_presence_state_and_diffs_around_a_join(run: Callable[[str], Any]) -> None:
    result = run(
        """
        const socket = new Socket("/ws", { WebSocket: W, heartbeat: 0 });
        const room = socket.channel("r");
        const joined = room.join();
        const ws = W.all[0];
        ws.open();
        const diff = (event, user, connection) => ({ type: "presence", event, room: "r", user, connection, meta: {} });
        // Between the join and its presence state: bob leaves after the snapshot was read
        // (the state still lists him), carol joins before it (the state lists her too).
        ws.deliver(diff("join", "carol", "c1"));
        ws.deliver(diff("leave", "bob", "b1"));
        ws.deliver({ type: "presence_state", room: "r", presence: {
          bob: [{ connection: "b1", meta: {} }], carol: [{ connection: "c1", meta: {} }] } });
        const afterState = room.presence;
        ws.deliver({ type: "reply", ref: ws.last("join").ref, room: "r", position: "e:0" });
        await joined;
        ws.deliver(diff("join", "dan", "d1"));
        ws.deliver(diff("join", "dan", "d2"));
        ws.deliver(diff("leave", "dan", "d1"));
        return { afterState, later: room.presence };
        """
    )
    assert result["afterState"] == {"carol": [{"connection": "c1", "meta": {}}]}
    assert result["later"] == {
        "carol": [{"connection": "c1", "meta": {}}],
        "dan": [{"connection": "d2", "meta": {}}],
    }


def test_timeouts_pings_heartbeat_and_fatal_closes(run: Callable[[str], Any]) -> None:
    result = run(
        """
        const socket = new Socket("/ws", { WebSocket: W, heartbeat: 100, minDelay: 10, random: () => 0 });
        const room = socket.channel("r");
        const joined = room.join();
        let ws = W.all[0];
        ws.open();
        ws.deliver({ type: "reply", ref: ws.last("join").ref, room: "r", position: null });
        await joined;
        ws.deliver({ type: "ping" });
        const pong = ws.last("pong");
        const timedOut = await room.push("slow", null, { timeout: 30 }).catch((e) => e.code);
        // Silent for 100 ms: the client pings; silent for 200 ms: it gives up on the socket.
        await tick(150);
        const clientPing = ws.last("ping");
        await tick(150);
        const closedWith = ws.closedWith;
        const reconnected = W.all.length;
        await tick(20);
        ws = W.all[W.all.length - 1];
        ws.open();
        ws.drop(1008, "not allowed");
        await tick(50);
        return { pong, timedOut, clientPing, closedWith, reconnected, final: socket.state,
                 sockets: W.all.length };
        """
    )
    assert result["pong"] == {"type": "pong"}
    assert result["timedOut"] == "timeout"
    assert result["clientPing"] == {"type": "ping"}
    assert result["closedWith"] == 4000
    assert result["final"] == "closed"  # 1008: no more reconnects
    assert result["sockets"] == 2


def test_a_refused_join_rejects_and_resync_resets(run: Callable[[str], Any]) -> None:
    result = run(
        """
        const socket = new Socket("/ws", { WebSocket: W, heartbeat: 0 });
        const secret = socket.channel("secret");
        const refused = secret.join().catch((e) => [e.code, e.message]);
        const ws = W.all[0];
        ws.open();
        ws.deliver({ type: "reply", ref: ws.last("join").ref, room: "secret",
                     error: { code: "forbidden", message: "invitation only" } });
        const room = socket.channel("r");
        const joined = room.join();
        ws.deliver({ type: "reply", ref: ws.last("join").ref, room: "r", position: "old:7" });
        await joined;
        let resynced = null;
        room.addEventListener("resync", (e) => { resynced = e.detail.position; });
        ws.deliver({ type: "resync", room: "r", position: "new:2" });
        ws.deliver({ type: "message", room: "r", position: "new:3", data: { event: "x", payload: 3 } });
        return { refused: await refused, secretState: secret.state, resynced, position: room.position };
        """
    )
    assert result["refused"] == ["forbidden", "forbidden: invitation only"]
    assert result["secretState"] == "errored"
    assert result["resynced"] == "new:2"
    assert result["position"] == "new:3"
