"""Prometheus exposition of the hub's counters, served as a raw ASGI app."""

from __future__ import annotations

from typing import Any

import pytest

from brillo.realtime import Hub
from brillo.realtime.prometheus import CONTENT_TYPE, PrometheusEndpoint, render
from tests.support.realtime import Peer

pytestmark = pytest.mark.anyio


async def call(app: PrometheusEndpoint, method: str = "GET") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": "/metrics"}, receive, send)
    return sent


async def test_render_and_endpoint() -> None:
    async with Hub() as hub:
        peer = Peer()
        await peer.accept()
        async with hub.join(peer.websocket, 'we"ird\\room\n'):
            await hub.publish('we"ird\\room\n', "x")
            await peer.wait_frames(1)
            text = render(hub)
            start, body = await call(PrometheusEndpoint(hub))
            _, head_body = await call(PrometheusEndpoint(hub), "HEAD")
    assert "# TYPE brillo_realtime_published_total counter" in text
    assert "brillo_realtime_published_total 1" in text
    assert "brillo_realtime_connections 1" in text
    assert 'brillo_realtime_room_members{room="we\\"ird\\\\room\\n"} 1' in text
    assert 'brillo_realtime_room_delivered_total{room="we\\"ird\\\\room\\n"} 1' in text
    assert text.endswith("\n")
    assert start["status"] == 200
    assert (b"content-type", CONTENT_TYPE.encode()) in start["headers"]
    assert body["body"].decode() == text
    assert head_body["body"] == b""


async def test_endpoint_rejects_websocket_scopes() -> None:
    async with Hub() as hub:
        with pytest.raises(RuntimeError, match="HTTP requests only"):
            await PrometheusEndpoint(hub)({"type": "websocket"}, None, None)  # type: ignore[arg-type]
