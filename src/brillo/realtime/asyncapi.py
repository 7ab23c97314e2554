"""An AsyncAPI 3.0 document generated from declared channels, and an ASGI app serving it.

:func:`document` describes every :class:`~brillo.realtime.channels.Channel` of a
:class:`~brillo.realtime.channels.Channels`: its address (the room pattern) and parameters, the
frames a client sends (join, leave, one push per event, each with its reply) and those the server
sends (the declared broadcasts, presence, resync), with the payload types' JSON Schemas (from
msgspec when it is installed) under ``components.schemas``. Message payloads describe whole
frames, as they are on the wire (docs/channels.md). A channel ``connection`` (no address) holds
the frames that belong to no room: heartbeats and stand-alone errors.

Serve it with :class:`AsyncAPIEndpoint` (``Channels.routes`` adds it at ``/asyncapi.json``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from brillo.realtime._payloads import PayloadType, schemas_for
from brillo.realtime._protocol import SUBPROTOCOL

if TYPE_CHECKING:
    from brillo.realtime.channels import Channel, Channels, EventSpec

__all__ = ["ASYNCAPI_VERSION", "AsyncAPIEndpoint", "document"]

ASYNCAPI_VERSION = "3.0.0"

_KEY = re.compile(r"[^\w.\-]")
_REF = {"type": ["string", "integer"], "description": "the client's reference, echoed"}
_ROOM = {"type": "string", "description": "the room (an address of this channel)"}
_POSITION = {
    "type": ["string", "null"],
    "description": "the message's history position, 'epoch:offset'",
}
_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "machine-readable, e.g. 'invalid_payload'"},
        "message": {"type": "string"},
    },
}


def _key(name: str) -> str:
    return _KEY.sub("_", name)


def _frame(kind: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": {"type": {"const": kind}, **properties},
    }


class _Builder:
    """Collects the payload types first (one msgspec pass for all), then builds the document."""

    def __init__(self) -> None:
        self.types: list[Any] = []
        self.messages: dict[str, Any] = {}

    def type_index(self, tp: Any) -> int:
        self.types.append(tp)
        return len(self.types) - 1


def document(
    channels: Channels,
    *,
    title: str | None = None,
    version: str | None = None,
    description: str | None = None,
    servers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``channels`` (a JSON-able dict)."""
    builder = _Builder()
    # Pass 1: every type whose schema is needed, in a fixed order.
    plans: list[tuple[Channel, list[tuple[str, EventSpec, int, int | None]]]] = []
    for channel in channels.channels:
        entries: list[tuple[str, EventSpec, int, int | None]] = []
        join = channel.join_spec
        entries.append(
            ("join", join, builder.type_index(join.payload.type), builder.type_index(join.reply))
        )
        for spec in channel.events.values():
            entries.append(
                (
                    "push",
                    spec,
                    builder.type_index(spec.payload.type),
                    builder.type_index(spec.reply),
                )
            )
        for spec in channel.emitted.values():
            entries.append(("emit", spec, builder.type_index(spec.payload.type), None))
        plans.append((channel, entries))
    schemas, components = schemas_for([_schema_type(tp) for tp in builder.types])

    doc_channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel, entries in plans:
        cid = _key(channel.name)
        own: dict[str, Any] = {}

        def add(
            key: str, message: dict[str, Any], cid: str = cid, own: dict[str, Any] = own
        ) -> str:
            component = f"{cid}.{key}"
            messages[component] = message
            own[key] = {"$ref": f"#/components/messages/{component}"}
            return f"#/channels/{cid}/messages/{key}"

        def operation(
            name: str,
            action: str,
            ref: str,
            summary: str | None,
            reply: str | None = None,
            cid: str = cid,
        ) -> None:
            op: dict[str, Any] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "messages": [{"$ref": ref}],
            }
            if summary:
                op["summary"] = summary
            if reply is not None:
                op["reply"] = {
                    "channel": {"$ref": f"#/channels/{cid}"},
                    "messages": [{"$ref": reply}],
                }
            operations[f"{cid}.{_key(name)}"] = op

        for kind, spec, payload_at, reply_at in entries:
            payload_schema = schemas[payload_at]
            if kind == "join":
                ref = add(
                    "join",
                    _message(
                        "join",
                        "Join a room of this channel",
                        _frame(
                            "join",
                            ["room"],
                            ref=_REF,
                            room=_ROOM,
                            since={
                                "type": ["string", "null"],
                                "description": "the last position seen: resume from there",
                            },
                            payload=payload_schema,
                        ),
                    ),
                )
                reply = add(
                    "joinReply",
                    _message(
                        "joinReply",
                        "The answer to a join: its payload, or an error",
                        _frame(
                            "reply",
                            ["ref", "room"],
                            ref=_REF,
                            room=_ROOM,
                            position=_POSITION,
                            payload=schemas[reply_at] if reply_at is not None else {},
                            error=_ERROR,
                        ),
                    ),
                )
                operation("join", "receive", ref, spec.description or "join a room", reply)
            elif kind == "push":
                key = _key(spec.name)
                ref = add(
                    key,
                    _message(
                        spec.name,
                        spec.description,
                        _frame(
                            "push",
                            ["room", "event"],
                            ref=_REF,
                            room=_ROOM,
                            event={"const": spec.name},
                            payload=payload_schema,
                        ),
                    ),
                )
                reply = add(
                    key + "Reply",
                    _message(
                        spec.name + " reply",
                        f"The answer to a push of {spec.name!r}",
                        _frame(
                            "reply",
                            ["ref", "room"],
                            ref=_REF,
                            room=_ROOM,
                            payload=schemas[reply_at] if reply_at is not None else {},
                            error=_ERROR,
                        ),
                    ),
                )
                operation(spec.name, "receive", ref, spec.description, reply)
            else:
                key = "event." + _key(spec.name)
                ref = add(
                    key,
                    _message(
                        spec.name,
                        spec.description,
                        _frame(
                            "message",
                            ["room", "position", "data"],
                            room=_ROOM,
                            position=_POSITION,
                            data={
                                "type": "object",
                                "required": ["event", "payload"],
                                "properties": {
                                    "event": {"const": spec.name},
                                    "payload": payload_schema,
                                },
                            },
                        ),
                    ),
                )
                operation("event." + spec.name, "send", ref, spec.description)
        leave = add(
            "leave",
            _message("leave", "Leave a room", _frame("leave", ["room"], ref=_REF, room=_ROOM)),
        )
        operation("leave", "receive", leave, "leave a room")
        if channel.presence:
            state = add(
                "presenceState",
                _message(
                    "presence_state",
                    "Who is in the room, sent once after a join (user -> connections)",
                    _frame(
                        "presence_state",
                        ["room", "presence"],
                        room=_ROOM,
                        presence={
                            "type": "object",
                            "additionalProperties": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "connection": {"type": "string"},
                                        "meta": {"type": "object"},
                                    },
                                },
                            },
                        },
                    ),
                ),
            )
            operation("presenceState", "send", state, "the presence state after a join")
            diff = add(
                "presence",
                _message(
                    "presence",
                    "A connection joined or left the room",
                    _frame(
                        "presence",
                        ["event", "room", "user", "connection"],
                        event={"enum": ["join", "leave"]},
                        room=_ROOM,
                        user={"type": "string"},
                        connection={"type": "string"},
                        meta={"type": "object"},
                        expired={"type": "boolean"},
                    ),
                ),
            )
            operation("presence", "send", diff, "presence diffs")
        resync = add(
            "resync",
            _message(
                "resync",
                "The history no longer reaches back to 'since': reload the room's state",
                _frame("resync", ["room", "position"], room=_ROOM, position=_POSITION),
            ),
        )
        operation("resync", "send", resync, "history lost: the client must resync")
        entry: dict[str, Any] = {"address": channel.pattern, "messages": own}
        if channel.description:
            entry["description"] = channel.description
        if channel.parameters:
            entry["parameters"] = {
                name: {"description": f"the {{{name}}} part of the room name"}
                for name in channel.parameters
            }
        doc_channels[cid] = entry

    connection: dict[str, Any] = {}
    for key, summary, frame in (
        ("ping", "A heartbeat; the other side answers pong", _frame("ping", [])),
        ("pong", "The answer to a ping", _frame("pong", [])),
        (
            "error",
            "An error for a frame that carried no ref",
            _frame("error", ["error"], room={"type": ["string", "null"]}, error=_ERROR),
        ),
    ):
        messages[f"connection.{key}"] = _message(key, summary, frame)
        connection[key] = {"$ref": f"#/components/messages/connection.{key}"}
    doc_channels["connection"] = {
        "address": None,
        "description": "frames that belong to no room",
        "messages": connection,
    }
    for name, action in (("ping", "send"), ("pong", "receive"), ("error", "send")):
        operations[f"connection.{name}"] = {
            "action": action,
            "channel": {"$ref": "#/channels/connection"},
            "messages": [{"$ref": f"#/channels/connection/messages/{name}"}],
        }
    operations["connection.clientPing"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/connection"},
        "summary": "a client's own liveness probe; the server answers pong",
        "messages": [{"$ref": "#/channels/connection/messages/ping"}],
    }

    info: dict[str, Any] = {
        "title": title or channels.title,
        "version": version or channels.version,
        "description": description
        or (
            f"Channels over one WebSocket (subprotocol {SUBPROTOCOL!r}, the brillo channel "
            "protocol): every frame is a JSON object with a 'type'."
        ),
    }
    doc: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "defaultContentType": "application/json",
    }
    if servers:
        doc["servers"] = servers
    doc["channels"] = doc_channels
    doc["operations"] = operations
    doc["components"] = {"messages": messages}
    if components:
        doc["components"]["schemas"] = components
    return doc


