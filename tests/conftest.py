"""Suite-wide fixtures: both anyio backends, TestClient factory, and leak checks that fail the
test that leaked."""

from __future__ import annotations

import functools
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from brillo.testclient import TestClient

pytest_plugins = ["pytester"]

try:  # trio parks idle worker threads for 10 s; the leak check below would wait for them
    import trio._core._thread_cache as _trio_thread_cache

    _trio_thread_cache.IDLE_TIMEOUT = 0.05  # type: ignore[assignment]
except (ImportError, AttributeError):  # pragma: no cover - another trio layout
    pass


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture
def client_factory(anyio_backend: str) -> Callable[..., TestClient]:
    """``client_factory(app, **options)``: a TestClient running the app on this test's backend."""
    backend: Literal["asyncio", "trio"] = "trio" if anyio_backend == "trio" else "asyncio"
    return functools.partial(TestClient, backend=backend)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _collect_young() -> None:
    """Collect the garbage made since the last call, then set everything alive aside.

    ``gc.freeze()`` moves every object the collector tracks into a permanent generation that
    later collections skip, so the next ``gc.collect()`` scans only what the next test created:
    a few thousand objects instead of the whole suite's (a full collection after every test
    was about 80 % of the unit tests' time). Frozen objects are still freed by reference
    counting; only a cycle holding one of them waits for the next module's ``_collect_all``.
    """
    gc.collect()
    gc.freeze()


def _collect_all() -> None:
    """A full collection, frozen objects included."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True, scope="module")
def _module_leaks() -> None:
    """Before each module: a full collection, for cycles through objects older than a test
    (the previous module's fixtures, caches), so their unclosed files and sockets are reported
    too: as an error at the setup of this module's first test. The end of the session hands
    everything back to the collector for pytest's final collection."""
    _collect_all()


def pytest_sessionfinish() -> None:
    """Hand every object back to the collector for pytest's final collection."""
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads running or lets asyncio report a destroyed pending task.

    ``@pytest.mark.allow_threads("prefix", ...)`` exempts threads owned by a longer-lived
    fixture (for example the event loop executor of Playwright's driver connection).

    Unclosed files and sockets surface as ResourceWarning, which the warning filter turns into
    errors once the collection below finalises them (``tests/test_leak_check.py`` proves it).
    """
    before = set(threading.enumerate())
    recorder = _Recorder()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(recorder)
    try:
        yield
    finally:
        asyncio_logger.removeHandler(recorder)
    _collect_young()
    deadline = time.monotonic() + 5.0
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(max(0.0, deadline - time.monotonic()))
    marker = request.node.get_closest_marker("allow_threads")
    allowed = tuple(marker.args) if marker else ()
    names = [t.name for t in leaked if t.is_alive() and not t.name.startswith(allowed or ("\0",))]
    assert not names, f"test leaked running threads: {names}"
    messages = [r.getMessage() for r in recorder.records if "destroyed" in r.getMessage()]
    assert not messages, f"asyncio reported leaked tasks: {messages}"
