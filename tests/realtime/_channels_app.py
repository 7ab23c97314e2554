"""A channels app for the tests: typed events (msgspec Structs, dataclasses, TypedDicts), a join
authorisation, a leave hook, handlers that fail, and plain-JSON events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import msgspec

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.realtime.channels import (
    Channel,
    ChannelError,
    Channels,
    Context,
    Identity,
    JoinRefused,
)
from brillo.websockets import WebSocket


class Say(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


@dataclass
class Move:
    x: int
    y: int


class Tag(TypedDict):
    name: str


class JoinParams(msgspec.Struct):
    token: str = ""


class Welcome(msgspec.Struct):
    room: str
    user: str


def build(hub: Hub, **options: Any) -> tuple[Brillo, Channels, list[str]]:
    """The app, its Channels and a log of leave hooks run (``"<user> left <room>"``)."""
    left: list[str] = []

    async def authorize(ctx: Context, payload: JoinParams | None) -> bool:
        token = "" if payload is None else payload.token
        if ctx.params["id"] == "private" and token != "sesame":
            raise JoinRefused("the private room needs the token")
        if ctx.params["id"] == "closed":
            return False
        if ctx.params["id"] == "broken":
            raise RuntimeError("the authoriser is broken")
        return True

    room = Channel("room:{id}", authorize=authorize, replay=3, description="rooms")
    room.emits("said", Say)

    @room.join
    async def joined(ctx: Context, payload: JoinParams | None) -> Welcome:
        """Welcome to the room."""
        if ctx.params["id"] == "explodes":
            raise ChannelError("unavailable", "this room is being repaired")
        return Welcome(ctx.params["id"], ctx.user)

    @room.on("say")
    async def say(ctx: Context, payload: Say) -> dict[str, Any]:
        """Say something."""
        position = await ctx.broadcast("said", payload)
        return {"position": str(position)}

    @room.on("move")
    def move(ctx: Context, payload: Move) -> Move:  # a plain function works too
        return Move(payload.x + 1, payload.y + 1)

    @room.on("tag")
    async def tag(ctx: Context, payload: Tag) -> None:
        await ctx.broadcast("tagged", payload, include_self=False)

    @room.on("count")
    async def count(ctx: Context, payload: int) -> int:
        ctx.state["count"] = ctx.state.get("count", 0) + payload
        return int(ctx.state["count"])

    @room.on("anything")
    async def anything(ctx: Context, payload: Any) -> Any:
        return payload

    @room.on("whoami")
    async def whoami(ctx: Context, payload: None) -> dict[str, Any]:
        ctx.push("private", {"for": ctx.user})
        return {"user": ctx.user, "meta": dict(ctx.meta), "room": ctx.room}

    @room.on("fail")
    async def fail(ctx: Context, payload: Any) -> None:
        raise ValueError("boom")

    @room.on("refuse")
    async def refuse(ctx: Context, payload: Any) -> None:
        raise ChannelError("conflict", "someone else got there first")

    @room.on("unencodable")
    async def unencodable(ctx: Context, payload: Any) -> object:
        return object()

    @room.leave
    async def on_leave(ctx: Context) -> None:
        left.append(f"{ctx.user} left {ctx.room}")

    lobby = Channel("lobby", presence=False, name="lobby")

    @lobby.on("echo")
    async def echo(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def identify(websocket: WebSocket) -> Identity | None:
        user = websocket.query_params.get("user")
        if user == "banned":
            return None
        return Identity(user, {"name": user} if user else {})

    channels = Channels(hub, [room, lobby], identify=identify, **options)
    app = Brillo(routes=channels.routes("/ws"), lifespan=hub.lifespan)
    return app, channels, left
