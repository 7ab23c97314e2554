"""Compress HTTP responses with gzip when the client accepts it."""

from __future__ import annotations

import zlib
from collections.abc import Collection

import anyio.to_thread

from brillo._middleware_asgi import add_vary, get_header, mutable_headers, set_header
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_EXCLUDED_CONTENT_TYPES", "GZipMiddleware"]

#: Media types never compressed: server-sent events (must flush per event) and formats that are
#: already compressed. ``type/*`` entries match a whole top-level type.
DEFAULT_EXCLUDED_CONTENT_TYPES: tuple[str, ...] = (
    "text/event-stream",
    "application/grpc",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
)


def _accepts_gzip(value: bytes | None) -> bool:
    """True when an ``Accept-Encoding`` value allows gzip (``q=0`` refuses it)."""
    if value is None:
        return False
    for item in value.decode("latin-1").lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() in ("gzip", "*"):
            params = params.replace(" ", "")
            if params.startswith("q="):
                try:
                    return float(params[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


class GZipMiddleware:
    """Gzip response bodies for clients whose ``Accept-Encoding`` includes ``gzip``.

    A single-message body smaller than ``minimum_size`` bytes is sent as is. Streaming bodies
    (``more_body=True``) are compressed chunk by chunk and flushed after every chunk, so each chunk
    reaches the client as soon as the app produces it. Responses that already carry a
    ``Content-Encoding``, partial content (206) and responses whose media type is in
    ``exclude_content_types`` (server-sent events and already-compressed formats by default) are
    left alone. Every response that could have been compressed gets ``Vary: Accept-Encoding``.
    Body chunks of at least ``thread_minimum_size`` bytes are compressed in a worker thread so
    that the event loop stays responsive. WebSocket and lifespan scopes pass straight through.
    """

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 500,
        compresslevel: int = 9,
        thread_minimum_size: int = 128 * 1024,
        *,
        exclude_content_types: Collection[str] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        if not 0 <= compresslevel <= 9:
            raise ValueError(f"compresslevel must be between 0 and 9, got {compresslevel}")
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self.thread_minimum_size = thread_minimum_size
        exact: set[bytes] = set()
        prefixes: list[bytes] = []
        for item in exclude_content_types:
            lowered = item.strip().lower().encode("latin-1")
            if lowered.endswith(b"/*"):
                prefixes.append(lowered[:-1])
            else:
                exact.add(lowered)
        self._excluded = frozenset(exact)
        self._excluded_prefixes = tuple(prefixes)

    def _compressible(self, message: Message) -> bool:
        if message.get("status", 200) == 206:
            return False
        content_type = b""
        for key, value in message.get("headers", ()):
            lowered = key.lower()
            if lowered == b"content-encoding":
                return False
            if lowered == b"content-type":
                content_type = bytes(value)
        media = content_type.split(b";", 1)[0].strip().lower()
        if media in self._excluded:
            return False
        return not (self._excluded_prefixes and media.startswith(self._excluded_prefixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compress the app's response when eligible."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _accepts_gzip(get_header(scope, b"accept-encoding")):
            await _GZipResponder(self, send).run(scope, receive)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start" and self._compressible(message):
                add_vary(mutable_headers(message), b"Accept-Encoding")
            await send(message)

        await self.app(scope, receive, send_with_vary)


def _compress(compressor: zlib._Compress, body: bytes, final: bool) -> bytes:
    mode = zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
    return compressor.compress(body) + compressor.flush(mode)


class _GZipResponder:
    """Per-response state for one compressed response."""

    __slots__ = ("compressor", "mode", "owner", "send", "start")

    def __init__(self, owner: GZipMiddleware, send: Send) -> None:
        self.owner = owner
        self.send = send
        self.start: Message | None = None
        self.mode = 0  # 0: start held back, 1: compressing, 2: passing through unchanged
        self.compressor: zlib._Compress | None = None

    async def run(self, scope: Scope, receive: Receive) -> None:
        await self.owner.app(scope, receive, self.send_compressed)

    async def compress(self, compressor: zlib._Compress, body: bytes, final: bool) -> bytes:
        if len(body) >= self.owner.thread_minimum_size:
            return await anyio.to_thread.run_sync(_compress, compressor, body, final)
        return _compress(compressor, body, final)

    async def send_compressed(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.owner._compressible(message):
                add_vary(mutable_headers(message), b"Accept-Encoding")
                self.start = message
                self.mode = 0
            else:
                self.mode = 2
                await self.send(message)
            return
        if kind != "http.response.body" or self.mode == 2:
            held = self.start
            if held is not None:  # e.g. pathsend or trailers after a held start
                self.start = None
                self.mode = 2
                await self.send(held)
            await self.send(message)
            return

        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if self.mode == 0:
            start = self.start
            assert start is not None
            self.start = None
            headers = mutable_headers(start)
            if not more_body and len(body) < self.owner.minimum_size:
                self.mode = 2
                await self.send(start)
                await self.send(message)
                return
            compressor = zlib.compressobj(self.owner.compresslevel, zlib.DEFLATED, 31)
            self.compressor = compressor
            self.mode = 1
            set_header(headers, b"content-encoding", b"gzip")
            payload = await self.compress(compressor, body, not more_body)
            if more_body:
                headers[:] = [h for h in headers if h[0].lower() != b"content-length"]
            else:
                set_header(headers, b"content-length", str(len(payload)).encode("latin-1"))
            await self.send(start)
            await self.send({"type": "http.response.body", "body": payload, "more_body": more_body})
            return

        active = self.compressor
        assert active is not None
        payload = await self.compress(active, body, not more_body)
        await self.send({"type": "http.response.body", "body": payload, "more_body": more_body})
