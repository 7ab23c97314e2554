"""The brillo demo: chat with presence and history, a live dashboard, a collaborative editor.

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
import re
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
from brillo.routing import Mount, Route, WebSocketRoute
from brillo.staticfiles import StaticFiles
from brillo.templating import Jinja2Templates
from brillo.websockets import WebSocket
from examples.demo.documents import DocumentStore, ResyncRequired
from examples.demo.ot import OTError, parse

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

NAME_RE = re.compile(r"^[\w .'-]{1,32}$")
ROOM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_TEXT = 2000  # characters in one chat message
MAX_FRAME = 64 * 1024  # bytes in one inbound frame of any kind

#: Every socket of the demo: a frame over MAX_FRAME closes it (1009); more than 20 messages a
#: second (bursts of 60) are dropped with an error reply; an address holds at most 64 sockets and
#: a signed-in name 16 (refused with HTTP 429).
WS_LIMITS = WebSocketLimits(
    max_message_size=MAX_FRAME,
    rate=RateLimit(20, burst=60, action="drop"),
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

    async def chat_socket(websocket: WebSocket) -> None:
        name = websocket.session.get("name")
        room = websocket.path_params["room"]
        if not name or not NAME_RE.match(str(name)):
            await websocket.close(1008, "pick a name first")
            return
        if not ROOM_RE.match(room):
            await websocket.close(1008, "invalid room name")
            return
        since = websocket.query_params.get("since")
        await websocket.accept()
        try:
            recovery = await hub.history(room, since or None)
        except ValueError:
            await websocket.close(1008, "invalid 'since' position")
            return
        if since and recovery.resync_required:
            await websocket.send_json({"type": "resync", "room": room})
        # What the client has not seen yet goes straight to it; then it joins the room from the
        # position those messages end at, so nothing published meanwhile is lost or repeated.
        for position, payload in recovery.messages:
            if not isinstance(payload, str):  # not JSON text: an envelope cannot carry it
                continue
            await websocket.send_text(
                f'{{"type":"message","room":{_json_str(room)},"position":"{position}",'
                f'"data":{payload}}}'
            )
        typing_room = room + "~typing"
        meta = {"name": name}
        async with (
            hub.join(websocket, room, user=name, meta=meta, since=recovery.position) as member,
            hub.join(websocket, typing_room, user=name, meta=meta),
        ):
            roster = await hub.presence(room)
            member.send(
                {
                    "type": "roster",
                    "room": room,
                    "users": {u: [e.connection for e in c] for u, c in roster.items()},
                }
            )
            while True:
                event = await websocket.receive_json()
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    member.send({"type": "error", "detail": "send a JSON object with a 'type'"})
                    continue
                if event["type"] == "message":
                    text = event.get("text")
                    if not isinstance(text, str) or not text.strip():
                        member.send(
                            {"type": "error", "detail": "'text' must be a non-empty string"}
                        )
                        continue
                    if len(text) > MAX_TEXT:
                        member.send(
                            {
                                "type": "error",
                                "detail": f"messages are at most {MAX_TEXT} characters",
                            }
                        )
                        continue
                    await hub.publish(
                        room,
                        {"kind": "chat", "user": name, "text": text.strip(), "ts": time.time()},
                    )
                elif event["type"] == "typing":
                    await hub.publish(
                        typing_room, {"kind": "typing", "user": name}, exclude=websocket
                    )
                else:
                    member.send({"type": "error", "detail": f"unknown type {event['type']!r}"})

    async def dashboard_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        # Viewers join a room of their own: hub.stats() counts them, and the metrics go through
        # the hub's per-connection queue like every other message (one writer per socket).
        async with hub.join(websocket, "dashboard") as member, anyio.create_task_group() as tg:

            async def push() -> None:
                while True:
                    member.send(metrics.snapshot())
                    await anyio.sleep(1.0)

            tg.start_soon(push)
            # The dashboard only listens: what it sends is ignored until it goes away.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
            tg.cancel_scope.cancel()

    async def doc_socket(websocket: WebSocket) -> None:
        doc_id = websocket.path_params["doc_id"]
        if not ROOM_RE.match(doc_id):
            await websocket.close(1008, "invalid document id")
            return
        await websocket.accept()
        doc = documents.get(doc_id)
        client_id = secrets.token_hex(6)
        room = "doc:" + doc_id

        def snapshot() -> dict[str, Any]:
            return {"type": "doc", "version": doc.version, "text": doc.text, "client_id": client_id}

        async with hub.join(websocket, room, meta={"client": client_id}) as member:
            member.send(snapshot())
            while True:
                event = await websocket.receive_json()
                if (
                    not isinstance(event, dict)
                    or event.get("type") != "edit"
                    or not isinstance(event.get("version"), int)
                    or isinstance(event.get("version"), bool)
                ):
                    member.send({"type": "error", "detail": "expected {type: 'edit', version, op}"})
                    continue
                async with doc.lock:
                    try:
                        op = doc.submit(event["version"], parse(event.get("op")))
                    except (OTError, ResyncRequired) as exc:
                        member.send({"type": "error", "detail": str(exc)})
                        member.send(snapshot())
                        continue
                    await hub.publish(
                        room,
                        {
                            "type": "op",
                            "version": doc.version,
                            "op": op,
                            "client_id": client_id,
                            "seq": event.get("seq"),
                        },
                    )

    @asynccontextmanager
    async def lifespan(app: Brillo) -> AsyncIterator[dict[str, Any]]:
        async with hub:
            yield {"hub": hub}

    app = Brillo(
        routes=[
            Route("/", index),
            Route("/login", login, methods=["POST"]),
            Route("/chat", chat_page),
            Route("/dashboard", dashboard_page),
            Route("/editor", editor_page),
            Route("/metrics", PrometheusEndpoint(hub)),
            WebSocketRoute("/ws/chat/{room}", chat_socket),
            WebSocketRoute("/ws/dashboard", dashboard_socket),
            WebSocketRoute("/ws/doc/{doc_id}", doc_socket),
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
    app.state.documents = documents
    return app


def _extra_origins() -> list[str]:
    value = os.environ.get("BRILLO_ALLOWED_ORIGINS", "")
    return [origin.strip() for origin in value.split(",") if origin.strip()]


def _json_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)
