"""One rule for WebSocket close reasons: cut to at most 123 bytes of UTF-8, on a character boundary.

Every place brillo sends a close reason goes through ``brillo._utils.truncate_close_reason``:
``WebSocket.close``, ``WebSocketClose``, the exception handlers (client errors, HTTPException
before accept), and the middleware that refuse a connection. The same reason must come out the
same wherever it is sent. (Over a real server: tests/integration/test_close_reason_wire.py.)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from brillo._utils import MAX_CLOSE_REASON_BYTES, truncate_close_reason
from brillo.applications import Brillo
from brillo.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError
from brillo.exceptions import HTTPException, WebSocketException
from brillo.middleware import Middleware
from brillo.middleware.authentication import AuthenticationMiddleware
from brillo.requests import HTTPConnection
from brillo.routing import WebSocketRoute
from brillo.types import Message, Scope
from brillo.websockets import UnsupportedDataError, WebSocket, WebSocketClose
from tests.support.asgi import ws_scope

pytestmark = pytest.mark.anyio

# One-, two-, three- and four-byte characters.
ALPHABET = "aZ9 éß€中😀"


def expected(reason: str) -> str:
    """The rule, spelled out: the longest prefix of whole characters within 123 bytes."""
    kept = ""
    for char in reason:
        if len((kept + char).encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
            break
        kept += char
    return kept


def test_a_reason_that_fits_is_returned_unchanged() -> None:
    for reason in ("", "bye", "x" * 123, "é" * 61 + "x", "😀" * 30 + "abc"):
        assert truncate_close_reason(reason) is reason


@pytest.mark.parametrize(
    ("reason", "kept"),
    [
        ("x" * 124, "x" * 123),
        ("é" * 62, "é" * 61),  # 124 bytes; half an "é" never goes out
        ("x" + "é" * 62, "x" + "é" * 61),  # 125 bytes -> 123
        ("€" * 42, "€" * 41),  # 126 bytes -> 123
        ("ab" + "€" * 41, "ab" + "€" * 40),  # 125 bytes -> 122: the third "€" byte would split
        ("😀" * 31, "😀" * 30),  # 124 bytes -> 120
    ],
)
def test_a_long_reason_is_cut_on_a_character_boundary(reason: str, kept: str) -> None:
    assert truncate_close_reason(reason) == kept


def test_randomized_reasons_follow_the_rule() -> None:
    rng = random.Random(123)
    for _ in range(3000):
        reason = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 90)))
        cut = truncate_close_reason(reason)
        assert cut == expected(reason), reason
        assert len(cut.encode("utf-8")) <= MAX_CLOSE_REASON_BYTES
        assert reason.startswith(cut)


# -- every sender applies it -----------------------------------------------------------------

LONG = "ré" * 100  # 300 bytes
CUT = expected(LONG)


class Peer:
    """The server side of one WebSocket connection: scripted input, recorded output."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = [{"type": "websocket.connect"}, *incoming]
        self.sent: list[Message] = []
        self.scope: Scope = ws_scope(client=("127.0.0.1", 1234))

    async def receive(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if not self.incoming:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent.append(message)

    async def run(self, app: Any) -> None:
        with anyio.fail_after(5):
            await app(self.scope, self.receive, self.send)

    def close_reason(self) -> str:
        closes = [m for m in self.sent if m["type"] == "websocket.close"]
        assert len(closes) == 1, self.sent
        reason: str = closes[0]["reason"]
        return reason


def ws_app(endpoint: Callable[[WebSocket], Any], **kwargs: Any) -> Brillo:
    return Brillo(routes=[WebSocketRoute("/ws", endpoint)], **kwargs)


async def test_websocket_close_after_accept() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4000, LONG)

    peer = Peer()
    await peer.run(ws_app(endpoint))
    assert peer.close_reason() == CUT


async def test_websocket_close_app() -> None:
    peer = Peer()
    await peer.run(WebSocketClose(4000, LONG))
    assert peer.close_reason() == CUT


async def test_websocket_exception_after_accept() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(4003, LONG)

    peer = Peer()
    await peer.run(ws_app(endpoint))
    assert peer.close_reason() == CUT


async def test_client_error_message() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise UnsupportedDataError(LONG)

    peer = Peer()
    await peer.run(ws_app(endpoint))
    closes = [m for m in peer.sent if m["type"] == "websocket.close"]
    assert closes[0]["code"] == 1003
    # str() of a KeyError subclass quotes its argument; the rule applies to that text.
    assert peer.close_reason() == expected(str(UnsupportedDataError(LONG)))


async def test_http_exception_before_accept_without_denial_extension() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(403, LONG)

    peer = Peer()
    await peer.run(ws_app(endpoint))
    assert peer.close_reason() == CUT


async def test_exception_handler_close_through_raw_send() -> None:
    # A handler registered for WebSocketException, raised by a raw ASGI route app: the closing
    # is done by the handler through a WebSocket the error layer builds around ``send``.
    class Raw:
        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            raise WebSocketException(4004, LONG)

    peer = Peer()
    await peer.run(Brillo(routes=[WebSocketRoute("/ws", Raw())]))
    assert peer.close_reason() == CUT


class Refuse(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Any] | None:
        raise AuthenticationError(LONG)


async def test_authentication_middleware_refusal() -> None:
    async def endpoint(websocket: WebSocket) -> None:  # pragma: no cover - refused before
        await websocket.accept()

    peer = Peer()
    await peer.run(
        ws_app(endpoint, middleware=[Middleware(AuthenticationMiddleware, backend=Refuse())])
    )
    assert peer.close_reason() == CUT
