"""HTTP responses: plain bodies, JSON, redirects, streams and files.

Every response is an ASGI application: ``await response(scope, receive, send)``. On a
``websocket`` scope the same call sends a *denial response* (``websocket.http.response.*``
messages), which is how :meth:`brillo.websockets.WebSocket.send_denial_response` works.
"""

from __future__ import annotations

import http.cookies
import os
import stat
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime, formatdate
from mimetypes import guess_type
from secrets import token_hex
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import anyio
import anyio.to_thread

from brillo._json import compact_chunks
from brillo._utils import create_collapsing_task_group
from brillo.background import BackgroundTask
from brillo.concurrency import iterate_in_threadpool
from brillo.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from brillo.datastructures import URL, MutableHeaders

__all__ = [
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "MalformedRangeHeader",
    "PlainTextResponse",
    "RangeNotSatisfiable",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
]

RawHeaders = list[tuple[bytes, bytes]]

_HTTP_START = "http.response.start"
_HTTP_BODY = "http.response.body"
_WS_START = "websocket.http.response.start"
_WS_BODY = "websocket.http.response.body"

# media_type -> (charset, content-type header) for the charset last seen with it, or
# (None, header) when the header does not depend on the charset (not ``text/*``, or the charset
# already given); media types are few and static, so this is nearly always a hit.
_content_type_cache: dict[str, tuple[str | None, tuple[bytes, bytes]]] = {}
_CONTENT_TYPE_CACHE_MAX = 256


def _content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    """The ``content-type`` header for ``media_type`` (``text/*`` gets ``; charset=...``)."""
    entry = _content_type_cache.get(media_type)
    if entry is not None and (entry[0] is None or entry[0] == charset):
        return entry[1]
    text = media_type
    depends: str | None = None
    if text.startswith("text/") and "charset=" not in text.lower():
        text = f"{text}; charset={charset}"
        depends = charset
    header = (b"content-type", text.encode("latin-1"))
    if entry is not None or len(_content_type_cache) < _CONTENT_TYPE_CACHE_MAX:
        _content_type_cache[media_type] = (depends, header)
    return header


# Ready-made content-length headers for the body sizes most responses have (header tuples are
# immutable, so every response may share them).
_LENGTH_HEADERS = tuple((b"content-length", str(n).encode("latin-1")) for n in range(4096))


def _content_length_header(length: int) -> tuple[bytes, bytes]:
    if length < 4096:
        return _LENGTH_HEADERS[length]
    return (b"content-length", str(length).encode("latin-1"))


def _byte_view(view: memoryview) -> bytes | memoryview:
    """``view`` as flat bytes, so ``len()`` is its size in bytes and servers can send it.

    A typed view (``memoryview(...).cast("I")``) counts items, not bytes, and a strided one
    (``view[::2]``) is not contiguous: the first is recast to bytes, the second copied.
    """
    if view.format == "B" and view.ndim == 1 and view.contiguous:
        return view
    if view.c_contiguous:
        return view.cast("B")
    return view.tobytes()


def _websocket_denial_send(send: Send) -> Send:
    """Wrap ``send`` so ``http.response.*`` messages go out as ``websocket.http.response.*``."""

    async def denial_send(message: Message) -> None:
        kind = message["type"]
        if kind in (_HTTP_START, _HTTP_BODY):
            message = {**message, "type": "websocket." + kind}
        await send(message)

    return denial_send


# Python 3.14's Morsel knows the CHIPS "Partitioned" attribute (and orders it among the others);
# before that, brillo appends it itself rather than refusing it.
_MORSEL_PARTITIONED = "partitioned" in getattr(http.cookies.Morsel, "_reserved", ())


class _InvalidSameSite(ValueError, AssertionError):
    """``samesite`` is not one of 'strict', 'lax' or 'none'."""