def _schema_type(tp: Any) -> Any:
    """The type whose schema documents ``tp`` (``None``/NoneType: null; unknown: Any)."""
    if tp is None or tp is type(None):
        return type(None)
    try:
        return PayloadType(tp).type
    except (ImportError, TypeError):  # not checkable here: documented as any JSON
        from typing import Any as _Any

        return _Any


def _message(name: str, summary: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"name": name, "contentType": "application/json", "payload": payload}
    if summary:
        message["summary"] = summary
    return message


class AsyncAPIEndpoint:
    """An ASGI app answering GET with the AsyncAPI document of ``channels`` as JSON.

    With ``ws_path`` the document gets a ``servers.default`` entry built from the request (its
    host, ``ws`` or ``wss``, that path). Mountable in any ASGI framework.
    """

    def __init__(self, channels: Channels, *, ws_path: str | None = None, **info: Any) -> None:
        self.channels = channels
        self.ws_path = ws_path
        self.info = info

    def render(self, scope: Any) -> bytes:
        """The document for the request ``scope``, encoded."""
        servers = None
        if self.ws_path is not None:
            host = ""
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    host = value.decode("latin-1")
            if not host and scope.get("server"):
                host = "{}:{}".format(*scope["server"])
            secure = scope.get("scheme") in ("https", "wss")
            servers = {
                "default": {
                    "host": host or "localhost",
                    "protocol": "wss" if secure else "ws",
                    "pathname": self.ws_path,
                }
            }
        doc = document(self.channels, servers=servers, **self.info)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer GET and HEAD with the document; anything else is 405."""
        if scope["type"] != "http":
            raise RuntimeError("AsyncAPIEndpoint serves HTTP requests only")
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            status, body = 405, b"Method Not Allowed"
            headers = [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain; charset=utf-8")]
        else:
            status, body = 200, self.render(scope)
            headers = [(b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
