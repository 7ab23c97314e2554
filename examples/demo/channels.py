"""The demo's rooms on brillo's channel protocol: chat, typing, documents and the dashboard.

Each page opens one socket to ``/ws`` with the shipped ``brillo-channels.js`` and joins rooms:

* ``chat:<room>`` (needs a name from the session): push ``message`` ``{"text"}``, broadcast as
  ``chat`` ``{"user", "text", "ts"}``; presence; a new member gets the last 100 messages, a
  returning one exactly what it missed.
* ``typing:<room>``: push ``typing``, broadcast to the others as ``typing`` ``{"user"}``.
* ``doc:<id>``: the join reply is the document ``{"version", "text", "client_id"}``; push
  ``edit`` ``{"version", "op", "seq"}``, broadcast as ``op`` ``{"version", "op", "client_id",
  "seq"}``; an edit that does not fit is answered with an error and a fresh ``doc``.
* ``dashboard``: ``metrics`` every second, the figures of the process the viewer is on.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Annotated, Any

import anyio
import msgspec

from brillo.realtime import Channel, ChannelError, Channels, Context, Hub, Identity, JoinRefused
from brillo.websockets import WebSocket
from examples.demo.documents import DocumentStore, ResyncRequired
from examples.demo.ot import OTError, parse

__all__ = ["MAX_TEXT", "NAME_RE", "ROOM_RE", "build_channels", "publish_metrics"]

NAME_RE = re.compile(r"^[\w .'-]{1,32}$")
ROOM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_TEXT = 2000  # characters in one chat message


class ChatMessage(msgspec.Struct):
    """A chat line as sent."""

    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class ChatLine(msgspec.Struct):
    """A chat line as everyone in the room gets it."""

    user: str
    text: str
    ts: float


class Typing(msgspec.Struct):
    user: str


class Edit(msgspec.Struct):
    """An operation on the document, based on ``version``."""

    version: int
    op: Any
    seq: int | None = None


class Accepted(msgspec.Struct):
    """An accepted edit, as broadcast: the version it made."""

    version: int
    op: Any
    client_id: str
    seq: int | None = None


class Snapshot(msgspec.Struct):
    """The document as a client starts from."""

    version: int
    text: str
    client_id: str


def identify(websocket: WebSocket) -> Identity:
    """The name picked on the first page (from the signed session cookie), if any."""
    name = websocket.session.get("name")
    if isinstance(name, str) and NAME_RE.match(name):
        return Identity(name, {"name": name})
    return Identity()  # anonymous: the editor and the dashboard need no name


def _named(ctx: Context) -> None:
    if "name" not in ctx.meta:
        raise JoinRefused("pick a name first")
    if not ROOM_RE.match(ctx.params["room"]):
        raise JoinRefused("invalid room name")


def build_channels(hub: Hub, documents: DocumentStore) -> Channels:
    """The demo's channels on ``hub``."""
    chat = Channel(
        "chat:{room}",
        authorize=lambda ctx, payload: _named(ctx),
        replay=100,
        description="A chat room: messages with history, presence.",
    )
    chat.emits("chat", ChatLine, description="a chat line")

    @chat.on("message")
    async def message(ctx: Context, payload: ChatMessage) -> None:
        """Say something to the room."""
        text = payload.text.strip()
        if not text:
            raise ChannelError("invalid_payload", "'text' must not be blank")
        await ctx.broadcast("chat", ChatLine(ctx.user, text, time.time()))

    typing = Channel(
        "typing:{room}",
        authorize=lambda ctx, payload: _named(ctx),
        presence=False,
        description="Who is typing in a chat room (kept apart from the chat's history).",
    )
    typing.emits("typing", Typing)

    @typing.on("typing")
    async def typing_now(ctx: Context, payload: None) -> None:
        """Tell the others you are typing."""
        await ctx.broadcast("typing", Typing(ctx.user), include_self=False)

    def valid_doc(ctx: Context, payload: object) -> None:
        if not ROOM_RE.match(ctx.params["id"]):
            raise JoinRefused("invalid document id")

    doc = Channel(
        "doc:{id}",
        authorize=valid_doc,
        presence=False,
        description="A shared text edited with operational transformation.",
    )
    doc.emits("op", Accepted, description="an edit the server accepted, in version order")
    doc.emits("doc", Snapshot, description="a fresh copy, after an edit that did not fit")

    def snapshot(ctx: Context) -> Snapshot:
        document = documents.get(ctx.params["id"])
        client_id = ctx.state.setdefault("client:" + ctx.room, secrets.token_hex(6))
        return Snapshot(document.version, document.text, client_id)

    @doc.join
    async def open_doc(ctx: Context, payload: object) -> Snapshot:
        """The document as it is now (operations after it arrive as ``op``)."""
        return snapshot(ctx)

    @doc.on("edit")
    async def edit(ctx: Context, payload: Edit) -> dict[str, int]:
        """Submit an operation based on a version; the reply is the version it made."""
        document = documents.get(ctx.params["id"])
        async with document.lock:
            try:
                op = document.submit(payload.version, parse(payload.op))
            except (OTError, ResyncRequired) as exc:
                ctx.push("doc", snapshot(ctx))
                raise ChannelError("rejected", str(exc)) from None
            client_id = snapshot(ctx).client_id
            accepted = Accepted(document.version, op, client_id, payload.seq)
            await ctx.broadcast("op", accepted)
        return {"version": accepted.version}

    dashboard = Channel("dashboard", presence=False, description="Live figures, every second.")
    dashboard.emits("metrics", dict, description="the hub's and the process's figures")
    return Channels(hub, [chat, typing, doc, dashboard], identify=identify, title="brillo demo")


async def publish_metrics(channels: Channels, metrics: Any) -> None:
    """Every second, while anyone watches, this process's figures to its dashboard viewers."""
    while True:
        if channels.hub.members("dashboard"):
            channels.push_local("dashboard", "metrics", metrics.snapshot())
        await anyio.sleep(1.0)
