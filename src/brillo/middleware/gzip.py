"""Compress HTTP responses with gzip when the client accepts it."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable

import anyio.to_thread

from brillo._middleware_asgi import add_vary, get_header, mutable_headers
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_EXCLUDED_CONTENT_TYPES",
    "GZipMiddleware",
    "GZipResponder",
    "IdentityResponder",
]

#: Media types never compressed: server-sent events (must flush per event), native gRPC (its
#: messages carry their own compression) and formats that are already compressed. An entry
#: also covers its ``+suffix`` variants (``application/grpc`` covers ``application/grpc+proto``);
#: ``type/*`` entries match a whole top-level type.
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

_START = "http.response.start"
_BODY = "http.response.body"
_VARY_TOKEN = b"Accept-Encoding"


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


def _media_type(content_type: bytes) -> bytes:
    """``Text/HTML; charset=utf-8`` -> ``text/html``."""
    return content_type.split(b";", 1)[0].strip().lower()


class _Exclusions:
    """A normalised ``exclude_content_types``: exact types, their ``+suffix`` forms, ``type/*``."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, content_types: Iterable[str]) -> None:
        exact: set[bytes] = set()
        prefixes: list[bytes] = []
        for item in content_types:
            media = _media_type(item.encode("latin-1"))
            if media.endswith(b"/*"):
                prefixes.append(media[:-1])
            elif media:
                exact.add(media)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def match(self, media: bytes) -> bool:
        exact = self.exact
        if media in exact:
            return True
        base, plus, _ = media.partition(b"+")
        if plus and base in exact:
            return True
        return bool(self.prefixes) and media.startswith(self.prefixes)


class _Settings:
    """What decides whether a response is compressed; shared by the middleware and responders.

    Plain class attributes give the defaults, and the normalised exclusions are derived on first
    use (and again if ``exclude_content_types`` is replaced), so a subclass that skips
    ``__init__`` still works.
    """

    app: ASGIApp
    minimum_size: int = 500
    compresslevel: int = 9
    thread_minimum_size: int = 128 * 1024
    exclude_content_types: Collection[str] = DEFAULT_EXCLUDED_CONTENT_TYPES
    _exclusions: tuple[Collection[str], _Exclusions] | None = None

    def _compressible(self, start: Message) -> bool:
        """False for 206, an existing ``Content-Encoding`` or an excluded media type."""
        if start.get("status", 200) == 206:
            return False
        content_type = None
        for key, value in start.get("headers", ()):
            lowered = key.lower()
            if lowered == b"content-encoding":
                return False
            if lowered == b"content-type":
                content_type = value
        if content_type is None:
            return True
        configured = self.exclude_content_types
        cached = self._exclusions
        if cached is None or cached[0] is not configured:
            cached = self._exclusions = (configured, _Exclusions(configured))
        return not cached[1].match(_media_type(bytes(content_type)))


def _check_level(compresslevel: int) -> None:
    if not 0 <= compresslevel <= 9:
        raise ValueError(f"compresslevel must be between 0 and 9, got {compresslevel}")


class GZipMiddleware(_Settings):
    """Gzip response bodies for clients whose ``Accept-Encoding`` allows ``gzip``.

    A single-message body smaller than ``minimum_size`` bytes is sent as is. Streaming bodies
    (``more_body=True``) are compressed chunk by chunk and flushed after every chunk, so each
    chunk reaches the client as soon as the app produces it. Responses that already carry a
    ``Content-Encoding``, partial content (206) and responses whose media type is in
    ``exclude_content_types`` (server-sent events, gRPC and already-compressed formats by
    default) are left alone, and their start message goes out at once. Every response that
    would be compressed for a gzip client gets ``Vary: Accept-Encoding``, whichever client
    asked. Body chunks of at least ``thread_minimum_size`` bytes are compressed in a worker
    thread so that the event loop stays responsive. Response trailers pass through; a
    compressed response that announces trailers gets no ``Content-Length``. WebSocket and
    lifespan scopes pass straight through.
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
        _check_level(compresslevel)
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self.thread_minimum_size = thread_minimum_size
        self.exclude_content_types = exclude_content_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compress the app's response when the client accepts gzip and it is eligible."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif _accepts_gzip(get_header(scope, b"accept-encoding")):
            await self.app(scope, receive, _GZipSend(self, send))
        else:
            await self.app(scope, receive, _IdentitySend(self, send))


class IdentityResponder(_Settings):
    """Run ``app`` for a client that does not accept gzip: the body is left as it is.

    A compressible response (see :class:`GZipMiddleware`) still gets ``Vary: Accept-Encoding``
    when it is big enough, or streamed, to be compressed for another client. An ASGI app; one
    instance may serve any number of requests.
    """

    content_encoding = "identity"

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int,
        *,
        exclude_content_types: Collection[str] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.exclude_content_types = exclude_content_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _IdentitySend(self, send))


class GZipResponder(IdentityResponder):
    """Run ``app`` and gzip its response when eligible, whatever the request's Accept-Encoding.

    The per-response rules are :class:`GZipMiddleware`'s (which picks this or
    :class:`IdentityResponder` from ``Accept-Encoding``). An ASGI app; one instance may serve
    any number of requests.
    """

    content_encoding = "gzip"

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int,
        compresslevel: int = 9,
        *,
        thread_minimum_size: int = 128 * 1024,
        exclude_content_types: Collection[str] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        _check_level(compresslevel)
        super().__init__(app, minimum_size, exclude_content_types=exclude_content_types)
        self.compresslevel = compresslevel
        self.thread_minimum_size = thread_minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _GZipSend(self, send))


class _IdentitySend:
    """``send`` for one response to a client without gzip: only decides on ``Vary``.

    The start of a compressible response is held until its first body message shows whether a
    gzip client would have got it compressed (streamed, or at least ``minimum_size`` bytes).
    """

    __slots__ = ("send", "settings", "start")

    def __init__(self, settings: _Settings, send: Send) -> None:
        self.settings = settings
        self.send = send
        self.start: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == _START:
            if self.settings._compressible(message):
                self.start = message
            else:
                await self.send(message)
            return
        start = self.start
        if start is None:
            await self.send(message)
            return
        self.start = None
        if message["type"] == _BODY and (
            message.get("more_body", False)
            or len(message.get("body", b"")) >= self.settings.minimum_size
        ):
            add_vary(mutable_headers(start), _VARY_TOKEN)
        await self.send(start)
        await self.send(message)


def _compress(compressor: zlib._Compress, body: bytes, final: bool) -> bytes:
    mode = zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
    return compressor.compress(body) + compressor.flush(mode)


class _GZipSend:
    """``send`` for one response to a gzip client.

    The start of a compressible response is held until the first body message: a single small
    body goes out unchanged (and without ``Vary``), anything else is compressed from there on.
    """

    __slots__ = ("compressor", "send", "settings", "start")

    def __init__(self, settings: _Settings, send: Send) -> None:
        self.settings = settings
        self.send = send
        self.start: Message | None = None
        self.compressor: zlib._Compress | None = None

    async def _compress(self, compressor: zlib._Compress, body: bytes, final: bool) -> bytes:
        if len(body) >= self.settings.thread_minimum_size:
            return await anyio.to_thread.run_sync(_compress, compressor, body, final)
        return _compress(compressor, body, final)

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        compressor = self.compressor
        if compressor is not None:  # compressing: every later body chunk, then trailers
            if kind == _BODY:
                more_body = message.get("more_body", False)
                payload = await self._compress(compressor, message.get("body", b""), not more_body)
                message = {"type": _BODY, "body": payload, "more_body": more_body}
            await self.send(message)
            return
        if kind == _START:
            if self.settings._compressible(message):
                self.start = message
            else:
                await self.send(message)
            return
        start = self.start
        if start is None:  # passing through (or an early hint before the start)
            await self.send(message)
            return
        self.start = None
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if kind != _BODY or (not more_body and len(body) < self.settings.minimum_size):
            # pathsend, or too small to be worth it: the response goes out as it is
            await self.send(start)
            await self.send(message)
            return

        settings = self.settings
        compressor = self.compressor = zlib.compressobj(settings.compresslevel, zlib.DEFLATED, 31)
        payload = await self._compress(compressor, body, not more_body)
        headers = mutable_headers(start)
        add_vary(headers, _VARY_TOKEN)
        headers[:] = [item for item in headers if item[0].lower() != b"content-length"]
        headers.append((b"content-encoding", b"gzip"))
        if not more_body and not start.get("trailers", False):
            # one message: its compressed length is known (trailers need a chunked body)
            headers.append((b"content-length", str(len(payload)).encode("latin-1")))
        await self.send(start)
        await self.send({"type": _BODY, "body": payload, "more_body": more_body})
