"""Live updates: the server pushes ``{"type": "tick", "count": n}`` every ``interval`` seconds.

The push loop and the receive loop run side by side: the receive loop notices the client leaving
and stops the pusher; a client may send ``"reset"`` to restart the count at 1 (acknowledged with
``{"type": "reset"}``).
"""

from __future__ import annotations

import anyio

from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect

DEFAULT_INTERVAL = 1.0


def create_app(interval: float = DEFAULT_INTERVAL) -> Brillo:
    """An app pushing a tick every ``interval`` seconds to each client of ``/ws``."""

    async def ticks(websocket: WebSocket) -> None:
        await websocket.accept()
        count = 0

        async def push(cancel: anyio.CancelScope) -> None:
            nonlocal count
            try:
                while True:
                    count += 1
                    await websocket.send_json({"type": "tick", "count": count})
                    await anyio.sleep(interval)
            except WebSocketDisconnect:
                cancel.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(push, tg.cancel_scope)
            try:
                while True:
                    if await websocket.receive_text() == "reset":
                        count = 0
                        await websocket.send_json({"type": "reset"})
            except WebSocketDisconnect:
                pass
            tg.cancel_scope.cancel()

    return Brillo(routes=[WebSocketRoute("/ws", ticks)])


app = create_app()
