"""Small raw-ASGI helpers shared by brillo's bundled middleware.

The middleware classes work directly on ``scope``/``receive``/``send`` so that the per-request cost
is a handful of tuple scans, not a tree of wrapper objects. These helpers keep that code short.
"""

from __future__ import annotations

from collections.abc import Iterable

from brillo._utils import truncate_close_reason
from brillo.status import WS_1008_POLICY_VIOLATION
from brillo.types import Message, Scope, Send

__all__ = [
    "DENIAL_EXTENSION",
    "get_header",
    "reject",
]

DENIAL_EXTENSION = "websocket.http.response"


def get_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes) in ``scope["headers"]``, or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def get_headers(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of header ``name`` (lower-case bytes), in order."""
    return [bytes(value) for key, value in scope.get("headers", ()) if key == name]


async def reject(
    scope: Scope,
    send: Send,
    status: int,
    body: str,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
    ws_close_code: int = WS_1008_POLICY_VIOLATION,
) -> None:
    """Answer the connection with a short plain-text HTTP response without calling the app.

    On a WebSocket scope the answer is a denial response when the server supports the
    ``websocket.http.response`` extension, else a close before accept (HTTP 403 on the wire)
    with ``ws_close_code`` and ``body`` as the reason.
    """
    payload = body.encode("utf-8")
    header_list = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(payload)).encode("latin-1")),
        *headers,
    ]
    if scope["type"] == "websocket":
        if DENIAL_EXTENSION in (scope.get("extensions") or {}):
            await send(
                {"type": "websocket.http.response.start", "status": status, "headers": header_list}
            )
            await send({"type": "websocket.http.response.body", "body": payload})
        else:
            await send(
                {
                    "type": "websocket.close",
                    "code": ws_close_code,
                    "reason": truncate_close_reason(body),
                }
            )
        return
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": payload})


def set_header(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """Replace every ``name`` header (lower-case bytes) in ``headers`` with one ``value``."""
    headers[:] = [item for item in headers if item[0].lower() != name]
    headers.append((name, value))


def add_vary(headers: list[tuple[bytes, bytes]], token: bytes) -> None:
    """Add ``token`` to the response's ``Vary`` unless it (or ``*``) is already listed.

    Every ``Vary`` header counts (an app may send several); the token joins the last one, so
    the combined value keeps the app's order and ends with ``token``.
    """
    lowered = token.lower()
    last = -1
    for index, (key, existing) in enumerate(headers):
        if key.lower() == b"vary":
            tokens = [t.strip().lower() for t in existing.split(b",")]
            if lowered in tokens or b"*" in tokens:
                return
            last = index
    if last < 0:
        headers.append((b"vary", token))
    else:
        key, existing = headers[last]
        headers[last] = (key, existing + b", " + token if existing.strip() else token)


def mutable_headers(message: Message) -> list[tuple[bytes, bytes]]:
    """``message["headers"]`` as a list this middleware may edit in place (stored back)."""
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = [(bytes(k), bytes(v)) for k, v in (headers or ())]
        message["headers"] = headers
    return headers
