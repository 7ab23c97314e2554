"""Run in a fresh interpreter where msgspec cannot be imported: channels with plain JSON.

Prints one JSON object with what happened, for tests/realtime/test_realtime_channels_plain.py.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

sys.modules["msgspec"] = None  # type: ignore[assignment]  # as if the extra were not installed

from brillo.applications import Brillo  # noqa: E402
from brillo.realtime import Hub  # noqa: E402
from brillo.realtime.channels import Channel, Channels, Context  # noqa: E402
from brillo.realtime.testing import ReplyError, connect_channels  # noqa: E402
from brillo.testclient import TestClient  # noqa: E402


@dataclass
class Point:
    x: int


def main() -> None:
    out: dict[str, Any] = {}
    room = Channel("room:{id}")

    @room.on("echo")
    async def echo(ctx: Context, payload: Any) -> Any:
        return payload

    @room.on("count")
    async def count(ctx: Context, payload: int) -> int:
        return payload + 1

    @room.on("point")
    async def point(ctx: Context, payload: dict[str, Any]) -> Point:
        return Point(payload["x"])  # a dataclass reply without msgspec

    try:

        @room.on("typed")
        async def typed(ctx: Context, payload: Point) -> None: ...

    except ImportError as exc:
        out["typed"] = str(exc)
    hub = Hub("memory://", envelope=True, presence_events=True)
    channels = Channels(hub, [room])
    app = Brillo(routes=channels.routes("/ws"), lifespan=hub.lifespan)
    with TestClient(app) as client, connect_channels(client, "/ws") as session:
        session.join("room:1")
        out["echo"] = session.push("room:1", "echo", {"a": [1, "b"]})
        out["count"] = session.push("room:1", "count", 41)
        out["point"] = session.push("room:1", "point", {"x": 3})
        try:
            session.push("room:1", "count", "41")
        except ReplyError as exc:
            out["bad"] = [exc.code, exc.message]
        out["asyncapi"] = client.get("/asyncapi.json").json()
    out["msgspec_loaded"] = sys.modules.get("msgspec") is not None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
