"""Browser-test fixtures: Debian chromium driven by Playwright, the demo under uvicorn."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from brillo.testing import LiveProcess

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
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: run scripts/install --test")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def demo(redis_url: str) -> Iterator[Callable[..., LiveProcess]]:
    """Factory: start the demo app under uvicorn in a child process, sharing one Redis."""
    started: list[LiveProcess] = []
    root = Path(__file__).resolve().parents[3]

    def start(port: int = 0) -> LiveProcess:
        env = dict(os.environ, BRILLO_HUB_URL=redis_url, BRILLO_SECRET_KEY=SECRET)
        proc = LiveProcess(
            "examples.showcase.app:create_app", factory=True, port=port, env=env, cwd=root
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
