"""HTTP connections and requests: read-only views over an ASGI scope, derived lazily.

:class:`HTTPConnection` is the base shared by :class:`Request` and
:class:`brillo.websockets.WebSocket`; every derived value (URL, headers, cookies ...) is computed
on first access and cached on the instance.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Coroutine, Generator, Iterator, Mapping
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, cast

import anyio
from typing_extensions import TypeVar

from brillo.datastructures import URL, Address, FormData, Headers, QueryParams, State
from brillo.exceptions import HTTPException
from brillo.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from brillo.datastructures import URLPath

__all__ = ["ClientDisconnect", "HTTPConnection", "Request", "cookie_parser"]

#: The type of ``connection.state``; ``State`` unless the app declares a typed lifespan state.
StateT = TypeVar("StateT", bound="Mapping[str, Any] | State", default=State)

_SERVER_PUSH_HEADERS = (
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "user-agent",
)

_COOKIE_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _unescape(match: re.Match[str]) -> str:
    octal = match.group(1)
    return chr(int(octal, 8)) if octal else match.group(2)


def _unquote_cookie(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
        if "\\" in value:
            return _COOKIE_ESCAPE.sub(_unescape, value)
    return value


def cookie_parser(cookie_string: str) -> dict[str, str]:
    """Parse a ``Cookie`` header the way browsers send it, tolerating malformed input.

    Pairs are split on ``;``; a chunk without ``=`` is a value with an empty name; surrounding
    whitespace is stripped and double-quoted values are unquoted. Nothing raises: broken pairs
    are kept as well as they can be, empty chunks are skipped, and a later duplicate wins.
    """
    cookies: dict[str, str] = {}
    for chunk in cookie_string.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep:
            name, value = "", name
        name = name.strip()
        value = value.strip()
        if name or value:
            cookies[name] = _unquote_cookie(value)
    return cookies


class ClientDisconnect(Exception):
    """The client disconnected while the request body was being read."""


async def empty_receive() -> Message:
    """The ``receive`` of a Request built without one: raises :class:`RuntimeError`."""
    raise RuntimeError("Receive channel has not been made available")


async def empty_send(message: Message) -> None:
    """The ``send`` of a Request built without one: raises :class:`RuntimeError`."""
    raise RuntimeError("Send channel has not been made available")


class HTTPConnection(Mapping[str, Any], Generic[StateT]):
    """What HTTP requests and WebSocket connections share: a read-only mapping over the scope.

    Generic over the type of :attr:`state` (``HTTPConnection[MyState]``), ``State`` by default.
    """

    def __init__(self, scope: Scope, receive: Receive | None = None) -> None:
        assert scope["type"] in ("http", "websocket"), (
            'HTTPConnection needs a scope of type "http" or "websocket"'
        )
        self.scope = scope

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    # Two connections over equal scopes are still two connections.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def app(self) -> Any:
        """The application (``scope["app"]``)."""
        return self.scope["app"]

    @cached_property
    def url(self) -> URL:
        """The full URL of this connection."""
        return URL(scope=self.scope)

    @cached_property
    def base_url(self) -> URL:
        """The URL of the application root (honours ``root_path``), with a trailing slash."""
        scope = dict(self.scope)
        root = scope.get("app_root_path", scope.get("root_path", ""))
        scope["path"] = root if root.endswith("/") else root + "/"
        scope["query_string"] = b""
        scope["root_path"] = root
        return URL(scope=scope)

    @cached_property
    def headers(self) -> Headers:
        """The request headers (case-insensitive, read-only)."""
        return Headers(scope=self.scope)

    @cached_property
    def query_params(self) -> QueryParams:
        """The parsed query string."""
        return QueryParams(self.scope["query_string"])

    @property
    def path_params(self) -> dict[str, Any]:
        """The path parameters the router matched (empty outside a routed app)."""
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @cached_property
    def cookies(self) -> dict[str, str]:
        """The cookies from the ``Cookie`` header (malformed pairs tolerated).

        Several ``Cookie`` header lines (as HTTP/2 and HTTP/3 clients send them) are read as one,
        joined with ``"; "``; for a name given twice, the later value wins.
        """
        values = self.headers.getlist("cookie")
        if not values:
            return {}
        return cookie_parser(values[0] if len(values) == 1 else "; ".join(values))

    @cached_property
    def client(self) -> Address | None:
        """The client's ``Address(host, port)``, or None when the server does not know it."""
        host_port = self.scope.get("client")
        if host_port is None:
            return None
        return Address(*host_port)

    @property
    def session(self) -> dict[str, Any]:
        """The session dict; needs ``SessionMiddleware`` (AssertionError otherwise)."""
        assert "session" in self.scope, (
            "SessionMiddleware must be installed to access request.session"
        )
        session: dict[str, Any] = self.scope["session"]
        return session

    @property
    def auth(self) -> Any:
        """The credentials; needs ``AuthenticationMiddleware`` (AssertionError otherwise)."""
        assert "auth" in self.scope, (
            "AuthenticationMiddleware must be installed to access request.auth"
        )
        return self.scope["auth"]

    @property
    def user(self) -> Any:
        """The user; needs ``AuthenticationMiddleware`` (AssertionError otherwise)."""
        assert "user" in self.scope, (
            "AuthenticationMiddleware must be installed to access request.user"
        )
        return self.scope["user"]

    @cached_property
    def state(self) -> StateT:
        """Per-connection state, seeded from ``scope["state"]`` (the lifespan state copy).

        Attributes set on it are stored in ``scope["state"]``, so middleware and endpoints of
        the same connection share them.
        """
        return cast(StateT, State(self.scope.setdefault("state", {})))

    def url_for(self, name: str, /, **path_params: Any) -> URL:
        """The absolute URL of the route called ``name``, with ``path_params`` filled in."""
        router = self.scope.get("router")
        if router is None:
            router = self.scope.get("app")
            if router is None:
                raise RuntimeError(
                    "The `url_for` method can only be used inside a Starlette application or "
                    'with a router. Neither scope["router"] nor scope["app"] is set: build the '
                    "Request inside a brillo application, or set one of them."
                )
        url_path: URLPath = router.url_path_for(name, **path_params)
        return url_path.make_absolute_url(base_url=self.base_url)


