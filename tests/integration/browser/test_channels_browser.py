"""The shipped browser client (brillo-channels.js) in real chromium against real uvicorn.

The app is examples/realtime/channels_chat.py, run in child processes that share a real
redis-server; messages are produced over the wire by a plain ``websockets`` client.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import ClientConnection, connect

from brillo.testing import LiveProcess

TIMEOUT = 15_000  # ms, for each wait on the page
ROOT = Path(__file__).resolve().parents[3]

# Playwright's driver connection runs an event loop whose executor thread outlives one test.
pytestmark = pytest.mark.allow_threads("asyncio_")


@pytest.fixture
def chat(redis_url: str) -> Iterator[Callable[..., LiveProcess]]:
    """Factory: the channels example under uvicorn in a child process, sharing one Redis."""
    started: list[LiveProcess] = []

    def start(heartbeat: float | None = None, timeout: float = 5.0) -> LiveProcess:
        env = dict(os.environ, BRILLO_REALTIME_URL=redis_url, BRILLO_PRESENCE_TTL="3")
        if heartbeat is not None:
            env["BRILLO_HEARTBEAT"] = str(heartbeat)
            env["BRILLO_HEARTBEAT_TIMEOUT"] = str(timeout)
        proc = LiveProcess(
            "examples.realtime.channels_chat:create_app", factory=True, env=env, cwd=ROOT
        )
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in reversed(started):
        if proc.process is not None:
            proc.stop()


class Producer:
    """A plain websockets client that joins a room and pushes ``say`` frames, one reply each."""

    def __init__(self, ws: ClientConnection, room: str) -> None:
        self.ws = ws
        self.room = room
        self.acked = 0
        self.ref = 0
        self.request({"type": "join", "room": room})

    def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        self.ref += 1
        ref = str(self.ref)
        self.ws.send(json.dumps({**frame, "ref": ref}))
        while True:
            reply: dict[str, Any] = json.loads(self.ws.recv(timeout=10))
            if reply.get("type") == "ping":
                self.ws.send('{"type":"pong"}')
            if reply.get("type") == "reply" and reply["ref"] == ref:
                assert "error" not in reply, reply
                return reply

    def say(self, text: str) -> None:
        self.request({"type": "push", "room": self.room, "event": "say", "payload": {"text": text}})
        self.acked += 1


def open_page(browser: Browser, server: LiveProcess, user: str, room: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{server.url}/?user={user}&room={room}")
    page.wait_for_function("() => window.room && window.room.state === 'joined'")
    return page


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polls a condition of another process; bounded by the deadline


def test_kill_and_restart_during_a_burst_every_message_once_in_order(
    browser: Browser, chat: Callable[..., LiveProcess]
) -> None:
    viewer_server, producer_server = chat(heartbeat=1.0), chat(heartbeat=1.0)
    page = open_page(browser, viewer_server, "viewer", "burst")
    page.evaluate(
        "() => { window.states = []; window.room.socket.addEventListener('state',"
        " (e) => window.states.push(e.detail.state)); }"
    )
    producer_ws = connect(
        producer_server.ws_url + "/ws?user=producer",
        subprotocols=["brillo.channels.v1"],  # type: ignore[list-item]
    ).__enter__()
    producer = Producer(producer_ws, "room:burst")
    total = 300
    errors: list[BaseException] = []

    def burst() -> None:
        try:
            for n in range(total):
                producer.say(f"m{n}")
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=burst, name="producer")
    thread.start()
    try:
        wait_until(lambda: page.evaluate("window.received.length") >= 50, "the first messages")
        viewer_server.kill()  # SIGKILL while the burst goes on
        killed_at = producer.acked
        expect(page.get_by_test_id("state")).not_to_have_text("open")
        # A push while the server is gone waits, unsent, and fails on its timeout.
        code = page.evaluate(
            "() => window.room.push('say', {text: 'never sent'}, {timeout: 300})"
            ".then(() => 'resolved', (e) => e.code)"
        )
        assert code == "timeout"
        wait_until(lambda: producer.acked >= killed_at + 60 or not thread.is_alive(), "pushes")
        viewer_server.start()  # same port: the page's reconnect loop finds it
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert not errors, errors
        page.wait_for_function(f"() => window.received.length >= {total}", timeout=TIMEOUT)
        expect(page.get_by_test_id("state")).to_have_text("open")
        producer.say("after")  # nothing left in flight: the last message closes the count
        page.wait_for_function("() => window.received.includes('after')", timeout=TIMEOUT)
        received = page.evaluate("window.received")
        assert received == [f"m{n}" for n in range(total)] + ["after"]
        states = page.evaluate("window.states")
        assert "reconnecting" in states
        assert states[-1] == "open"
    finally:
        thread.join(timeout=60)
        producer_ws.__exit__(None, None, None)
        page.context.close()


def test_presence_pushes_and_heartbeats(browser: Browser, chat: Callable[..., LiveProcess]) -> None:
    # Pings every 100 ms; a page silent for 1.5 s would be closed (the margin is for a loaded
    # machine: a page answers each ping at once).
    server = chat(heartbeat=0.1, timeout=1.5)
    ada = open_page(browser, server, "ada", "lobby")
    bob = open_page(browser, server, "bob", "lobby")
    try:
        expect(ada.get_by_test_id("here")).to_have_text("ada, bob")
        expect(bob.get_by_test_id("here")).to_have_text("ada, bob")
        reply = ada.evaluate("() => window.room.push('say', {text: 'hello'})")
        assert reply["position"]
        expect(bob.get_by_test_id("log")).to_contain_text("ada: hello")
        error = ada.evaluate(
            "() => window.room.push('say', {text: 5}).then(() => null,"
            " (e) => ({code: e.code, room: e.room}))"
        )
        assert error == {"code": "invalid_payload", "room": "room:lobby"}
        refused = ada.evaluate(
            "() => window.room.socket.channel('room:secret').join().then(() => null,"
            " (e) => e.code + ': ' + e.message.split(': ').slice(1).join(': '))"
        )
        assert refused == "forbidden: room:secret is invitation-only"

        # The hub pings both pages every 100 ms; each page answers: after 80 pings (4 s, well
        # past the timeout) nobody has been closed for silence.
        def heartbeat() -> dict[str, int]:
            stats: dict[str, Any] = httpx.get(server.url + "/stats", timeout=5).json()
            return stats["heartbeat"]  # type: ignore[no-any-return]

        wait_until(lambda: heartbeat()["pings"] >= 80, "80 heartbeat pings")
        assert heartbeat()["timeouts"] == 0
        expect(ada.get_by_test_id("state")).to_have_text("open")

        bob.context.close()
        expect(ada.get_by_test_id("here")).to_have_text("ada")
    finally:
        ada.context.close()
        if not bob.is_closed():
            bob.context.close()
