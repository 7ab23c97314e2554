"""Browser-test fixtures: Debian chromium driven by Playwright, the demo under uvicorn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from brillo.testing import LiveProcess
from tests.support.redis_server import RedisServer

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "browser-tests-secret"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium for the module's tests."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run scripts/install --test")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away redis-server on a free 127.0.0.1 port, without persistence."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run scripts/install --test")
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def demo(redis_url: str) -> Iterator[Callable[..., LiveProcess]]:
    """Factory: start the demo app under uvicorn in a child process, sharing one Redis."""
    started: list[LiveProcess] = []
    root = Path(__file__).resolve().parents[3]

    def start(port: int = 0) -> LiveProcess:
        env = dict(os.environ, BRILLO_HUB_URL=redis_url, BRILLO_SECRET_KEY=SECRET)
        proc = LiveProcess(
            "examples.demo.app:create_app", factory=True, port=port, env=env, cwd=root
        )
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in reversed(started):
        if proc.process is not None:
            proc.stop()


@pytest.fixture
def save_screenshot() -> Callable[[Page, str], None]:
    """Save a screenshot of a page as a test artifact under test-artifacts/."""

    def save(page: Page, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save
