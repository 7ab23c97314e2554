"""Tests for brillo.testing: LiveServer (uvicorn and hypercorn, sync and async) and LiveProcess."""

from __future__ import annotations

import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from brillo.testing import LiveProcess, LiveServer, ServerStartupError
from brillo.types import Receive, Scope, Send

pytestmark = pytest.mark.integration

SERVERS = ["uvicorn", "hypercorn"]


async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A raw ASGI app: lifespan sets state, HTTP answers it, WebSocket echoes text."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        body = f"{scope['state'].get('greeting')} {scope['path']}".encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    else:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"]})


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "database unreachable"})


async def raising_startup(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    raise KeyError("boom")


@pytest.mark.parametrize("server", SERVERS)
def test_sync_context_manager_serves_http_and_websocket(server: Any) -> None:
    with LiveServer(lifespan_app, server=server) as live:
        assert live.url == f"http://127.0.0.1:{live.port}"
        assert live.ws_url == f"ws://127.0.0.1:{live.port}"
        assert live.running
        with httpx.Client(base_url=live.url, timeout=5) as client:
            response = client.get("/path")
        assert response.status_code == 200
        assert response.text == "hello /path"
        with connect(live.ws_url + "/ws", open_timeout=5, close_timeout=5) as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
    assert not live.running


@pytest.mark.parametrize("server", SERVERS)
def test_startup_failure_raises(server: Any) -> None:
    live = LiveServer(failing_startup, server=server, lifespan="on")
    with pytest.raises(ServerStartupError, match="database unreachable"):
        live.start()
    assert not live.running


def test_startup_exception_is_named() -> None:
    with (
        pytest.raises(ServerStartupError, match="KeyError"),
        LiveServer(raising_startup, lifespan="on"),
    ):
        pass  # pragma: no cover


@pytest.mark.parametrize("server", SERVERS)
def test_lifespan_off(server: Any) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "lifespan must not reach the app"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with LiveServer(app, server=server, lifespan="off") as live:
        assert httpx.get(live.url, timeout=5).status_code == 204


@pytest.mark.parametrize("server", SERVERS)
def test_stop_closes_open_websockets(server: Any) -> None:
    live = LiveServer(lifespan_app, server=server)
    live.start()
    try:
        ws = connect(live.ws_url + "/ws", open_timeout=5, close_timeout=5)
    except BaseException:
        live.stop()
        raise
    with ws:
        live.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert not live.running


def test_port_is_unknown_before_start_and_bad_server_rejected() -> None:
    live = LiveServer(lifespan_app)
    with pytest.raises(RuntimeError, match="not started"):
        _ = live.url
    with pytest.raises(ValueError, match="uvicorn"):
        LiveServer(lifespan_app, server="daphne")  # type: ignore[arg-type]


def test_port_in_use_fails_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            LiveServer(lifespan_app, port=port).start()


def test_unknown_hypercorn_option() -> None:
    with pytest.raises(ServerStartupError, match="no_such_option"):
        LiveServer(lifespan_app, server="hypercorn", no_such_option=1).start()


async def raw_get(port: int, path: str) -> bytes:
    """HTTP/1.0 GET over a plain anyio stream (no resolver thread, so trio leaks nothing)."""
    with anyio.fail_after(5):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(f"GET {path} HTTP/1.0\r\nhost: test\r\n\r\n".encode())
            chunks = []
            async for chunk in stream:
                chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


@pytest.mark.anyio
@pytest.mark.parametrize("server", SERVERS)
async def test_async_context_manager(server: Any) -> None:
    async with LiveServer(lifespan_app, server=server) as live:
        assert await raw_get(live.port, "/async") == b"hello /async"
    assert not live.running


@pytest.mark.anyio
async def test_async_startup_failure() -> None:
    with pytest.raises(ServerStartupError, match="database unreachable"):
        async with LiveServer(failing_startup, lifespan="on"):
            pass  # pragma: no cover


@pytest.mark.anyio
async def test_async_startup_does_not_block_the_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with LiveServer(lifespan_app):
            # Other tasks ran while startup was awaited (a blocking wait would starve them).
            assert ticks > 0
        tg.cancel_scope.cancel()


APP_MODULE = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"from child"})
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "childapp.py").write_text(textwrap.dedent(APP_MODULE))
    return tmp_path


def test_live_process_kill_and_restart(app_dir: Path) -> None:
    process = LiveServer.subprocess("childapp:app", cwd=app_dir)
    with process:
        assert httpx.get(process.url, timeout=5).text == "from child"
        port = process.port
        process.kill()
        assert process.returncode == -9
        with pytest.raises(httpx.ConnectError):
            httpx.get(process.url, timeout=5)
        process.start()
        assert process.port == port
        assert httpx.get(process.url, timeout=5).text == "from child"
    assert process.returncode is not None


def test_live_process_stop_is_graceful(app_dir: Path) -> None:
    process = LiveProcess("childapp:app", cwd=app_dir)
    process.start()
    process.stop()
    # uvicorn re-raises the SIGTERM it handled after a clean shutdown.
    assert process.returncode in (0, -15)


def test_live_process_import_error(app_dir: Path) -> None:
    process = LiveProcess("nosuchmodule:app", cwd=app_dir, env={"PYTHONPATH": str(app_dir)})
    with pytest.raises(ServerStartupError, match="exited with status"):
        process.start()
    assert process.returncode is not None


def test_live_process_before_start() -> None:
    process = LiveProcess("x:app")
    with pytest.raises(RuntimeError, match="not started"):
        _ = process.pid
    with pytest.raises(RuntimeError, match="not started"):
        _ = process.ws_url
    assert process.returncode is None
    assert sys.executable
