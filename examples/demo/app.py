"""The brillo demo: chat with presence and history, a live dashboard, a collaborative editor.

Every page talks to the server over brillo's channel protocol (``brillo.realtime.channels``,
declared in :mod:`examples.demo.channels`) with the shipped browser client.

Run it with ``scripts/demo`` (or ``python -m examples.demo``). ``BRILLO_HUB_URL`` picks the
realtime backend (default ``memory://``; ``redis://127.0.0.1:6379/0`` to share rooms, presence
and history between processes). ``BRILLO_SECRET_KEY`` signs the session cookie that holds the
user's name. Its WebSockets are protected (docs/security.md): only the demo's own pages may open
them (``BRILLO_ALLOWED_ORIGINS``, comma-separated, adds origins), and inbound messages, their
rate and the connections per address and per user are limited.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil

from brillo.applications import Brillo
from brillo.middleware import Middleware
from brillo.middleware.sessions import SessionMiddleware
from brillo.middleware.websocket_protection import (
    RateLimit,
    WebSocketLimits,
    WebSocketProtectionMiddleware,
)
from brillo.realtime import Hub
from brillo.realtime.prometheus import PrometheusEndpoint
from brillo.requests import Request
from brillo.responses import RedirectResponse, Response
from brillo.routing import Mount, Route
from brillo.staticfiles import StaticFiles
from brillo.templating import Jinja2Templates
from examples.demo.channels import NAME_RE, ROOM_RE, build_channels, publish_metrics
from examples.demo.documents import DocumentStore

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

MAX_FRAME = 64 * 1024  # bytes in one inbound frame of any kind

#: What a client gets for a message dropped over the rate limit: a channel-protocol error.
RATE_LIMITED = json.dumps(
    {
        "type": "error",
        "room": None,
        "error": {"code": "rate_limited", "message": "rate limit exceeded: message dropped"},
    }
)

#: Every socket of the demo: a frame over MAX_FRAME closes it (1009); more than 20 messages a
#: second (bursts of 60) are dropped with an error reply; an address holds at most 64 sockets and
#: a signed-in name 16 (refused with HTTP 429).
WS_LIMITS = WebSocketLimits(
    max_message_size=MAX_FRAME,
    rate=RateLimit(20, burst=60, action="drop", reply=RATE_LIMITED),
    max_connections_per_client=64,
    max_connections_per_user=16,
    user_key=lambda scope: (scope.get("session") or {}).get("name"),
)


def _clean_room(value: str | None) -> str:
    room = (value or "lobby").strip().lower()
    return room if ROOM_RE.match(room) else "lobby"


class Metrics:
    """Process and hub figures for the dashboard, computed at most once a second."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self._at = 0.0
        self._published = 0
        self._snapshot: dict[str, Any] = {}

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._at < 0.9 and self._snapshot:
            return self._snapshot
        stats = self.hub.stats()
        elapsed = now - self._at if self._at else 1.0
        rate = (stats["published"] - self._published) / elapsed if self._at else 0.0
        self._at, self._published = now, stats["published"]
        self._snapshot = {
            "type": "metrics",
            "connections": stats["connections"],
            "rooms": len(stats["rooms"]),
            "published": stats["published"],
            "delivered": stats["delivered"],
            "dropped": stats["dropped"],
            "messages_per_s": rate,
            "cpu_percent": self.process.cpu_percent(None),
            "rss_bytes": self.process.memory_info().rss,
            "time": time.time(),
        }
        return self._snapshot


def create_app(hub_url: str | None = None, *, secret_key: str | None = None) -> Brillo:
    """Build the demo app. Each call makes its own hub and document store."""
    hub = Hub(
        hub_url or os.environ.get("BRILLO_HUB_URL", "memory://"),
        envelope=True,
        presence_events=True,
        history_size=200,
        heartbeat_interval=20.0,
        shutdown_message={"type": "shutdown", "detail": "server restarting"},
    )
    documents = DocumentStore()
    metrics = Metrics(hub)
    key = secret_key or os.environ.get("BRILLO_SECRET_KEY") or secrets.token_urlsafe(32)

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("name", request.session.get("name"))
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    async def index(request: Request) -> Response:
        room = _clean_room(request.query_params.get("room"))
        return page(request, "index.html", page="index", room=room, error=None)

    async def login(request: Request) -> Response:
        async with request.form(max_files=0, max_fields=5, max_part_size=1024) as form:
            name = str(form.get("name", "")).strip()
            room = _clean_room(str(form.get("room", "")))
        if not NAME_RE.match(name):
            error = "Names are 1-32 letters, digits, spaces or . ' - _"
            return page(request, "index.html", 400, page="index", room=room, error=error)
        request.session["name"] = name
        return RedirectResponse(f"/chat?room={room}", status_code=303)

    async def chat_page(request: Request) -> Response:
        room = _clean_room(request.query_params.get("room"))
        if not request.session.get("name"):
            return RedirectResponse(f"/?room={room}", status_code=303)
        return page(request, "chat.html", page="chat", room=room)

    async def dashboard_page(request: Request) -> Response:
        return page(request, "dashboard.html", page="dashboard")

    async def editor_page(request: Request) -> Response:
        doc_id = request.query_params.get("doc", "welcome")
        if not ROOM_RE.match(doc_id):
            doc_id = "welcome"
        return page(request, "editor.html", page="editor", doc_id=doc_id)

    channels = build_channels(hub, documents)

    @asynccontextmanager
    async def lifespan(app: Brillo) -> AsyncIterator[dict[str, Any]]:
        async with hub, anyio.create_task_group() as tasks:
            tasks.start_soon(publish_metrics, channels, metrics)
            yield {"hub": hub}
            tasks.cancel_scope.cancel()

    app = Brillo(
        routes=[
            Route("/", index),
            Route("/login", login, methods=["POST"]),
            Route("/chat", chat_page),
            Route("/dashboard", dashboard_page),
            Route("/editor", editor_page),
            Route("/metrics", PrometheusEndpoint(hub)),
            # One socket per page for every room it is in: the channel protocol, the browser
            # client at /brillo-channels.js, the AsyncAPI description at /asyncapi.json.
            *channels.routes("/ws"),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key=key, max_age=None),
            # Cross-site WebSocket hijacking: only pages of this site may open the sockets.
            Middleware(
                WebSocketProtectionMiddleware,
                allow_origins=["self", *_extra_origins()],
                limits=WS_LIMITS,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.channels = channels
    app.state.documents = documents
    return app


def _extra_origins() -> list[str]:
    value = os.environ.get("BRILLO_ALLOWED_ORIGINS", "")
    return [origin.strip() for origin in value.split(",") if origin.strip()]
