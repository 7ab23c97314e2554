"""Suite-wide fixtures: both anyio backends, and leak checks that fail the test that leaked."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator

import pytest

try:  # trio parks idle worker threads for 10 s; the leak check below would wait for them
    import trio._core._thread_cache as _trio_thread_cache

    _trio_thread_cache.IDLE_TIMEOUT = 0.05  # type: ignore[attr-defined]
except (ImportError, AttributeError):  # pragma: no cover - another trio layout
    pass


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves threads running or lets asyncio report a destroyed pending task.

    ``@pytest.mark.allow_threads("prefix", ...)`` exempts threads owned by a longer-lived
    fixture (for example the event loop executor of Playwright's driver connection).

    Unclosed files and sockets surface as ResourceWarning, which the warning filter turns into
    errors once ``gc.collect()`` below finalises them.
    """
    before = set(threading.enumerate())
    recorder = _Recorder()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(recorder)
    try:
        yield
    finally:
        asyncio_logger.removeHandler(recorder)
    gc.collect()
    deadline = time.monotonic() + 5.0
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(max(0.0, deadline - time.monotonic()))
    marker = request.node.get_closest_marker("allow_threads")
    allowed = tuple(marker.args) if marker else ()
    leaked = [t.name for t in leaked if t.is_alive() and not t.name.startswith(allowed or ("\0",))]
    assert not leaked, f"test leaked running threads: {leaked}"
    messages = [r.getMessage() for r in recorder.records if "destroyed" in r.getMessage()]
    assert not messages, f"asyncio reported leaked tasks: {messages}"
