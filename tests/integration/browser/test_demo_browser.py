"""The demo as users meet it: real chromium pages against the demo under real uvicorn."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from brillo.testing import LiveProcess

TIMEOUT = 15_000  # ms, for each wait on the page

# Playwright's driver connection runs an event loop whose executor thread outlives one test.
pytestmark = pytest.mark.allow_threads("asyncio_")


def sign_in(context: BrowserContext, base: str, name: str, room: str) -> Page:
    """Open the demo, pick a name and a room, and wait until the chat is online."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(base + "/")
    page.get_by_test_id("name").fill(name)
    page.get_by_test_id("room").fill(room)
    page.get_by_test_id("join").click()
    page.wait_for_url(f"**/chat?room={room}")
    expect(page.get_by_test_id("status")).to_have_text("online", timeout=TIMEOUT)
    return page


def say(page: Page, text: str) -> None:
    page.get_by_test_id("text").fill(text)
    page.get_by_test_id("send").click()


def messages(page: Page, text: str) -> Locator:
    return page.get_by_test_id("messages").locator("li", has_text=text)


def test_chat_messages_and_presence(
    browser: Browser,
    demo: Callable[..., LiveProcess],
    save_screenshot: Callable[[Page, str], None],
) -> None:
    server = demo()
    ada_ctx, bob_ctx = browser.new_context(), browser.new_context()
    try:
        landing = ada_ctx.new_page()
        landing.goto(server.url + "/")
        save_screenshot(landing, "index")
        landing.close()
        ada = sign_in(ada_ctx, server.url, "Ada", "lobby")
        bob = sign_in(bob_ctx, server.url, "Bob", "lobby")
        expect(ada.get_by_test_id("presence")).to_contain_text("Bob")
        expect(bob.get_by_test_id("presence")).to_contain_text("Ada")

        say(ada, "hello from Ada")
        expect(messages(bob, "hello from Ada")).to_have_count(1)
        say(bob, "hi Ada, Bob here")
        expect(messages(ada, "hi Ada, Bob here")).to_have_count(1)

        bob.get_by_test_id("text").press_sequentially("typing…")
        expect(ada.get_by_test_id("typing")).to_contain_text("Bob is typing")
        save_screenshot(ada, "chat")

        bob_ctx.close()
        expect(ada.get_by_test_id("presence")).not_to_contain_text("Bob")
        expect(messages(ada, "Bob left")).to_have_count(1)
    finally:
        ada_ctx.close()
        bob_ctx.close()


def test_chat_reconnects_and_replays_after_a_server_is_killed(
    browser: Browser, demo: Callable[..., LiveProcess]
) -> None:
    # Two processes share one Redis: Ada talks to the first, Bob to the second.
    first, second = demo(), demo()
    ada_ctx, bob_ctx = browser.new_context(), browser.new_context()
    try:
        ada = sign_in(ada_ctx, first.url, "Ada", "replay")
        bob = sign_in(bob_ctx, second.url, "Bob", "replay")
        say(bob, "before the crash")
        expect(messages(ada, "before the crash")).to_have_count(1)

        first.kill()  # SIGKILL: no goodbye, the page loses its socket
        expect(ada.get_by_test_id("status")).not_to_have_text("online")
        for n in range(3):
            say(bob, f"missed {n}")
        expect(messages(bob, "missed 2")).to_have_count(1)

        first.start()  # same port: the page's reconnect loop finds it
        expect(ada.get_by_test_id("status")).to_have_text("online", timeout=TIMEOUT)
        for n in range(3):
            expect(messages(ada, f"missed {n}")).to_have_count(1)
        expect(messages(ada, "before the crash")).to_have_count(1)  # no duplicate after replay
        texts = ada.get_by_test_id("messages").locator("li:not(.notice) .text").all_inner_texts()
        assert texts == ["before the crash", "missed 0", "missed 1", "missed 2"]
    finally:
        ada_ctx.close()
        bob_ctx.close()


def test_dashboard_numbers_change(
    browser: Browser,
    demo: Callable[..., LiveProcess],
    save_screenshot: Callable[[Page, str], None],
) -> None:
    server = demo()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(server.url + "/dashboard")
        ticks = page.get_by_test_id("ticks")
        expect(ticks).to_have_text("2", timeout=TIMEOUT)
        expect(ticks).to_have_text("3", timeout=TIMEOUT)
        # the dashboard's own socket is counted
        expect(page.get_by_test_id("connections")).not_to_have_text("–")
        expect(page.get_by_test_id("rss")).not_to_have_text("–")
        save_screenshot(page, "dashboard")
    finally:
        context.close()


@pytest.mark.parametrize("rounds", [15])
def test_editor_concurrent_typing_converges(
    browser: Browser,
    demo: Callable[..., LiveProcess],
    save_screenshot: Callable[[Page, str], None],
    rounds: int,
) -> None:
    server = demo()
    contexts = [browser.new_context(), browser.new_context()]
    try:
        pages = []
        for context in contexts:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT)
            page.goto(server.url + "/editor?doc=converge")
            expect(page.get_by_test_id("status")).to_have_text("online")
            expect(page.get_by_test_id("editor")).to_be_enabled()
            pages.append(page)
        left, right = pages
        left.get_by_test_id("editor").click()
        right.get_by_test_id("editor").click()
        # Interleave keystrokes without waiting for the server: edits cross on the wire.
        for n in range(rounds):
            left.keyboard.type(f"a{n % 10}")
            right.keyboard.type(f"b{n % 10}")
            if n % 5 == 4:
                right.keyboard.press("Home")  # jump around: edits land in different places
        # Both settle (nothing in flight) on the same version and the same text, which holds
        # every keystroke of both.
        settled = "() => { const s = window.editorState(); return s.synced ? s : null; }"
        states = [p.wait_for_function(settled, timeout=TIMEOUT).json_value() for p in pages]
        for _ in range(50):
            states = [p.wait_for_function(settled, timeout=TIMEOUT).json_value() for p in pages]
            if states[0] == states[1]:
                break
            left.wait_for_timeout(100)
        assert states[0] == states[1]
        final = states[0]["text"]
        assert len(final) == 4 * rounds
        assert final.count("a") == rounds
        assert final.count("b") == rounds
        assert pages[1].get_by_test_id("editor").input_value() == final
        save_screenshot(left, "editor")
    finally:
        for context in contexts:
            context.close()