class _FormHandle:
    """What ``Request.form()`` returns: awaitable, and an async context manager closing files."""

    __slots__ = ("_coro", "_form")

    def __init__(self, coro: Coroutine[Any, Any, FormData]) -> None:
        self._coro = coro
        self._form: FormData | None = None

    def __await__(self) -> Generator[Any, None, FormData]:
        return self._coro.__await__()

    async def __aenter__(self) -> FormData:
        self._form = await self._coro
        return self._form

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._form is not None:
            await self._form.close()


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


class Request(HTTPConnection[StateT]):
    """An HTTP request: the scope plus the ``receive`` callable the body is read from."""

    def __init__(
        self, scope: Scope, receive: Receive = empty_receive, send: Send = empty_send
    ) -> None:
        assert scope["type"] == "http", 'Request needs a scope of type "http"'
        # HTTPConnection.__init__, inlined: one request, one Request. (``_http_request`` below
        # sets these same three fields.)
        self.scope = scope
        self._receive = receive
        self._send = send

    # Per-request state; class-level defaults until first set (fewer stores per request).
    _stream_consumed = False
    _is_disconnected = False
    _form: FormData | None = None

    @property
    def method(self) -> str:
        """The HTTP method, upper case."""
        method: str = self.scope["method"]
        return method

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` callable."""
        return self._receive

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Yield the body in chunks as it arrives (then a final ``b""``).

        Once the body has been read by :meth:`body`, yields it again; streaming it a second
        time otherwise raises :class:`RuntimeError`. Raises :class:`ClientDisconnect` if the
        client disconnects before the body is complete.
        """
        if hasattr(self, "_body"):
            yield self._body
            yield b""
            return
        if self._stream_consumed:
            raise RuntimeError("Stream consumed")
        while not self._stream_consumed:
            message = await self._receive()
            message_type = message["type"]
            if message_type == "http.request":
                body = message.get("body", b"")
                if not message.get("more_body", False):
                    self._stream_consumed = True
                if body:
                    yield body
            elif message_type == "http.disconnect":
                self._is_disconnected = True
                raise ClientDisconnect()
        yield b""

    async def body(self) -> bytes:
        """The whole request body (read once, then cached)."""
        if not hasattr(self, "_body"):
            chunks = [chunk async for chunk in self.stream()]
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The request body decoded as JSON (cached)."""
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body())
        return self._json

    async def _get_form(
        self, *, max_files: int | float, max_fields: int | float, max_part_size: int
    ) -> FormData:
        if self._form is None:
            from brillo.formparsers import FormParser, MultiPartException, MultiPartParser

            media_type = _media_type(self.headers.get("content-type", ""))
            parser: MultiPartParser | FormParser
            if media_type == "multipart/form-data":
                stream = self.stream()
                parser = MultiPartParser(
                    self.headers,
                    stream,
                    max_files=max_files,
                    max_fields=max_fields,
                    max_part_size=max_part_size,
                )
            elif media_type == "application/x-www-form-urlencoded":
                stream = self.stream()
                # The same field limits apply to urlencoded bodies.
                parser = FormParser(
                    self.headers,
                    stream,
                    max_fields=None if max_fields == float("inf") else int(max_fields),
                    max_part_size=max_part_size,
                )
            else:
                self._form = FormData()
                return self._form
            try:
                self._form = await parser.parse()
            except MultiPartException as exc:
                if "app" in self.scope:
                    raise HTTPException(status_code=400, detail=exc.message) from exc
                raise
            finally:
                # A parser that stopped early leaves the body generator suspended.
                await stream.aclose()
        return self._form

    def form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> _FormHandle:
        """Parse the body as a form (urlencoded or multipart); cached after the first call.

        Use as ``form = await request.form()`` or ``async with request.form() as form:`` (which
        closes uploaded files at exit). A malformed multipart body raises ``HTTPException(400)``
        inside a brillo app (``MultiPartException`` otherwise).
        """
        return _FormHandle(
            self._get_form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
        )

    async def close(self) -> None:
        """Close the files of a parsed form, if any."""
        if self._form is not None:
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """True once the client has disconnected; never waits for a message."""
        if not self._is_disconnected:
            message: Message = {}
            with anyio.CancelScope() as scope:
                scope.cancel()
                message = await self._receive()
            if message.get("type") == "http.disconnect":
                self._is_disconnected = True
        return self._is_disconnected

    async def send_push_promise(self, path: str) -> None:
        """Ask the server to push ``path`` (HTTP/2); a no-op when the server cannot push."""
        if "http.response.push" in (self.scope.get("extensions") or {}):
            raw_headers: list[tuple[bytes, bytes]] = []
            for name in _SERVER_PUSH_HEADERS:
                for value in self.headers.getlist(name):
                    raw_headers.append((name.encode("latin-1"), value.encode("latin-1")))
            await self._send({"type": "http.response.push", "path": path, "headers": raw_headers})

    async def send_early_hints(self, link: str, /, *additional_links: str) -> None:
        """Send a ``103 Early Hints`` response carrying ``Link`` header values.

        Each argument is one ``Link`` value, e.g. ``'</style.css>; rel=preload; as=style'``.
        A no-op when the server does not offer the ASGI ``http.response.early_hint`` extension.
        """
        if "http.response.early_hint" not in (self.scope.get("extensions") or {}):
            return
        links = [link.encode("latin-1")]
        links.extend(value.encode("latin-1") for value in additional_links)
        await self._send({"type": "http.response.early_hint", "links": links})


_new_object = object.__new__


def _http_request(scope: Scope, receive: Receive, send: Send) -> Request:
    """``Request(scope, receive, send)`` for a scope known to be HTTP, as brillo's endpoint
    wrappers build one per request.

    It sets the same fields as ``Request.__init__`` without calling the class: instantiating a
    Python class runs ``__init__`` from C in a frame of its own, which costs more than the three
    assignments (``tests/test_inline_stack.py`` checks the two agree).
    """
    request: Request = _new_object(Request)
    request.scope = scope
    request._receive = receive
    request._send = send
    return request
