"""Build ASGI scopes, and drive ASGI apps directly with hand-written receive/send."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from brillo.types import ASGIApp, Message, Receive, Scope, Send

TIMEOUT = 5.0


Headers = Iterable[tuple[str | bytes, str | bytes]]


def _raw(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def http_scope(
    path: str = "/",
    method: str = "GET",
    headers: Headers = (),
    *,
    scheme: str = "http",
    query: bytes = b"",
    host: str | None = "testserver",
    server: tuple[str, int] | None = ("testserver", 80),
    client: tuple[str, int] | None = ("127.0.0.1", 12345),
    root_path: str = "",
    spec_version: str = "2.3",
    **extra: Any,
) -> dict[str, Any]:
    """A spec-shaped HTTP scope; ``extra`` adds or replaces keys (``state={}``, ...).

    Header names are lower-cased; a ``host`` header comes first unless ``host`` is None or
    ``headers`` has one.
    """
    raw = [(_raw(k).lower(), _raw(v)) for k, v in headers]
    if host is not None and not any(k == b"host" for k, _ in raw):
        raw.insert(0, (b"host", host.encode("latin-1")))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": query,
        "headers": raw,
        "client": client,
        "server": server,
        "extensions": {},
    }
    scope.update(extra)
    return scope


def ws_scope(
    path: str = "/ws",
    headers: Headers = (),
    *,
    scheme: str = "ws",
    host: str | None = "testserver",
    server: tuple[str, int] | None = ("testserver", 80),
    client: tuple[str, int] | None = ("127.0.0.1", 12345),
    subprotocols: Sequence[str] = (),
    denial: bool = False,
    spec_version: str = "2.3",
    **extra: Any,
) -> dict[str, Any]:
    """A spec-shaped WebSocket scope; ``denial`` advertises the denial-response extension."""
    scope = http_scope(
        path,
        headers=headers,
        scheme=scheme,
        host=host,
        server=server,
        client=client,
        spec_version=spec_version,
    )
    scope["type"] = "websocket"
    del scope["method"]
    scope["subprotocols"] = list(subprotocols)
    scope["extensions"] = {"websocket.http.response": {}} if denial else {}
    scope.update(extra)
    return scope


@dataclass
class HTTPResult:
    """What an app sent for one HTTP request."""

    status: int
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """First value of ``name`` (case-insensitive), or None."""
        values = self.headers_list(name)
        return values[0] if values else None

    def headers_list(self, name: str) -> list[str]:
        """Every value of ``name`` (case-insensitive)."""
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw_headers if k.lower() == key]

    @property
    def body_chunks(self) -> list[bytes]:
        """The body of every ``http.response.body`` message, in order."""
        return [m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"]


async def call_http(
    app: ASGIApp,
    scope: Scope,
    body: bytes | Sequence[bytes] = b"",
) -> HTTPResult:
    """Send one request (``body`` as one chunk or a list of chunks) and collect the response."""
    chunks = [body] if isinstance(body, bytes) else list(body)
    incoming: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    done = anyio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(dict(message))
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    with anyio.fail_after(TIMEOUT):
        await app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return HTTPResult(starts[0]["status"], list(starts[0]["headers"]), body_out, sent)


async def call_ws(app: ASGIApp, scope: Scope, incoming: Sequence[Message] = ()) -> list[Message]:
    """Run a WebSocket connection: connect, then ``incoming``, then a client close (1000)."""
    queue: list[Message] = [{"type": "websocket.connect"}, *incoming]
    sent: list[Message] = []

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return {"type": "websocket.disconnect", "code": 1000, "reason": ""}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    with anyio.fail_after(TIMEOUT):
        await app(scope, receive, send)
    return sent


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    """HTTP: ``200 hello`` (text/plain). WebSocket: accept, send "hello", close 1000."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})
