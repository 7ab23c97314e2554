"""The echo example (examples.echo): TestClient, over the wire under uvicorn, and `python -m`."""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from brillo.testclient import TestClient
from brillo.testing import LiveServer
from brillo.websockets import WebSocketDisconnect
from examples.echo.app import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(anyio_backend: str) -> TestClient:
    return TestClient(app, backend=anyio_backend)  # type: ignore[arg-type]


def test_page_and_health(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "new WebSocket(" in page.text
    assert "/ws/echo" in page.text
    assert "/ws/json" in page.text
    assert client.get("/health").json() == {"status": "ok"}


def test_echo(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as ws:
        ws.send_text("hi there")
        assert ws.receive_text() == "hi there"
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_bytes() == b"\x00\xff"


def test_json(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as ws:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        ws.send_json({"type": "message", "text": "yo"})
        assert ws.receive_json() == {"type": "message", "text": "yo"}
        ws.send_text("nope")
        assert ws.receive_json() == {"type": "error", "detail": "Invalid JSON"}
        ws.send_json({"type": "other"})
        assert ws.receive_json() == {"type": "error", "detail": "Unknown message type"}
        ws.send_bytes(b"{}")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 1003


@pytest.mark.integration
def test_over_the_wire_with_uvicorn() -> None:
    with LiveServer(app) as live:
        assert httpx.get(live.url + "/health", timeout=10).json() == {"status": "ok"}
        with connect(live.ws_url + "/ws/json", open_timeout=10, close_timeout=10) as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
            ws.send(b"\x01")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1003
        with connect(live.ws_url + "/ws/echo", open_timeout=10, close_timeout=10) as ws:
            ws.send("wire")
            assert ws.recv(timeout=10) == "wire"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.integration
def test_python_m_examples_echo() -> None:
    port = _free_port()
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.echo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=15), "the example printed nothing"
            line = proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}/" in line
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.ConnectError:
                assert proc.poll() is None, "the example exited"
                assert time.monotonic() < deadline, "the example did not start listening"
                time.sleep(0.05)  # bounded readiness poll: the child gives no other signal
        assert response.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.integration
def test_bad_port_is_reported() -> None:
    env = dict(os.environ, PORT="eighty")
    result = subprocess.run(
        [sys.executable, "-m", "examples.echo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"PORT must be a number" in result.stderr
