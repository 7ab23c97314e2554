"""Chat rooms on the channel protocol: typed events, presence, history and the shipped clients.

Run one process with the embedded hub::

    uvicorn examples.realtime.channels_chat:create_app --factory

or several that share Redis (``BRILLO_REALTIME_URL=redis://127.0.0.1:6379/0``). Open
``http://127.0.0.1:8000/?user=ada`` in a browser: the page uses ``/brillo-channels.js``. Or talk
to it from Python with :class:`brillo.realtime.client.ChannelClient`.

Rooms are ``room:<name>``; clients connect to ``/ws?user=<id>`` (no user: closed with 1008) and
may join rooms whose name is 1-32 lower-case letters, digits or dashes, except
``room:secret`` (refused: the example of a join authorisation). One event: push ``say``
``{"text"}`` (1-2,000 characters), broadcast as ``said`` ``{"user", "text"}``, answered with the
message's ``{"position"}``.

``GET /asyncapi.json`` describes all of it (AsyncAPI 3.0); ``GET /stats`` shows the hub's figures.
``BRILLO_HEARTBEAT=<seconds>`` turns the hub's heartbeat on (``BRILLO_HEARTBEAT_TIMEOUT``: how
long a silent client is kept; twice the interval by default).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import msgspec

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.realtime.channels import Channel, Channels, Context, Identity, JoinRefused
from brillo.requests import Request
from brillo.responses import HTMLResponse, JSONResponse
from brillo.routing import Route
from brillo.websockets import WebSocket

ROOM_NAME = re.compile(r"^[a-z0-9-]{1,32}$")


class Say(msgspec.Struct):
    """A chat line."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Said(msgspec.Struct):
    """A chat line as everyone in the room gets it."""

    user: str
    text: str


class Sent(msgspec.Struct):
    """The answer to ``say``: where the line landed in the room's history."""

    position: str | None


async def may_join(ctx: Context, payload: object) -> None:
    """Only well-formed room names, and never room:secret."""
    if not ROOM_NAME.match(ctx.params["name"]):
        raise JoinRefused("room names are 1-32 lower-case letters, digits or dashes")
    if ctx.params["name"] == "secret":
        raise JoinRefused("room:secret is invitation-only")


room = Channel(
    "room:{name}",
    authorize=may_join,
    replay=20,
    description="A chat room: talk, see who is here, catch up after a reconnect.",
)
room.emits("said", Said, description="Someone said something in the room")


@room.join
async def joined(ctx: Context, payload: object) -> dict[str, str]:
    """Welcome: the room's name and who you are."""
    return {"room": ctx.params["name"], "user": ctx.user}


@room.on("say")
async def say(ctx: Context, payload: Say) -> Sent:
    """Say something to the room."""
    position = await ctx.broadcast("said", Said(ctx.user, payload.text))
    return Sent(None if position is None else str(position))


def identify(websocket: WebSocket) -> Identity | None:
    """The user comes from the query string (a real app would use its session or a token)."""
    user = websocket.query_params.get("user", "")
    if not re.fullmatch(r"[\w.-]{1,32}", user):
        return None
    return Identity(user, {"name": user})


PAGE = (Path(__file__).parent / "channels_chat.html").read_text()


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def stats(request: Request) -> JSONResponse:
    """The hub's figures for this process (connections, rooms, heartbeat pings and timeouts)."""
    return JSONResponse(request.app.state.hub.stats())


def create_app(hub_url: str | None = None) -> Brillo:
    """Build the app; ``BRILLO_REALTIME_URL`` picks the backend (default ``memory://``)."""
    heartbeat = os.environ.get("BRILLO_HEARTBEAT")
    heartbeat_timeout = os.environ.get("BRILLO_HEARTBEAT_TIMEOUT")
    hub = Hub(
        hub_url or os.environ.get("BRILLO_REALTIME_URL", "memory://"),
        envelope=True,
        presence_events=True,
        history_size=1000,
        presence_ttl=float(os.environ.get("BRILLO_PRESENCE_TTL", "30")),
        heartbeat_interval=float(heartbeat) if heartbeat else None,
        heartbeat_timeout=float(heartbeat_timeout) if heartbeat_timeout else None,
    )
    channels = Channels(hub, [room], identify=identify, title="brillo chat rooms")
    app = Brillo(
        routes=[Route("/", page), Route("/stats", stats), *channels.routes("/ws")],
        lifespan=hub.lifespan,
    )
    app.state.hub = hub
    app.state.channels = channels
    return app
