"""Fixtures for over-the-wire tests: real servers on 127.0.0.1 with ephemeral ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from brillo.testing import LiveProcess, LiveServer
from brillo.types import ASGIApp

LiveServerFactory = Callable[..., LiveServer]
LiveProcessFactory = Callable[..., LiveProcess]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as ``integration``."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def live_server() -> Iterator[LiveServerFactory]:
    """Factory: ``live_server(app, server="uvicorn", **config)`` returns a started LiveServer.

    Every server it started is stopped when the test ends.
    """
    started: list[LiveServer] = []

    def start(app: ASGIApp, **kwargs: Any) -> LiveServer:
        server = LiveServer(app, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def live_process() -> Iterator[LiveProcessFactory]:
    """Factory: ``live_process("module:attr", **kwargs)`` returns a started LiveProcess.

    Every child it started is stopped (SIGTERM, then SIGKILL if needed) when the test ends.
    """
    started: list[LiveProcess] = []

    def start(target: str, **kwargs: Any) -> LiveProcess:
        process = LiveProcess(target, **kwargs)
        started.append(process)
        process.start()
        return process

    yield start
    for process in reversed(started):
        if process.process is not None:
            process.stop()
