"""Collaborative editing: a DocumentManager holds shared text documents that clients edit.

Connect to ``/doc/{doc_id}?user=NAME``. The server first sends
``{"type": "snapshot", "text": ..., "version": n}``. Clients send edits:

* ``{"type": "insert", "pos": i, "text": "..."}``
* ``{"type": "delete", "pos": i, "length": n}``

Each accepted edit bumps the version and is broadcast to every client of the document (the
author included) as ``{"type": "edit", "op": {...}, "version": n, "text": <whole document>,
"author": NAME}``. An invalid edit gets ``{"type": "error", "detail": ...}`` back and changes
nothing; a binary frame closes the socket with 1003. Edits apply in the order the server
receives them (no operational transform: a client should rebase on the broadcast text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from brillo import status
from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from brillo.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

#: Largest document, in characters; an edit that would exceed it is refused.
MAX_LENGTH = 100_000


class EditError(ValueError):
    """An edit that cannot be applied; its message is sent back to the client."""


@dataclass
class Document:
    """One shared document: its text, version and the sockets editing it."""

    text: str = ""
    version: int = 0
    editors: set[WebSocket] = field(default_factory=set)

    def apply(self, op: Any) -> dict[str, Any]:
        """Apply one edit (validated) and return it normalised; raise EditError if invalid."""
        if not isinstance(op, dict):
            raise EditError("An edit must be a JSON object")
        kind = op.get("type")
        pos = op.get("pos")
        if kind not in ("insert", "delete"):
            raise EditError("Unknown edit type (expected insert or delete)")
        if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos <= len(self.text):
            raise EditError(f"pos must be an integer from 0 to {len(self.text)}")
        if kind == "insert":
            text = op.get("text")
            if not isinstance(text, str):
                raise EditError("insert needs a string 'text'")
            if len(self.text) + len(text) > MAX_LENGTH:
                raise EditError(f"The document may not exceed {MAX_LENGTH} characters")
            self.text = self.text[:pos] + text + self.text[pos:]
            normalised: dict[str, Any] = {"type": "insert", "pos": pos, "text": text}
        else:
            length = op.get("length")
            if (
                not isinstance(length, int)
                or isinstance(length, bool)
                or not 0 <= length <= len(self.text) - pos
            ):
                raise EditError(f"length must be an integer from 0 to {len(self.text) - pos}")
            self.text = self.text[:pos] + self.text[pos + length :]
            normalised = {"type": "delete", "pos": pos, "length": length}
        self.version += 1
        return normalised


class DocumentManager:
    """Document id -> :class:`Document`; joins, leaves, edits and broadcasts."""

    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}

    async def join(self, doc_id: str, websocket: WebSocket) -> Document:
        """Accept the socket, register it and send it the current snapshot."""
        document = self.documents.setdefault(doc_id, Document())
        await websocket.accept()
        document.editors.add(websocket)
        await websocket.send_json(
            {"type": "snapshot", "text": document.text, "version": document.version}
        )
        return document

    def leave(self, doc_id: str, websocket: WebSocket) -> None:
        """Unregister the socket (the document and its text stay)."""
        document = self.documents.get(doc_id)
        if document is not None:
            document.editors.discard(websocket)

    async def edit(self, document: Document, op: Any, author: str) -> None:
        """Apply ``op`` and broadcast the result to every editor of the document."""
        normalised = document.apply(op)
        message = {
            "type": "edit",
            "op": normalised,
            "version": document.version,
            "text": document.text,
            "author": author,
        }
        for websocket in list(document.editors):
            try:
                await websocket.send_json(message)
            except (WebSocketDisconnect, WebSocketDisconnected):  # it left mid-broadcast
                document.editors.discard(websocket)


def create_app() -> Brillo:
    """A collaborative-editing app with its own DocumentManager (``app.state.documents``)."""
    manager = DocumentManager()

    async def edit_document(websocket: WebSocket) -> None:
        doc_id: str = websocket.path_params["doc_id"]
        author = websocket.query_params.get("user") or "anonymous"
        document = await manager.join(doc_id, websocket)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    await websocket.close(status.WS_1003_UNSUPPORTED_DATA, "Send JSON text frames")
                    return
                try:
                    await manager.edit(document, json.loads(text), author)
                except ValueError as exc:  # EditError, or JSON that does not parse
                    detail = str(exc) if isinstance(exc, EditError) else "Invalid JSON"
                    await websocket.send_json({"type": "error", "detail": detail})
        finally:
            manager.leave(doc_id, websocket)

    application = Brillo(routes=[WebSocketRoute("/doc/{doc_id}", edit_document)])
    application.state.documents = manager
    return application


app = create_app()
