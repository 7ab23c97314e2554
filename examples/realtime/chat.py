"""Chat rooms on the realtime hub: the hand-written ConnectionManager, replaced.

Run one process with the embedded hub::

    uvicorn examples.realtime.chat:app

or several that share Redis::

    BRILLO_REALTIME_URL=redis://127.0.0.1:6379/0 uvicorn examples.realtime.chat:app --port 8001
    BRILLO_REALTIME_URL=redis://127.0.0.1:6379/0 uvicorn examples.realtime.chat:app --port 8002

Protocol (JSON text frames). Connect to ``/ws/{room}?user=ada&name=Ada``. Send
``{"text": "hi"}`` to talk to the room or ``{"to": "bob", "text": "psst"}`` for a direct message.
Receive ``{"type": "chat", "user", "text"}``, ``{"type": "direct", "from", "text"}`` and the
hub's ``{"type": "presence", "event": "join"|"leave", "user", "meta", ...}`` events.
HTTP: ``GET /rooms/{room}/presence``, ``GET /stats``, ``GET /metrics`` (Prometheus).
"""

from __future__ import annotations

import os
from typing import Any

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.realtime.prometheus import PrometheusEndpoint
from brillo.requests import Request
from brillo.responses import JSONResponse
from brillo.routing import Route, WebSocketRoute
from brillo.websockets import WebSocket

hub = Hub(
    os.environ.get("BRILLO_REALTIME_URL", "memory://"),
    presence_ttl=float(os.environ.get("BRILLO_PRESENCE_TTL", "30")),
    presence_events=True,
    shutdown_message={"type": "shutdown", "text": "server restarting, please reconnect"},
)


async def chat(websocket: WebSocket) -> None:
    """One chat connection: join the room, relay what the client says, leave however it ends."""
    room = websocket.path_params["room"]
    user = websocket.query_params.get("user") or f"guest-{id(websocket):x}"
    name = websocket.query_params.get("name") or user
    await websocket.accept()
    async with hub.join(websocket, room, user=user, meta={"name": name}) as membership:
        async for message in websocket.iter_json():
            if not isinstance(message, dict) or not isinstance(message.get("text"), str):
                await websocket.close(1003, 'expected {"text": str}')
                return
            target = message.get("to")
            if isinstance(target, str):
                direct = {"type": "direct", "from": user, "text": message["text"]}
                await hub.send_to_user(target, direct)
            else:
                await membership.publish({"type": "chat", "user": user, "text": message["text"]})


async def presence(request: Request) -> JSONResponse:
    """Who is in the room, across every process."""
    users = await hub.presence(request.path_params["room"])
    body: dict[str, Any] = {
        user: {
            "connections": [entry.connection for entry in entries],
            "meta": dict(entries[0].meta),
        }
        for user, entries in sorted(users.items())
    }
    return JSONResponse(body)


async def stats(request: Request) -> JSONResponse:
    """This process's hub counters."""
    return JSONResponse(hub.stats())


app = Brillo(
    routes=[
        WebSocketRoute("/ws/{room}", chat),
        Route("/rooms/{room}/presence", presence),
        Route("/stats", stats),
        Route("/metrics", PrometheusEndpoint(hub)),
    ],
    lifespan=hub.lifespan,
)
