"""Token auth for a WebSocket: ``?token=...`` or ``Authorization: Bearer ...``.

A missing or unknown token closes the handshake with 1008 (policy violation) and a reason saying
which; a valid one is greeted with ``{"type": "welcome", "user": name}`` and then echoed to.
Replace :data:`TOKENS` with a real lookup.
"""

from __future__ import annotations

import hmac

from brillo import status
from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect

#: token -> user name. A real app would look tokens up in its auth backend.
TOKENS = {"s3cret-alice": "alice", "s3cret-bob": "bob"}


def token_from(websocket: WebSocket) -> str | None:
    """The token from the ``token`` query parameter, else from a Bearer Authorization header."""
    token = websocket.query_params.get("token")
    if token:
        return token
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def user_for(token: str) -> str | None:
    """The user a token belongs to (compared in constant time), or None."""
    for known, user in TOKENS.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return user
    return None


async def secure(websocket: WebSocket) -> None:
    """Reject with 1008 unless the token is valid; then greet and echo."""
    token = token_from(websocket)
    if token is None:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, "Missing token")
        return
    user = user_for(token)
    if user is None:
        await websocket.close(status.WS_1008_POLICY_VIOLATION, "Invalid token")
        return
    await websocket.accept()
    await websocket.send_json({"type": "welcome", "user": user})
    try:
        while True:
            await websocket.send_text(f"{user}: {await websocket.receive_text()}")
    except WebSocketDisconnect:
        pass


app = Brillo(routes=[WebSocketRoute("/ws", secure)])
