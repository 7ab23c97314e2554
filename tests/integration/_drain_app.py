"""The app of the drain test: every WebSocket joins one room of a hub with a farewell message.

Served by ``brillo tests.integration._drain_app:app`` in a child process.
``GET /count`` says how many are in the room; ``POST /publish?n=N`` publishes N numbered
messages and answers once the hub has taken them all.
"""

from __future__ import annotations

from brillo.applications import Brillo
from brillo.realtime import Hub
from brillo.requests import Request
from brillo.responses import JSONResponse
from brillo.routing import Route, WebSocketRoute
from brillo.websockets import WebSocket

hub = Hub("memory://", shutdown_message={"type": "bye"}, queue_size=1024)


async def member(websocket: WebSocket) -> None:
    await websocket.accept()
    async with hub.join(websocket, "all") as membership:
        membership.send({"type": "joined"})
        async for _ in websocket.iter_text():
            pass


async def count(request: Request) -> JSONResponse:
    return JSONResponse({"members": len(hub.members("all"))})


async def publish(request: Request) -> JSONResponse:
    n = int(request.query_params["n"])
    for number in range(n):
        await hub.publish("all", {"n": number})
    return JSONResponse({"published": n})


app = Brillo(
    routes=[
        WebSocketRoute("/ws", member),
        Route("/count", count),
        Route("/publish", publish, methods=["POST"]),
    ],
    lifespan=hub.lifespan,
)