class Response:
    """A response with a complete body, sent in one ``http.response.body`` message.

    ``content`` may be ``str`` (encoded with :attr:`charset`), ``bytes``, ``memoryview`` or
    ``None`` (empty body). ``content-length`` and ``content-type`` (with ``charset`` for
    ``text/*``) are added unless given in ``headers``. ``background`` runs after the body is sent.
    """

    media_type: str | None = None
    charset = "utf-8"
    #: Whether the class keeps :meth:`render` (then ``__init__`` encodes ``str`` content itself)
    #: and :meth:`init_headers` (then ``__init__`` inlines it), read as one class attribute.
    _standard: tuple[bool, bool] = (True, True)

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        body: bytes | memoryview
        standard_render, standard_headers = self._standard
        charset: str | None
        if type(content) is str and standard_render:
            charset = self.charset
            body = content.encode(charset)
        else:
            body = self.render(content)
            charset = None  # read below only if the content type depends on it
        self.body = body
        if headers is not None or not standard_headers:
            self.init_headers(headers)
            return
        # init_headers without headers, inlined: this runs for nearly every response.
        raw: RawHeaders = []
        if body is not None and status_code >= 200 and status_code != 204 and status_code != 304:
            length = len(body)
            raw.append(_LENGTH_HEADERS[length] if length < 4096 else _content_length_header(length))
        media_type = self.media_type
        if media_type is not None:
            # _content_type_header's cache, read here first: one call fewer per response.
            cached = _content_type_cache.get(media_type)
            if cached is not None and (cached[0] is None or cached[0] == charset):
                raw.append(cached[1])
            else:
                raw.append(_content_type_header(media_type, charset or self.charset))
        self.raw_headers = raw

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._standard = (cls.render is Response.render, cls.init_headers is Response.init_headers)

    def render(self, content: Any) -> bytes | memoryview:
        """Turn ``content`` into the body bytes."""
        content_type = type(content)
        if content_type is str:
            encoded: bytes = content.encode(self.charset)
            return encoded
        if content_type is bytes or content is None:
            return content or b""
        if isinstance(content, memoryview):
            return _byte_view(content)
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        raise TypeError(
            f"{type(self).__name__} content must be str, bytes or memoryview, "
            f"not {type(content).__name__}"
        )

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Build :attr:`raw_headers` from ``headers`` plus content-length and content-type."""
        add_length = add_type = True
        if headers is None:
            raw: RawHeaders = []
        else:
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            for name, _ in raw:
                if name == b"content-length":
                    add_length = False
                elif name == b"content-type":
                    add_type = False

        if add_length:
            body = getattr(self, "body", None)
            if body is not None:
                status = self.status_code
                if status >= 200 and status != 204 and status != 304:
                    raw.append(_content_length_header(len(body)))

        if add_type:
            media_type = self.media_type
            if media_type is not None:
                raw.append(_content_type_header(media_type, self.charset))

        self.raw_headers = raw

    @property
    def headers(self) -> MutableHeaders:
        """The response headers, as a live, mutable view of :attr:`raw_headers`."""
        try:
            return self._headers
        except AttributeError:
            from brillo.datastructures import MutableHeaders

            self._headers: MutableHeaders = MutableHeaders(raw=self.raw_headers)
            return self._headers

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header.

        ``expires`` may be a ``datetime`` (sent as an HTTP date), a preformatted string, or an
        ``int`` number of seconds from now. ``samesite`` must be 'lax', 'strict', 'none' or
        ``None`` (omitted). ``partitioned=True`` adds the CHIPS ``Partitioned`` attribute.
        """
        cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = str(max_age)
        if expires is not None:
            if isinstance(expires, datetime):
                morsel["expires"] = format_datetime(expires, usegmt=True)
            else:
                morsel["expires"] = expires  # an int means seconds from now
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            if samesite.lower() not in ("strict", "lax", "none"):
                raise _InvalidSameSite(
                    f"samesite must be either 'strict', 'lax' or 'none', not {samesite!r}"
                )
            morsel["samesite"] = samesite
        if partitioned and _MORSEL_PARTITIONED:
            morsel["partitioned"] = True
        cookie_value = morsel.OutputString()
        if partitioned and not _MORSEL_PARTITIONED:
            cookie_value += "; Partitioned"
        self.raw_headers.append((b"set-cookie", cookie_value.encode("latin-1")))

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Tell the client to drop cookie ``key`` (empty value, ``Max-Age=0``, expired now).

        Pass the same ``path``, ``domain`` and ``partitioned`` the cookie was set with, or the
        browser keeps it.
        """
        self.set_cookie(
            key,
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response, then run the background task, if any.

        On a ``websocket`` scope the messages are the denial response's
        (``websocket.http.response.*``).
        """
        if scope["type"] == "websocket":
            send = _websocket_denial_send(send)
        await _send_plain(self, send)


