"""Graceful shutdown: when the app's lifespan ends, every open socket is closed with 1001.

Clients get close code 1001 (going away) and a reason, so they know to reconnect elsewhere
rather than treat it as an error. Note that uvicorn itself closes open WebSockets (with 1012)
*before* it runs lifespan shutdown; this pattern matters for servers and test clients that do not,
and for shutting down sockets that belong to one part of an app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from brillo import status
from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect, WebSocketState

SHUTDOWN_REASON = "Server shutting down"


def create_app() -> Brillo:
    """An echo app whose lifespan shutdown closes all open sockets with 1001."""
    open_sockets: set[WebSocket] = set()

    @contextlib.asynccontextmanager
    async def lifespan(app: Brillo) -> AsyncIterator[None]:
        yield
        for websocket in list(open_sockets):
            if websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await websocket.close(status.WS_1001_GOING_AWAY, SHUTDOWN_REASON)
        open_sockets.clear()

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        open_sockets.add(websocket)
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            open_sockets.discard(websocket)

    application = Brillo(routes=[WebSocketRoute("/ws", echo)], lifespan=lifespan)
    application.state.open_sockets = open_sockets
    return application


app = create_app()
