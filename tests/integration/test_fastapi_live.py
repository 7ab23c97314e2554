"""FastAPI on brillo under real uvicorn on 127.0.0.1, with real HTTP and WebSocket clients.

The app is tests/_fastapi_on_brillo.py (every ``starlette`` import served by brillo), run as
``python -m uvicorn tests._fastapi_on_brillo:app`` in a child process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from brillo.testing import LiveProcess

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0


def events_once(client: httpx.Client, event: str) -> dict[str, Any]:
    """``GET /events`` until ``event`` shows (a bounded wait: the server records it on its own)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        report: dict[str, Any] = client.get("/events").json()
        if event in report["events"] or time.monotonic() > deadline:
            return report
        time.sleep(0.02)


@pytest.fixture
def server(live_process: Callable[..., LiveProcess]) -> LiveProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return live_process("tests._fastapi_on_brillo:app", cwd=ROOT, env=env, lifespan="on")


def test_fastapi_app_over_the_wire(server: LiveProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        modules = client.get("/modules").json()
        assert modules["foreign"] == []
        assert modules["fastapi_base"] == ["brillo.applications"]

        item = client.get("/items/3?q=hi", headers={"X-Token": "t0k"})
        assert item.status_code == 200
        assert item.headers["x-middleware"] == "ran"
        assert item.json() == {
            "item_id": 3,
            "q": "hi",
            "page": {"offset": 0, "limit": 10},
            "resource": "resource",
            "x_token": "t0k",
        }
        created = client.post("/items", json={"name": "lamp", "price": 9.5, "tags": []})
        assert (created.status_code, created.json()) == (201, {"name": "lamp", "price": 9.5})
        invalid = client.post(
            "/items", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert invalid.status_code == 422

        missing = client.get("/missing")
        assert (missing.status_code, missing.json()) == (404, {"detail": "no such thing"})
        assert missing.headers["x-error"] == "missing"
        assert client.get("/teapot").status_code == 418
        assert client.get("/state").json()["greeting"] == "hello from the lifespan"
        url = client.get("/url-for").json()["item"]
        assert url == f"{server.url}/items/7"

        with connect(f"{server.ws_url}/ws/lobby?nick=ada", open_timeout=TIMEOUT) as ws:
            ws.send(json.dumps({"n": 1}))
            assert json.loads(ws.recv(timeout=TIMEOUT)) == {
                "room": "lobby",
                "nick": "ada",
                "echo": {"n": 1},
            }
            ws.send(json.dumps({"close": True}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=TIMEOUT)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1000

        # A client that just goes away: the endpoint sees WebSocketDisconnect.
        with connect(f"{server.ws_url}/ws/gone", open_timeout=TIMEOUT) as ws:
            ws.send(json.dumps({"n": 2}))
            ws.recv(timeout=TIMEOUT)

        # Refused before accept: the handshake fails with HTTP 403.
        for path in ("/ws-refused", "/ws-needs-token"):
            with (
                pytest.raises(InvalidStatus) as refused,
                connect(f"{server.ws_url}{path}", open_timeout=TIMEOUT),
            ):
                pass  # pragma: no cover
            assert refused.value.response.status_code == 403
        with connect(f"{server.ws_url}/ws-needs-token?token=abc", open_timeout=TIMEOUT) as ws:
            assert ws.recv(timeout=TIMEOUT) == "abc"

        report = events_once(client, "ws gone disconnected")
    assert report["server_errors"] == []
    events = report["events"]
    assert events[0] == "startup"
    assert "created lamp" in events
    assert events.count("resource open") == events.count("resource closed") == 1
    assert "asgi-mw websocket /ws/lobby" in events
    assert "ws gone disconnected" in events