async def _send_plain(response: Response, send: Send) -> None:
    """Send a :class:`Response` whose class keeps ``Response.__call__``: the start message, the
    whole body, then the background task.

    The one sender of such responses: ``Response.__call__``, ``brillo.routing.request_response``
    and the application's inlined default stack all send through it.
    """
    await send(
        {"type": _HTTP_START, "status": response.status_code, "headers": response.raw_headers}
    )
    await send({"type": _HTTP_BODY, "body": response.body})
    if response.background is not None:
        await response.background()


#: ``Response.__call__``: a response whose class keeps it is sent by :func:`_send_plain`.
_PLAIN_CALL = Response.__call__


class HTMLResponse(Response):
    """A ``text/html`` response."""

    media_type = "text/html"


class PlainTextResponse(Response):
    """A ``text/plain`` response."""

    media_type = "text/plain"


_json_chunks = compact_chunks(allow_nan=False)
_response_init = Response.__init__


class JSONResponse(Response):
    """An ``application/json`` response: compact, UTF-8, and NaN/Infinity rejected."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        # ``Response.__init__`` bound once at import: cheaper per response than ``super()``.
        _response_init(self, content, status_code, headers, media_type, background)

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` to JSON bytes (``ValueError`` for NaN/Infinity)."""
        return "".join(_json_chunks(content, 0)).encode("utf-8")


# RFC 3986 reserved characters plus "%": kept as-is so an already-encoded URL survives.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%"


class RedirectResponse(Response):
    """Redirect to ``url`` (``307`` by default) with a percent-encoded ``location`` header."""

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(
            content=b"", status_code=status_code, headers=headers, background=background
        )
        location = quote(str(url), safe=_URL_SAFE).encode("latin-1")
        raw = self.raw_headers
        for i, (name, _) in enumerate(raw):
            if name == b"location":
                raw[i] = (b"location", location)
                break
        else:
            raw.append((b"location", location))


Content = str | bytes | memoryview
SyncContentStream = Iterable[Content]
AsyncContentStream = AsyncIterable[Content]
ContentStream = AsyncContentStream | SyncContentStream

_spec_version_cache: dict[str, bool] = {}


def _supports_send_oserror(scope: Scope) -> bool:
    """True when the server's ASGI spec_version is >= 2.4 (send raises OSError on disconnect)."""
    asgi = scope.get("asgi")
    version: str = asgi.get("spec_version", "2.0") if asgi else "2.0"
    result = _spec_version_cache.get(version)
    if result is None:
        try:
            parts = tuple(int(p) for p in version.split("."))
        except ValueError:
            parts = (2, 0)
        result = parts >= (2, 4)
        if len(_spec_version_cache) < 16:
            _spec_version_cache[version] = result
    return result


def _disconnect_aware_send(send: Send) -> Send:
    """Wrap ``send`` so an ``OSError`` from it (ASGI >= 2.4: client gone) is ClientDisconnect."""

    async def checked_send(message: Message) -> None:
        try:
            await send(message)
        except OSError as exc:
            from brillo.requests import ClientDisconnect

            raise ClientDisconnect() from exc

    return checked_send


class StreamingResponse(Response):
    """A response whose body comes from a sync or async iterator of ``str``/``bytes`` chunks.

    Sync iterators are advanced in the thread pool. Streaming stops when the client disconnects:
    on ASGI >= 2.4 servers a failing ``send`` (``OSError``) raises
    :class:`brillo.requests.ClientDisconnect` (and the background task does not run); on older
    servers ``http.disconnect`` is awaited alongside the stream and ends it quietly, after which
    the background task still runs (as in Starlette).
    """

    body_iterator: AsyncContentStream

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if isinstance(content, AsyncIterable):
            self.body_iterator = content
        else:
            self.body_iterator = iterate_in_threadpool(content)
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.init_headers(headers)

    async def listen_for_disconnect(self, receive: Receive) -> None:
        """Return once the client has disconnected (``http.disconnect``)."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    async def stream_response(self, send: Send) -> None:
        """Send the start message, every chunk of the body, then the closing empty message."""
        await send({"type": _HTTP_START, "status": self.status_code, "headers": self.raw_headers})
        charset = self.charset
        iterator = self.body_iterator
        try:
            async for chunk in iterator:
                if isinstance(chunk, str):
                    chunk = chunk.encode(charset)
                await send({"type": _HTTP_BODY, "body": chunk, "more_body": True})
        except BaseException:
            # Stopped early (disconnect, cancellation, error): finalise the generator now, so
            # its cleanup runs here rather than whenever it is garbage collected.
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            raise
        await send({"type": _HTTP_BODY, "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body, stopping early if the client goes away, then run the background."""
        if scope["type"] == "websocket":
            await self.stream_response(_websocket_denial_send(send))
        elif _supports_send_oserror(scope):
            await self.stream_response(_disconnect_aware_send(send))
        else:
            await self._stream_until_disconnect(receive, send)
        if self.background is not None:
            await self.background()

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        """Stream while watching for ``http.disconnect``; stop quietly if the client leaves."""
        async with create_collapsing_task_group() as tg:

            async def watch() -> None:
                await self.listen_for_disconnect(receive)
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            await self.stream_response(send)
            tg.cancel_scope.cancel()


