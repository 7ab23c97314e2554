"""Wire helpers for the realtime integration tests: JSON WebSocket clients and a tiny HTTP GET."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

TIMEOUT = 10.0


async def recv_json(client: ClientConnection, timeout: float = TIMEOUT) -> Any:
    """The next frame, decoded as JSON (bounded wait)."""
    async with asyncio.timeout(timeout):
        return json.loads(await client.recv())


async def recv_until(client: ClientConnection, predicate: Any, timeout: float = TIMEOUT) -> Any:
    """Read JSON frames until one satisfies ``predicate``; return it (bounded wait)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await client.recv())
            if predicate(message):
                return message


async def http_get(base_url: str, path: str, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
    """GET ``path`` over a plain HTTP/1.1 connection; return (head, body) as received."""
    host_port = base_url.removeprefix("http://")
    host, _, port = host_port.partition(":")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


async def http_get_json(base_url: str, path: str, timeout: float = TIMEOUT) -> Any:
    """GET ``path`` and decode the JSON body (the answer must be 200)."""
    head, body = await http_get(base_url, path, timeout)
    status = int(head.split(b" ", 2)[1])
    assert status == 200, head + b"\r\n\r\n" + body
    return json.loads(body)


async def http_get_text(base_url: str, path: str, timeout: float = TIMEOUT) -> tuple[str, str]:
    """GET ``path``; return (content-type, body text)."""
    head, body = await http_get(base_url, path, timeout)
    content_type = ""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            content_type = value.strip().decode()
    return content_type, body.decode()
