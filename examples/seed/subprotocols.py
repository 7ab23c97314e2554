"""Subprotocol negotiation: accept the first of the client's offered subprotocols we support.

The client offers a list (``Sec-WebSocket-Protocol``) in its order of preference; the server
picks the first one it speaks, or closes with 1008 if it speaks none of them. A client that offers
nothing gets the default, unnamed protocol. The server then says which one was chosen and
echoes text in that protocol's style.
"""

from __future__ import annotations

from collections.abc import Callable

from brillo import status
from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect

#: What this server speaks, and how each protocol formats an echo.
SUPPORTED: dict[str, Callable[[str], str]] = {
    "chat.v2": lambda text: f"[v2] {text}",
    "chat.v1": lambda text: text.upper(),
}


def choose(offered: list[str]) -> str | None:
    """The first offered subprotocol that is supported, or None."""
    return next((name for name in offered if name in SUPPORTED), None)


async def negotiate(websocket: WebSocket) -> None:
    """Accept with the chosen subprotocol and echo in its style."""
    offered: list[str] = websocket.scope.get("subprotocols") or []
    chosen = choose(offered)
    if offered and chosen is None:
        await websocket.close(
            status.WS_1008_POLICY_VIOLATION, f"None of {', '.join(offered)} is supported"
        )
        return
    await websocket.accept(subprotocol=chosen)
    await websocket.send_json({"type": "protocol", "subprotocol": chosen})
    render = SUPPORTED[chosen] if chosen else str
    try:
        while True:
            await websocket.send_text(render(await websocket.receive_text()))
    except WebSocketDisconnect:
        pass


app = Brillo(routes=[WebSocketRoute("/ws", negotiate)])