async def _cancel_on_disconnect(
    receive: Receive, work: Callable[..., Awaitable[None]], *args: Any
) -> None:
    """Run ``work(*args)``, cancelling it quietly once ``receive`` reports ``http.disconnect``.

    Once the request body has ended, a server's ``receive`` blocks until the disconnect; one
    that answers with yet another ``http.request`` instead never blocks (a hand-made test
    ``receive``, say), so watching it would spin: the watcher then stops.
    """
    async with create_collapsing_task_group() as tg:

        async def watch() -> None:
            body_ended = False
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    tg.cancel_scope.cancel()
                    return
                if body_ended:
                    return
                body_ended = not message.get("more_body", False)

        tg.start_soon(watch)
        await work(*args)
        tg.cancel_scope.cancel()


def _parse_uint(text: str) -> int:
    """Parse ASCII digits; very long numbers saturate instead of failing."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    if len(text) > 30:
        return 10**30
    return int(text)


class MalformedRangeHeader(Exception):
    """The request's ``Range`` header could not be understood (answered with 400)."""

    def __init__(self, content: str = "Malformed range header.") -> None:
        self.content = content
        super().__init__(content)


class RangeNotSatisfiable(Exception):
    """No requested range overlaps the file (answered with 416 and ``bytes */<size>``)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        super().__init__(max_size)


class FileResponse(Response):
    """Send the file at ``path``, with ``ETag``/``Last-Modified`` and HTTP range support.

    The media type is guessed from ``filename`` (or ``path``). With ``filename`` set, a
    ``Content-Disposition`` header (``content_disposition_type``, default ``attachment``) is
    added, using RFC 5987 ``filename*=utf-8''...`` for names that need encoding. HEAD requests
    get headers only. ``Range`` requests get ``206`` (one range, or ``multipart/byteranges`` for
    several), ``416`` when unsatisfiable and ``400`` when malformed; ``If-Range`` is honoured.
    A missing file raises ``RuntimeError`` naming the path when the response is sent.
    """

    chunk_size = 64 * 1024
    #: Requests with more ranges than this are answered with the whole file.
    max_ranges = 100

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        content_disposition_type: str = "attachment",
    ) -> None:
        self.path = path
        self.status_code = status_code
        self.filename = filename
        if media_type is None:
            media_type = guess_type(filename or path)[0] or "application/octet-stream"
        self.media_type = media_type
        self.background = background
        self.init_headers(headers)
        raw = self.raw_headers
        present = {name for name, _ in raw}
        if b"accept-ranges" not in present:
            raw.append((b"accept-ranges", b"bytes"))
        if filename is not None and b"content-disposition" not in present:
            quoted = quote(filename)
            if quoted != filename:
                disposition = f"{content_disposition_type}; filename*=utf-8''{quoted}"
            else:
                disposition = f'{content_disposition_type}; filename="{filename}"'
            raw.append((b"content-disposition", disposition.encode("latin-1")))
        self.stat_result = stat_result
        if stat_result is not None:
            self.set_stat_headers(stat_result)

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        """Add ``content-length``, ``last-modified`` and ``etag`` (unless already set)."""
        raw = self.raw_headers
        present = {name for name, _ in raw}
        if b"content-length" not in present:
            raw.append((b"content-length", str(stat_result.st_size).encode("latin-1")))
        if b"last-modified" not in present:
            last_modified = formatdate(stat_result.st_mtime, usegmt=True)
            raw.append((b"last-modified", last_modified.encode("latin-1")))
        if b"etag" not in present:
            etag = f'"{stat_result.st_mtime_ns:x}-{stat_result.st_size:x}"'
            raw.append((b"etag", etag.encode("latin-1")))

    def _header(self, name: bytes) -> str | None:
        for key, value in self.raw_headers:
            if key == name:
                return value.decode("latin-1")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stat the file if needed, then send it whole, as ranges, or headers only.

        On servers older than ASGI ``spec_version`` 2.4 the body is sent while watching for
        ``http.disconnect``: a client that goes away stops the reading (the background task
        still runs). The file is closed however sending ends, cancellation included.
        """
        scope_type = scope["type"]
        method = scope["method"].upper() if scope_type == "http" else "GET"
        head_only = method == "HEAD"
        if scope_type == "websocket":
            send = _websocket_denial_send(send)

        stat_result = self.stat_result
        if stat_result is None:
            try:
                stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
            except FileNotFoundError:
                raise RuntimeError(f"File at path {self.path} does not exist.") from None
            if not stat.S_ISREG(stat_result.st_mode):
                raise RuntimeError(f"File at path {self.path} is not a file.")
            self.set_stat_headers(stat_result)

        size = stat_result.st_size
        status = self.status_code
        headers = self.raw_headers
        # What to send: (multipart part head or b"", start, end_exclusive) spans of the file,
        # then ``closing`` (the multipart end line) if there is one.
        spans = [(b"", 0, size)]
        closing: bytes | None = None
        http_range = self._requested_range(scope, method) if status == 200 else None
        if http_range is not None:
            try:
                ranges = self._parse_range_header(http_range, size)
            except MalformedRangeHeader as exc:
                await PlainTextResponse(exc.content, status_code=400)(scope, receive, send)
                return
            except RangeNotSatisfiable as exc:
                denied = PlainTextResponse(
                    status_code=416, headers={"content-range": f"bytes */{exc.max_size}"}
                )
                await denied(scope, receive, send)
                return
            if len(ranges) == 1:
                start, end = ranges[0]
                status = 206
                headers = self._headers_with(
                    content_range=f"bytes {start}-{end - 1}/{size}", content_length=str(end - start)
                )
                spans = [(b"", start, end)]
            elif ranges:
                boundary = token_hex(13)
                part_type = self._header(b"content-type") or "application/octet-stream"
                length, part_head = self.generate_multipart(ranges, boundary, size, part_type)
                status = 206
                headers = self._headers_with(
                    content_type=f"multipart/byteranges; boundary={boundary}",
                    content_length=str(length),
                )
                spans = [(part_head(start, end), start, end) for start, end in ranges]
                closing = f"--{boundary}--".encode("latin-1")

        await send({"type": _HTTP_START, "status": status, "headers": headers})
        if head_only:
            await send({"type": _HTTP_BODY, "body": b"", "more_body": False})
        elif (
            status == self.status_code
            and scope_type == "http"
            and "http.response.pathsend" in scope.get("extensions", ())
        ):
            await send({"type": "http.response.pathsend", "path": str(self.path)})
        elif scope_type == "http" and not _supports_send_oserror(scope):
            await _cancel_on_disconnect(receive, self._send_spans, send, spans, closing)
        else:
            await self._send_spans(send, spans, closing)

        if self.background is not None:
            await self.background()

    def _requested_range(self, scope: Scope, method: str) -> str | None:
        """The ``Range`` header to honour: GET/HEAD only, and only if ``If-Range`` matches."""
        if method != "GET" and method != "HEAD":
            return None
        http_range = if_range = None
        for key, value in scope["headers"]:
            if key == b"range":
                http_range = value.decode("latin-1")
            elif key == b"if-range":
                if_range = value.decode("latin-1")
        if if_range is not None and not self._if_range_matches(if_range.strip()):
            return None
        return http_range

    def _if_range_matches(self, if_range: str) -> bool:
        """RFC 9110 13.1.5: a strong ETag match, or exactly the ``Last-Modified`` date."""
        if if_range.startswith('"'):
            return if_range == self._header(b"etag")  # a weak W/"..." ETag never equals it
        return not if_range.startswith("W/") and if_range == self._header(b"last-modified")

    async def _send_spans(
        self, send: Send, spans: list[tuple[bytes, int, int]], closing: bytes | None
    ) -> None:
        """Send the file's ``spans`` (each after its part head), then ``closing`` if any.

        Raises ``RuntimeError`` if the file turns out shorter than its ``stat`` said.
        """
        # Opening and closing are shielded: a cancellation arriving meanwhile must not lose
        # the file object before it is closed.
        with anyio.CancelScope(shield=True):
            file = await anyio.open_file(self.path, mode="rb")
        try:
            chunk_size = self.chunk_size
            last = closing is None  # the final span's last chunk ends the body
            position = 0
            for head, start, end in spans:
                if head:
                    await send({"type": _HTTP_BODY, "body": head, "more_body": True})
                if start != position:
                    await file.seek(start)
                    position = start
                while position < end:
                    chunk = await file.read(min(chunk_size, end - position))
                    if not chunk:
                        raise RuntimeError(f"File at path {self.path} is shorter than expected.")
                    position += len(chunk)
                    more_body = not last or position < end
                    await send({"type": _HTTP_BODY, "body": chunk, "more_body": more_body})
                if head:
                    await send({"type": _HTTP_BODY, "body": b"\r\n", "more_body": True})
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()
        if closing is not None:
            await send({"type": _HTTP_BODY, "body": closing, "more_body": False})
        elif spans[0][1] == spans[0][2]:  # an empty file: nothing has ended the body yet
            await send({"type": _HTTP_BODY, "body": b"", "more_body": False})

    def _headers_with(self, **overrides: str) -> RawHeaders:
        replace = {name.replace("_", "-").encode("latin-1"): v for name, v in overrides.items()}
        raw = [(k, v) for k, v in self.raw_headers if k not in replace]
        raw.extend((k, v.encode("latin-1")) for k, v in replace.items())
        return raw

    def generate_multipart(
        self,
        ranges: Sequence[tuple[int, int]],
        boundary: str,
        max_size: int,
        content_type: str,
    ) -> tuple[int, Callable[[int, int], bytes]]:
        """Lay out a ``multipart/byteranges`` body for ``ranges`` of a ``max_size``-byte file.

        Returns the body's total length and a function that gives the head of the part for
        ``(start, end_exclusive)``: the ``--boundary`` line, ``Content-Type`` and
        ``Content-Range`` headers and the blank line. Each part's bytes are followed by
        ``CRLF``, and the body ends with ``--boundary--``.
        """

        def part_head(start: int, end: int) -> bytes:
            return (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Range: bytes {start}-{end - 1}/{max_size}\r\n\r\n"
            ).encode("latin-1")

        length = sum(len(part_head(start, end)) + (end - start) + 2 for start, end in ranges)
        return length + len(boundary) + 4, part_head

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        """Parse ``Range`` into sorted, merged ``(start, end_exclusive)`` pairs.

        Returns ``[]`` (serve the whole file) when more than :attr:`max_ranges` are asked for.
        Raises :class:`MalformedRangeHeader` or :class:`RangeNotSatisfiable`.
        """
        unit, sep, spec = http_range.partition("=")
        if not sep:
            raise MalformedRangeHeader()
        if unit.strip().lower() != "bytes":
            raise MalformedRangeHeader("Only support bytes range")
        if spec.count(",") >= cls.max_ranges:
            return []

        ranges: list[tuple[int, int]] = []
        for part in spec.split(","):
            first, dash, last = part.strip().partition("-")
            first, last = first.strip(), last.strip()
            if not dash or not (first or last):
                continue
            try:
                start = _parse_uint(first) if first else -1
                stop = _parse_uint(last) if last else -1
            except ValueError:
                continue  # non-numeric parts are ignored
            if start < 0:  # suffix range: the last N bytes
                ranges.append((max(file_size - stop, 0), file_size))
                continue
            if stop >= 0 and stop < start:
                raise MalformedRangeHeader("Range header: start must be less than end")
            ranges.append((start, file_size if stop < 0 else min(stop + 1, file_size)))

        if not ranges:
            raise MalformedRangeHeader("Range header: range must be requested")
        if any(not 0 <= start < file_size for start, _ in ranges):
            raise RangeNotSatisfiable(file_size)
        if len(ranges) == 1:
            return ranges

        ranges.sort()
        merged = [ranges[0]]
        for start, end in ranges[1:]:
            last_start, last_end = merged[-1]
            if start <= last_end:
                merged[-1] = (last_start, max(last_end, end))
            else:
                merged.append((start, end))
        return merged
