"""Raw ASGI app: the cheapest correct implementation of every benchmark endpoint.

This is the ceiling the frameworks are measured against. It does only what the ASGI spec
requires: no request objects, no routing table, no per-message allocation beyond the event dicts.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

PLAINTEXT = b"Hello, world!"
PLAIN_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(PLAINTEXT)).encode()),
    ],
}
PLAIN_BODY = {"type": "http.response.body", "body": PLAINTEXT}
JSON_BODY_BYTES = json.dumps({"message": "Hello, world!"}, separators=(",", ":")).encode()
JSON_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(JSON_BODY_BYTES)).encode()),
    ],
}
JSON_BODY = {"type": "http.response.body", "body": JSON_BODY_BYTES}
NOT_FOUND_START = {
    "type": "http.response.start",
    "status": 404,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"9")],
}
NOT_FOUND_BODY = {"type": "http.response.body", "body": b"Not Found"}
ACCEPT = {"type": "websocket.accept"}
CLOSE = {"type": "websocket.close", "code": 1000}
PONG = {"type": "websocket.send", "text": '{"type":"pong"}'}

# room name -> set of ASGI ``send`` callables of the members
rooms: dict[str, set[Any]] = {}


async def http(scope: Any, receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/plaintext":
        await send(PLAIN_START)
        await send(PLAIN_BODY)
    elif path == "/json":
        await send(JSON_START)
        await send(JSON_BODY)
    else:
        await send(NOT_FOUND_START)
        await send(NOT_FOUND_BODY)


async def ws_echo(receive: Any, send: Any) -> None:
    await send(ACCEPT)
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})


# prebuilt codec objects: json.dumps/json.loads with keyword arguments build new ones per call
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode


async def ws_json(receive: Any, send: Any) -> None:
    await send(ACCEPT)
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        raw = message.get("text")
        data = _decode(raw if raw is not None else message["bytes"].decode())
        kind = data.get("type")
        if kind == "ping":
            await send(PONG)
        elif kind == "message":
            text = _encode(data)
            await send({"type": "websocket.send", "text": text})


async def ws_fanout(scope: Any, receive: Any, send: Any) -> None:
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    room = query.get("room", "bench")
    await send(ACCEPT)
    members = rooms.setdefault(room, set())
    members.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            text = message.get("text")
            if text is None:
                text = message["bytes"].decode()
            # Encode once: one event dict shared by every member's send.
            event = {"type": "websocket.send", "text": text}
            for member in list(members):
                try:
                    await member(event)
                except Exception:  # a member that went away mid-broadcast
                    members.discard(member)
    finally:
        members.discard(send)
        if not members:
            rooms.pop(room, None)


async def app(scope: Any, receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "http":
        await http(scope, receive, send)
    elif kind == "websocket":
        message = await receive()  # websocket.connect
        assert message["type"] == "websocket.connect"
        path = scope["path"]
        if path == "/ws/echo":
            await ws_echo(receive, send)
        elif path == "/ws/json":
            await ws_json(receive, send)
        elif path == "/ws/fanout":
            await ws_fanout(scope, receive, send)
        else:
            await send(CLOSE)
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
