"""Cross-site WebSocket hijacking, tried in real chromium against the demo under real uvicorn.

A page served from another origin (the same host on a second port, so the browser sends the
demo's session cookie along: the classic attack) tries to open every socket the demo's own
pages open. The demo's origin check refuses each handshake (HTTP 403: the page sees the socket
fail), counts it on /metrics, and the demo's own pages keep working. A second demo process that
lists the other origin in ``BRILLO_ALLOWED_ORIGINS`` lets the same page in: the refusal is the
origin check and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from brillo.applications import Brillo
from brillo.requests import Request
from brillo.responses import HTMLResponse
from brillo.routing import Route
from brillo.testing import LiveProcess, LiveServer
from tests.integration.browser.conftest import SECRET
from tests.integration.browser.test_demo_browser import TIMEOUT, sign_in

pytestmark = pytest.mark.allow_threads("asyncio_")

ROOT = Path(__file__).resolve().parents[3]

# The other site's page: open each target socket, report how each attempt ended.
ATTACK = """<!doctype html><html><body><pre data-testid="result"></pre><script>
const targets = JSON.parse(new URLSearchParams(location.search).get("targets"));
const results = {};
function attempt(url) {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.onopen = () => { results[url] = "open"; socket.close(); resolve(); };
    socket.onclose = (event) => {
      if (!results[url]) results[url] = "refused " + event.code;
      resolve();
    };
  });
}
Promise.all(targets.map(attempt)).then(() => {
  document.querySelector("pre").textContent = JSON.stringify(results);
});
</script></body></html>"""


async def attack_page(request: Request) -> HTMLResponse:
    return HTMLResponse(ATTACK)


@pytest.fixture
def other_site() -> Iterator[LiveServer]:
    with LiveServer(Brillo(routes=[Route("/", attack_page)])) as server:
        yield server


@pytest.fixture
def start_demo(redis_url: str) -> Iterator[Callable[..., LiveProcess]]:
    started: list[LiveProcess] = []

    def start(**env: str) -> LiveProcess:
        variables = dict(os.environ, BRILLO_HUB_URL=redis_url, BRILLO_SECRET_KEY=SECRET, **env)
        process = LiveProcess("examples.demo.app:create_app", factory=True, env=variables, cwd=ROOT)
        started.append(process)
        process.start()
        return process

    yield start
    for process in reversed(started):
        process.stop()


def attack(page: Page, site: LiveServer, targets: list[str]) -> dict[str, str]:
    query = urllib.parse.urlencode({"targets": json.dumps(targets)})
    page.goto(f"{site.url}/?{query}")
    result = page.get_by_test_id("result")
    expect(result).not_to_be_empty(timeout=TIMEOUT)
    return dict(json.loads(result.text_content() or "{}"))


def refused_by_origin(demo: LiveProcess) -> int:
    with urllib.request.urlopen(demo.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r'_refused_total\{reason="origin"\} (\d+)', text)
    assert match is not None, text
    return int(match.group(1))


def test_another_origin_cannot_open_the_demos_sockets(
    browser: Browser,
    start_demo: Callable[..., LiveProcess],
    other_site: LiveServer,
) -> None:
    demo = start_demo()
    context = browser.new_context()
    try:
        # The demo's own pages: note every socket they open, and that they work.
        sockets: list[str] = []
        context.on("page", lambda page: page.on("websocket", lambda ws: sockets.append(ws.url)))
        chat = sign_in(context, demo.url, "Ada", "lobby")  # signed in: the cookie is set
        dashboard = context.new_page()
        dashboard.goto(demo.url + "/dashboard")
        expect(dashboard.get_by_test_id("status")).to_have_text("online", timeout=TIMEOUT)
        targets = sorted({url.split("?")[0] for url in sockets})
        assert targets, sockets
        assert refused_by_origin(demo) == 0

        # The other site's page, in the same browser (so with the demo's cookie).
        results = attack(context.new_page(), other_site, targets)
        assert set(results) == set(targets)
        assert all(outcome.startswith("refused") for outcome in results.values()), results
        assert refused_by_origin(demo) == len(targets)
        expect(chat.get_by_test_id("status")).to_have_text("online")

        # A demo that lists the other origin lets the very same page in.
        trusting = start_demo(BRILLO_ALLOWED_ORIGINS=other_site.url)
        moved = [url.replace(f":{demo.port}/", f":{trusting.port}/") for url in targets]
        results = attack(context.new_page(), other_site, moved)
        assert set(results.values()) == {"open"}, results
    finally:
        context.close()
