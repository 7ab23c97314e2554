"""brillo.serve's parts: the drain and its hooks, the gate for new handshakes, the command line.

The whole thing under real uvicorn child processes: tests/integration/test_serve.py.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from brillo.realtime import Hub
from brillo.serve import Drain, _current, _DrainGate, main, on_drain
from brillo.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the drain runs inside uvicorn, on asyncio


async def test_on_drain_is_a_no_op_outside_serve() -> None:
    async def hook(left: float) -> None:
        raise AssertionError("never called")  # pragma: no cover

    remove = on_drain(hook)
    remove()  # and so is removing it


async def test_the_drain_runs_each_hook_within_the_time_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drain = Drain()
    token = _current.set(drain)
    calls: list[Any] = []
    try:

        async def quick(left: float) -> None:
            calls.append(("quick", round(left)))

        async def failing(left: float) -> None:
            raise RuntimeError("broken hook")

        async def slow(left: float) -> None:
            calls.append(("slow", round(left)))
            await asyncio.sleep(60)

        async def late(left: float) -> None:
            calls.append("late")  # pragma: no cover

        on_drain(quick)
        on_drain(failing)
        on_drain(slow)
        on_drain(late)
        removed = on_drain(late)
        removed()
    finally:
        _current.reset(token)
    # the drain logs under uvicorn's logger; an earlier test's in-process uvicorn may have set
    # that logger's level (log_level="critical") and stopped "uvicorn" propagating to the root
    # logger: neither may hide the records from caplog
    caplog.set_level(logging.WARNING, logger="uvicorn.error.brillo")
    drain_logger = logging.getLogger("uvicorn.error.brillo")
    drain_logger.addHandler(caplog.handler)
    try:
        await drain.run(0.2)
    finally:
        drain_logger.removeHandler(caplog.handler)
    assert drain.draining
    assert calls == [("quick", 0), ("slow", 0)]
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed: broken hook" in m for m in messages)
    assert any("did not finish within" in m for m in messages)
    assert any("out of time" in m for m in messages)


async def test_a_running_hub_registers_its_drain() -> None:
    drain = Drain()
    token = _current.set(drain)
    try:
        async with Hub("memory://") as hub:
            assert drain.hooks == [hub.drain]
        assert drain.hooks == []
    finally:
        _current.reset(token)


async def test_the_gate_refuses_new_handshakes_once_draining() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    drain = Drain()
    gate = _DrainGate(app, drain)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "extensions": {"websocket.http.response": {}}}
    await gate(scope, receive, send)
    assert seen == ["websocket"]
    drain.draining = True
    await gate({"type": "http"}, receive, send)
    await gate(scope, receive, send)
    assert seen == ["websocket", "http"]
    assert sent[0]["status"] == 503
    sent.clear()
    await gate({"type": "websocket"}, receive, send)  # no denial responses: 1001 after accept
    assert sent[-1] == {"type": "websocket.close", "code": 1001, "reason": "server shutting down"}


def test_the_command_needs_an_app(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([])
    assert "the following arguments are required: app" in capsys.readouterr().err
