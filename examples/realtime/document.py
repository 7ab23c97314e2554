"""A collaboratively edited document on the hub: the hand-written DocumentManager, replaced.

Each document is a room. Clients send edits ``{"pos": int, "delete": int, "insert": str}``; the
server applies them in one order, publishes ``{"user", "edit", "length"}`` and every client applies
them in the same order (the hub preserves per-room order for each receiver).

The hub runs with ``envelope=True``: every frame is ``{"type": "message", "room", "position",
"data"}``, so a client can remember the last ``position`` it saw and reconnect to
``/docs/{name}?since=<position>`` to receive exactly the edits it missed. When the history no
longer reaches back (or the server restarted), the hub sends ``{"type": "resync", ...}`` and this
app follows it with a fresh ``{"type": "snapshot", "text", "position"}``; the client ignores
edits until that snapshot, then applies only edits positioned after it. New clients get a
snapshot first.

The text lives in this process (one process: ``memory://``); with several processes keep the
snapshot in a database next to the Redis hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import anyio

from brillo.applications import Brillo
from brillo.realtime import Hub, Position
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket

hub = Hub(
    os.environ.get("BRILLO_REALTIME_URL", "memory://"),
    envelope=True,
    history_size=int(os.environ.get("BRILLO_DOC_HISTORY", "500")),
)

MAX_DOCUMENT = 1_000_000


@dataclass
class Document:
    """The current text of a document and the position of the last edit applied to it."""

    text: str = ""
    position: Position | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock)


documents: dict[str, Document] = {}


class BadEdit(ValueError):
    """An edit that does not fit the document."""


def apply_edit(text: str, edit: Any) -> str:
    """Apply ``{"pos", "delete", "insert"}`` to ``text``; :class:`BadEdit` when it does not fit."""
    if not isinstance(edit, dict):
        raise BadEdit("an edit is a JSON object")
    pos, delete, insert = edit.get("pos"), edit.get("delete", 0), edit.get("insert", "")
    if not isinstance(pos, int) or not isinstance(delete, int) or not isinstance(insert, str):
        raise BadEdit('expected {"pos": int, "delete": int, "insert": str}')
    if isinstance(pos, bool) or isinstance(delete, bool):
        raise BadEdit("pos and delete are integers")
    if not 0 <= pos <= len(text) or not 0 <= delete <= len(text) - pos:
        raise BadEdit(f"edit out of range for a document of length {len(text)}")
    result = text[:pos] + insert + text[pos + delete :]
    if len(result) > MAX_DOCUMENT:
        raise BadEdit("document too large")
    return result


async def snapshot(name: str, document: Document) -> dict[str, Any]:
    """The current text and the position of the last edit applied to it."""
    async with document.lock:
        if document.position is None:  # no edit yet: start from the room's current position
            document.position = (await hub.history(name)).position
        text, position = document.text, document.position
    return {"type": "snapshot", "room": name, "text": text, "position": position and str(position)}


async def edit_document(websocket: WebSocket) -> None:
    """One editor: snapshot (or recovery), then relay edits until the client goes."""
    name = websocket.path_params["name"]
    user = websocket.query_params.get("user") or f"anon-{id(websocket):x}"
    since = websocket.query_params.get("since")
    await websocket.accept()
    document = documents.setdefault(name, Document())
    if since is None:
        first = await snapshot(name, document)
        await websocket.send_json(first)  # the hub's writer for this socket does not exist yet
        since = first["position"]
    try:
        membership = await hub.enter(websocket, name, user=user, since=since)
    except ValueError:
        await websocket.close(1008, "invalid since position")
        return
    try:
        recovery = membership.recovery
        if recovery is not None and recovery.resync_required:
            # queued behind the hub's resync notice, in order with the live edits
            membership.send(await snapshot(name, document))
        async for edit in websocket.iter_json():
            async with document.lock:
                try:
                    new_text = apply_edit(document.text, edit)
                except BadEdit as exc:
                    await websocket.close(1007, str(exc)[:120])
                    return
                data = {"user": user, "edit": edit, "length": len(new_text)}
                document.position = await hub.publish(name, data)
                document.text = new_text
    finally:
        with anyio.CancelScope(shield=True):
            await hub.leave(websocket, name)


app = Brillo(routes=[WebSocketRoute("/docs/{name}", edit_document)], lifespan=hub.lifespan)
