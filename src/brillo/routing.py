"""Routing: map a request's path (and host, method, scope type) to the endpoint that serves it.

The building blocks are :class:`Route` (HTTP), :class:`WebSocketRoute`, :class:`Mount` (a
sub-application or sub-router under a path prefix) and :class:`Host` (dispatch on the ``Host``
header), collected in a :class:`Router`. The first route, in declaration order, that fully matches
handles the request. The router precompiles its table into a prefix index so that finding that
route does not get slower as the table grows; the result is always the same as trying every route
in order.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import re
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Self, SupportsIndex, TypeVar, cast

from brillo._exception_handler import ResponseTracker, answer_http_error, websocket_error
from brillo._utils import get_route_path, header_host, host_key, is_async_callable
from brillo.concurrency import run_in_threadpool
from brillo.convertors import CONVERTOR_TYPES, Convertor
from brillo.datastructures import URL, URLPath
from brillo.exceptions import BrilloDeprecationWarning, HTTPException
from brillo.middleware import Middleware
from brillo.middleware.body_limit import RequestBodyLimitMiddleware
from brillo.middleware.websocket_protection import (
    OriginPolicy,
    WebSocketLimits,
    protect_websocket,
)
from brillo.requests import Request, _http_request
from brillo.responses import (
    _PLAIN_CALL,
    PlainTextResponse,
    RedirectResponse,
    Response,
    _send_plain,
)
from brillo.types import ASGIApp, Lifespan, Receive, Scope, Send
from brillo.websockets import WebSocket, WebSocketClose

__all__ = [
    "BaseRoute",
    "Host",
    "Match",
    "Mount",
    "NoMatchFound",
    "Route",
    "Router",
    "WebSocketRoute",
    "compile_path",
    "get_name",
    "replace_params",
    "request_response",
    "websocket_session",
]

T = TypeVar("T")


class NoMatchFound(Exception):
    """``url_path_for`` found no route with that name accepting exactly those parameters."""

    def __init__(self, name: str, path_params: dict[str, Any]) -> None:
        params = ", ".join(path_params)
        super().__init__(f'No route exists for name "{name}" and params "{params}".')


class Match(enum.Enum):
    """How well a route matches a scope."""

    #: Not this route.
    NONE = 0
    #: The path matches but the method does not (used for 405 answers).
    PARTIAL = 1
    #: This route handles the request.
    FULL = 2


# Enum member lookups go through the metaclass; routing reads these on every request.
_NONE = Match.NONE
_PARTIAL = Match.PARTIAL
_FULL = Match.FULL


def get_name(endpoint: Callable[..., Any]) -> str:
    """The default route name of an endpoint: its ``__name__``, else its class name."""
    return getattr(endpoint, "__name__", endpoint.__class__.__name__)


#: What ``request_response`` calls: the endpoint, made awaitable (sync ones run in a thread).
_EndpointCall = Callable[[Request], Awaitable[Response]]
#: The attribute under which ``request_response`` leaves its :data:`_EndpointCall` on the app.
_ENDPOINT_ATTR = "_brillo_endpoint"


def _endpoint_call(func: Callable[[Request], Awaitable[Response] | Response]) -> _EndpointCall:
    if is_async_callable(func):
        return cast(_EndpointCall, func)
    sync = cast(Callable[[Request], Response], func)

    async def call_in_thread(request: Request) -> Response:
        return await run_in_threadpool(sync, request)

    return call_in_thread


def request_response(
    func: Callable[[Request], Awaitable[Response] | Response],
) -> ASGIApp:
    """Turn ``func(request) -> response`` into an ASGI app.

    Synchronous functions run in the thread pool. Exceptions raised by ``func`` are handled by the
    application's exception handlers right here, inside any route middleware.
    """
    call = _endpoint_call(func)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = _http_request(scope, receive, send)
        sender = ResponseTracker.of(send)
        try:
            response = await call(request)
            if type(response).__call__ is _PLAIN_CALL:
                # The plain sender sends the start message first: mark the response started and
                # let it send straight to the server, without the tracker's extra hop.
                sender.started = True
                await _send_plain(response, sender.send)
            else:
                await response(scope, receive, sender)
        except Exception as exc:
            # Handled right here, inside any route middleware (as ExceptionMiddleware would).
            await answer_http_error(exc, request, scope, receive, sender)

    # The application's inlined default stack runs ``call`` itself, the same way (see
    # Brillo.__call__): it finds it here.
    app.__dict__[_ENDPOINT_ATTR] = call
    return app


def websocket_session(
    func: Callable[[WebSocket], Awaitable[None]],
    *,
    allow_origins: Iterable[str] | OriginPolicy | None = None,
    limits: WebSocketLimits | None = None,
) -> ASGIApp:
    """Turn ``async func(websocket)`` into an ASGI app.

    Errors escaping ``func`` are handled as described in :mod:`brillo.middleware.exceptions`: a
    registered handler runs; a client error closes with its code; anything else closes with 1011
    (if accepted) and is re-raised. ``allow_origins`` and ``limits`` protect the endpoint (see
    :mod:`brillo.middleware.websocket_protection`).
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = WebSocket(scope, receive, send)
        try:
            await func(session)
        except Exception as exc:
            if not await websocket_error(exc, session, scope, receive, send):
                raise

    return protect_websocket(app, allow_origins=allow_origins, limits=limits)


# -- paths ------------------------------------------------------------------------------------

_HOST_PORT_SUFFIX = re.compile(r":[0-9]*\Z")
PARAM_REGEX = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?}")


_SLOT = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


def replace_params(
    path: str, param_convertors: dict[str, Convertor[Any]], path_params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Fill the ``{name}`` slots of ``path``; return it with the params that had no slot.

    Every slot is filled in one pass, so a value that looks like a slot (``"{id}"``) stays as
    it is. A slot without a value is left in place. The params used are removed from
    ``path_params``, which is returned.
    """
    if "{" not in path:
        return path, path_params
    used: list[str] = []

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in path_params:
            return match.group(0)
        used.append(key)
        return param_convertors[key].to_string(path_params[key])

    path = _SLOT.sub(fill, path)
    for key in used:
        path_params.pop(key, None)
    return path, path_params


def _safe_url_path(path: str) -> str:
    """A built URL path that no browser reads as another host: ``\\`` and a leading ``//``
    (``/\\evil.com`` or ``//evil.com`` would both be protocol-relative) are percent-encoded."""
    if "\\" in path:
        path = path.replace("\\", "%5C")
    if path.startswith("//"):
        path = "/%2F" + path[2:]
    return path


class InvalidPathError(ValueError, AssertionError):
    """A route path or host pattern that cannot be compiled.

    Raised by :func:`compile_path` (and so by the route constructors) for an unknown convertor
    type or a parameter name used twice. Starlette raises ``AssertionError`` for the first and
    ``ValueError`` for the second; this class is both, so either ``except`` clause catches it.
    """


def compile_path(path: str) -> tuple[re.Pattern[str], str, dict[str, Convertor[Any]]]:
    """Compile a route path (or a host pattern) with ``{name}`` / ``{name:type}`` parameters.

    Returns ``(regex, format, convertors)``: the anchored regular expression matching the path,
    the format string with bare ``{name}`` slots (for ``url_path_for``), and the convertor of each
    parameter. A host pattern (not starting with ``/``) ignores any ``:port`` suffix.

    Raises :class:`InvalidPathError` (both a ``ValueError`` and, as in Starlette, an
    ``AssertionError``) for an unknown convertor type or a parameter name used twice.
    """
    is_host = not path.startswith("/")
    regex = "^"
    path_format = ""
    duplicated: set[str] = set()
    convertors: dict[str, Convertor[Any]] = {}
    idx = 0
    for match in PARAM_REGEX.finditer(path):
        name, type_spec = match.groups()
        convertor_type = type_spec[1:] if type_spec else "str"
        convertor = CONVERTOR_TYPES.get(convertor_type)
        if convertor is None:
            raise InvalidPathError(
                f"Unknown path convertor '{convertor_type}' in path {path!r}; known: "
                f"{', '.join(sorted(CONVERTOR_TYPES))} (see register_url_convertor)."
            )
        literal = path[idx : match.start()]
        regex += re.escape(literal) + f"(?P<{name}>{convertor.regex})"
        path_format += literal + "{" + name + "}"
        if name in convertors:
            duplicated.add(name)
        convertors[name] = convertor
        idx = match.end()
    if duplicated:
        names = ", ".join(sorted(duplicated))
        ending = "s" if len(duplicated) > 1 else ""
        raise InvalidPathError(f"Duplicated param name{ending} {names} at path {path}")
    if is_host:
        # Drop a ":port" suffix (not the colons of an IPv6 literal such as "[::1]").
        regex += re.escape(_HOST_PORT_SUFFIX.sub("", path[idx:])) + "$"
    else:
        regex += re.escape(path[idx:]) + "$"
    path_format += path[idx:]
    return re.compile(regex), path_format, convertors


def _convert(match: re.Match[str], convertors: dict[str, Convertor[Any]]) -> dict[str, Any]:
    params: dict[str, Any] = match.groupdict()
    for key, value in params.items():
        params[key] = convertors[key].convert(value)
    return params


def _path_params(
    scope: Scope, match: re.Match[str], convertors: dict[str, Convertor[Any]]
) -> dict[str, Any]:
    """The enclosing ``path_params`` (from mounts) plus this route's converted parameters."""
    path_params = dict(scope.get("path_params") or ())
    if convertors:
        path_params.update(_convert(match, convertors))
    return path_params


# -- routes -----------------------------------------------------------------------------------


class BaseRoute:
    """Base of all routes: :meth:`matches` a scope, :meth:`handle` it, build URLs back."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """How this route matches ``scope``, and the scope entries to set when it handles it."""
        raise NotImplementedError()  # pragma: no cover

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called ``name`` with these parameters (else NoMatchFound)."""
        raise NotImplementedError()  # pragma: no cover

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a scope this route matched."""
        raise NotImplementedError()  # pragma: no cover

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Use the route on its own as an ASGI app: 404 / close when it does not match."""
        match, child_scope = self.matches(scope)
        if match is _NONE:
            if scope["type"] == "http":
                await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            elif scope["type"] == "websocket":
                await WebSocketClose()(scope, receive, send)
            return
        scope.update(child_scope)
        await self.handle(scope, receive, send)


def _wrap_middleware(
    app: ASGIApp, middleware: Sequence[Middleware] | None, max_body_size: int | None = None
) -> ASGIApp:
    """Wrap ``app`` in ``middleware`` (first entry outermost), then in the body size limit.

    Nothing is added when neither is configured, so unlimited routes pay nothing per request.
    """
    if middleware is not None:
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
    if max_body_size is not None:
        app = RequestBodyLimitMiddleware(app, max_body_size)
    return app


def _is_plain_function(endpoint: Any) -> bool:
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return inspect.isfunction(endpoint) or inspect.ismethod(endpoint)


class Route(BaseRoute):
    """An HTTP route: ``path`` (with ``{param}`` slots) and the endpoint serving it.

    A function (or method) endpoint takes a :class:`~brillo.requests.Request` and returns a
    response; it may be synchronous (run in the thread pool). Anything else, such as an
    :class:`~brillo.endpoints.HTTPEndpoint` subclass, is used as an ASGI app. ``methods``
    defaults to ``["GET"]`` for functions; ``GET`` implies ``HEAD``. ``max_body_size`` limits
    the request body (HTTP 413 beyond it, see
    :class:`~brillo.middleware.body_limit.RequestBodyLimitMiddleware`), replacing a limit set
    on an enclosing mount, router or application; it applies outside the route's
    ``middleware``.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        assert path.startswith("/"), "Routed paths must start with '/'"
        self.path = path
        self.endpoint = endpoint
        self.name = get_name(endpoint) if name is None else name
        self.include_in_schema = include_in_schema
        self.max_body_size = max_body_size

        if _is_plain_function(endpoint):
            self.app: ASGIApp = request_response(endpoint)
            if methods is None:
                methods = ["GET"]
        else:
            self.app = endpoint
        self.app = _wrap_middleware(self.app, middleware, max_body_size)

        if methods is None:
            self.methods: set[str] | None = None
        else:
            self.methods = {method.upper() for method in methods}
            if "GET" in self.methods:
                self.methods.add("HEAD")

        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL for an HTTP scope whose path and method match; PARTIAL if only the path does."""
        if scope["type"] != "http":
            return _NONE, {}
        match = self.path_regex.match(get_route_path(scope))
        if match is None:
            return _NONE, {}
        path_params = _path_params(scope, match, self.param_convertors)
        child_scope: Scope = {"endpoint": self.endpoint, "path_params": path_params, "route": self}
        if self.methods and scope["method"] not in self.methods:
            return _PARTIAL, child_scope
        return _FULL, child_scope

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """This route's path for ``name`` when the parameters are exactly its own."""
        if name != self.name or path_params.keys() != self.param_convertors.keys():
            raise NoMatchFound(name, path_params)
        path, remaining = replace_params(self.path_format, self.param_convertors, path_params)
        assert not remaining
        return URLPath(path=_safe_url_path(path), protocol="http")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 405 (with ``Allow``) for a wrong method, else run the endpoint."""
        if self.methods and scope["method"] not in self.methods:
            # Built here, not in __init__: subclasses such as FastAPI's APIRoute skip it.
            headers = {"Allow": ", ".join(sorted(self.methods))}
            if "app" in scope:
                raise HTTPException(status_code=405, headers=headers)
            response = PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Route)
            and self.path == other.path
            and self.endpoint == other.endpoint
            and self.methods == other.methods
        )

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        methods = sorted(self.methods or [])
        return f"{type(self).__name__}(path={self.path!r}, name={self.name!r}, methods={methods!r})"


class WebSocketRoute(BaseRoute):
    """A WebSocket route: ``path`` and the endpoint serving it.

    A function endpoint is ``async def endpoint(websocket)``; anything else (such as a
    :class:`~brillo.endpoints.WebSocketEndpoint` subclass) is used as an ASGI app.
    ``allow_origins`` and ``limits`` protect the route, outside its ``middleware`` and on top of
    any protection the application applies (see :mod:`brillo.middleware.websocket_protection`).
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        name: str | None = None,
        middleware: Sequence[Middleware] | None = None,
        allow_origins: Iterable[str] | OriginPolicy | None = None,
        limits: WebSocketLimits | None = None,
    ) -> None:
        assert path.startswith("/"), "Routed paths must start with '/'"
        self.path = path
        self.endpoint = endpoint
        self.name = get_name(endpoint) if name is None else name
        if _is_plain_function(endpoint):
            self.app: ASGIApp = websocket_session(endpoint)
        else:
            self.app = endpoint
        self.app = _wrap_middleware(self.app, middleware)
        self.app = protect_websocket(self.app, allow_origins=allow_origins, limits=limits)
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL for a WebSocket scope whose path matches."""
        if scope["type"] != "websocket":
            return _NONE, {}
        match = self.path_regex.match(get_route_path(scope))
        if match is None:
            return _NONE, {}
        path_params = _path_params(scope, match, self.param_convertors)
        return _FULL, {"endpoint": self.endpoint, "path_params": path_params, "route": self}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """This route's path for ``name`` when the parameters are exactly its own."""
        if name != self.name or path_params.keys() != self.param_convertors.keys():
            raise NoMatchFound(name, path_params)
        path, remaining = replace_params(self.path_format, self.param_convertors, path_params)
        assert not remaining
        return URLPath(path=_safe_url_path(path), protocol="websocket")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint."""
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, WebSocketRoute)
            and self.path == other.path
            and self.endpoint == other.endpoint
        )

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, name={self.name!r})"


class Mount(BaseRoute):
    """Serve everything under ``path`` with ``app``, or with a router over ``routes``.

    The child sees the same ``path``; ``root_path`` grows by the matched prefix, so
    ``get_route_path`` yields the rest. Name a mount to build URLs of its routes as
    ``"mountname:routename"``. ``middleware`` wraps the mounted app; ``max_body_size`` limits
    request bodies below the mount (outside its middleware; a limit set further in wins).
    """

    def __init__(
        self,
        path: str,
        app: ASGIApp | None = None,
        routes: Sequence[BaseRoute] | None = None,
        name: str | None = None,
        *,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        assert path == "" or path.startswith("/"), "Routed paths must start with '/'"
        assert app is not None or routes is not None, (
            "Either 'app=...', or 'routes=' must be specified"
        )
        self.path = path.rstrip("/")
        if app is not None:
            self._base_app: ASGIApp = app
        else:
            self._base_app = Router(routes=routes)
        self.app = _wrap_middleware(self._base_app, middleware, max_body_size)
        self.name = name
        self.max_body_size = max_body_size
        self.path_regex, self.path_format, self.param_convertors = compile_path(
            self.path + "/{path:path}"
        )

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes of the mounted router (empty for an app that has none)."""
        return getattr(getattr(self, "_base_app", self.app), "routes", [])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL for an HTTP or WebSocket scope whose path is under this mount's prefix."""
        if scope["type"] not in ("http", "websocket"):
            return _NONE, {}
        route_path = get_route_path(scope)
        match = self.path_regex.match(route_path)
        if match is None:
            return _NONE, {}
        matched = _convert(match, self.param_convertors)
        remaining_path = "/" + matched.pop("path")
        matched_path = route_path[: -len(remaining_path)]
        path_params = dict(scope.get("path_params") or ())
        path_params.update(matched)
        root_path = scope.get("root_path", "")
        child_scope: Scope = {
            "path_params": path_params,
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + matched_path,
            "endpoint": self.app,
            "route": self,
        }
        return _FULL, child_scope

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The mount's own path (``name`` with a ``path`` param) or a path of a child route."""
        if (
            self.name is not None
            and name == self.name
            and path_params.keys() == self.param_convertors.keys()
        ):
            path_params["path"] = str(path_params["path"]).lstrip("/")
            path, remaining = replace_params(self.path_format, self.param_convertors, path_params)
            if not remaining:
                return URLPath(path=_safe_url_path(path))
        elif self.name is None or name.startswith(self.name + ":"):
            # A mount parameter without a value keeps its "{name}" slot in the result.
            remaining_name = name if self.name is None else name[len(self.name) + 1 :]
            path_kwarg = path_params.get("path")
            path_params["path"] = ""
            prefix, remaining_params = replace_params(
                self.path_format, self.param_convertors, path_params
            )
            if path_kwarg is not None:
                remaining_params["path"] = path_kwarg
            url = _child_url_path(self.routes, remaining_name, remaining_params)
            if url is not None:
                path = _safe_url_path(prefix.rstrip("/") + str(url))
                return URLPath(path=path, protocol=url.protocol)
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the mounted app."""
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and self.path == other.path and self.app == other.app

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        name = self.name or ""
        return f"{type(self).__name__}(path={self.path!r}, name={name!r}, app={self.app!r})"


def _child_url_path(
    routes: Sequence[BaseRoute], name: str, path_params: dict[str, Any]
) -> URLPath | None:
    """The path of the first of ``routes`` that knows ``name`` with ``path_params``, if any."""
    for route in routes:
        try:
            return route.url_path_for(name, **path_params)
        except NoMatchFound:
            continue
    return None


class Host(BaseRoute):
    """Serve requests whose ``Host`` header matches ``host`` (which may have ``{params}``).

    Host names match case-insensitively (parameters get the lower-case text); any port, in the
    pattern or the header, is ignored. IPv6 hosts are written bracketed and compressed
    (``"[::1]"``). A malformed Host header (see :func:`brillo._utils.split_host`) matches no
    Host route.
    """

    def __init__(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        assert not host.startswith("/"), "Host must not start with '/'"
        self.host = host
        self.app = app
        self.name = name
        regex, self.host_format, self.param_convertors = compile_path(host)
        self.host_regex = re.compile(regex.pattern, re.IGNORECASE)

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes of the app served for this host (empty for an app that has none)."""
        return getattr(self.app, "routes", [])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL for an HTTP or WebSocket scope whose ``Host`` header matches."""
        if scope["type"] not in ("http", "websocket"):
            return _NONE, {}
        parsed = header_host(scope)
        if parsed is None:
            return _NONE, {}
        match = self.host_regex.match(host_key(parsed[0]))
        if match is None:
            return _NONE, {}
        path_params = dict(scope.get("path_params") or ())
        path_params.update(_convert(match, self.param_convertors))
        return _FULL, {"path_params": path_params, "endpoint": self.app, "route": self}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """A path (with this host) of the host's own name or of a route in its app."""
        if (
            self.name is not None
            and name == self.name
            and path_params.keys() == self.param_convertors.keys() | {"path"}
        ):
            path = str(path_params.pop("path"))
            host, remaining = replace_params(self.host_format, self.param_convertors, path_params)
            if not remaining:
                return URLPath(path=_safe_url_path(path), host=host)
        elif (self.name is None or name.startswith(self.name + ":")) and all(
            key in path_params for key in self.param_convertors
        ):
            remaining_name = name if self.name is None else name[len(self.name) + 1 :]
            host, remaining_params = replace_params(
                self.host_format, self.param_convertors, path_params
            )
            url = _child_url_path(self.routes, remaining_name, remaining_params)
            if url is not None:
                return URLPath(path=_safe_url_path(str(url)), protocol=url.protocol, host=host)
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app."""
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Host) and self.host == other.host and self.app == other.app

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        name = self.name or ""
        return f"{type(self).__name__}(host={self.host!r}, name={name!r}, app={self.app!r})"


# -- the route index --------------------------------------------------------------------------


class _RouteList(list[BaseRoute]):
    """``router.routes``: a plain list that tells its router when it changes."""

    def __init__(self, routes: Iterable[BaseRoute], on_change: Callable[[], None]) -> None:
        super().__init__(routes)
        self._on_change = on_change

    def _changed(self, result: T) -> T:
        self._on_change()
        return result

    def append(self, route: BaseRoute) -> None:
        self._changed(super().append(route))

    def extend(self, routes: Iterable[BaseRoute]) -> None:
        self._changed(super().extend(routes))

    def insert(self, index: SupportsIndex, route: BaseRoute) -> None:
        self._changed(super().insert(index, route))

    def remove(self, route: BaseRoute) -> None:
        self._changed(super().remove(route))

    def pop(self, index: SupportsIndex = -1) -> BaseRoute:
        return self._changed(super().pop(index))

    def clear(self) -> None:
        self._changed(super().clear())

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._changed(super().sort(*args, **kwargs))

    def reverse(self) -> None:
        self._changed(super().reverse())

    def __setitem__(self, index: Any, value: Any) -> None:
        self._changed(super().__setitem__(index, value))

    def __delitem__(self, index: Any) -> None:
        self._changed(super().__delitem__(index))

    # mypy holds ``+=`` to ``list.__add__``'s overloads, which no list subclass can meet.
    def __iadd__(self, routes: Iterable[BaseRoute]) -> Self:  # type: ignore[override,misc]
        super().__iadd__(routes)
        return self._changed(self)

    def __imul__(self, count: SupportsIndex) -> Self:
        super().__imul__(count)
        return self._changed(self)


#: A candidate route for one scope type, with itself again when its class is exactly
#: :class:`Route` / :class:`WebSocketRoute` (whose ``matches`` and ``handle`` the router runs
#: inline), else None (the router calls its ``matches``).
_Entry = tuple[BaseRoute, Route | WebSocketRoute | None]

_ROUTE_MATCHES = Route.matches
_WEBSOCKET_ROUTE_MATCHES = WebSocketRoute.matches


class _Candidates:
    """The routes that may match a path, in declaration order: all of them (``routes``), and
    per scope type (``http``, ``websocket``) without those that never match that type."""

    __slots__ = ("http", "routes", "websocket")

    def __init__(self, routes: tuple[BaseRoute, ...]) -> None:
        self.routes = routes
        self.http: tuple[_Entry, ...] = tuple(
            (route, route if type(route) is Route else None)
            for route in routes
            if type(route).matches is not _WEBSOCKET_ROUTE_MATCHES
        )
        self.websocket: tuple[_Entry, ...] = tuple(
            (route, route if type(route) is WebSocketRoute else None)
            for route in routes
            if type(route).matches is not _ROUTE_MATCHES
        )


_NO_CANDIDATES = _Candidates(())


class _Node:
    __slots__ = ("candidates", "children", "own")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.own: list[int] = []
        self.candidates = _NO_CANDIDATES


_INDEXABLE = (
    (Route, _ROUTE_MATCHES),
    (WebSocketRoute, _WEBSOCKET_ROUTE_MATCHES),
    (Mount, Mount.matches),
)


def _static_prefix(route: BaseRoute) -> list[str] | None:
    """The literal path segments every path this route matches starts with (None: unknown)."""
    if not isinstance(route, Route | WebSocketRoute | Mount):
        return None
    for cls, matches in _INDEXABLE:
        if isinstance(route, cls):
            if type(route).matches is not matches:
                return None
            break
    path = route.path
    if isinstance(route, Mount):
        # "/a/b" matches "/a/b/<anything>": every segment is complete; "" matches everything.
        segments = path.split("/")[1:] if path else []
    else:
        segments = path.split("/")[1:]
    prefix: list[str] = []
    for segment in segments:
        if "{" in segment:
            break
        prefix.append(segment)
    return prefix


class _Index:
    """Routes grouped by literal leading path segments, in a trie.

    Each node holds, in declaration order, every route whose literal prefix is the node's path
    or an ancestor's (routes of unknown shape sit at the root). Walking a request path down the
    trie as far as it goes yields exactly the routes that could match it, in order. The
    candidates of every parameter-free route path are also kept in a dict, so the commonest
    lookups are a single dict hit.
    """

    __slots__ = ("all", "depth", "exact", "first_http", "first_websocket", "root")

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.all = _Candidates(tuple(routes))
        self.root = _Node()
        self.depth = 0
        static_paths: list[str] = []
        for position, route in enumerate(routes):
            prefix = _static_prefix(route)
            node = self.root
            for segment in prefix or ():
                child = node.children.get(segment)
                if child is None:
                    child = node.children[segment] = _Node()
                node = child
            node.own.append(position)
            if prefix:
                self.depth = max(self.depth, len(prefix))
                if isinstance(route, Route | WebSocketRoute) and not route.param_convertors:
                    static_paths.append(route.path)
        self._fill(self.root, [])
        self.exact: dict[str, _Candidates] = {path: self._walk(path) for path in static_paths}
        # Parameter-free path -> the first candidate an HTTP (or WebSocket) scope could match,
        # when that is a parameter-free Route (or WebSocketRoute), exact class, known to match
        # the path: no regex to run for the commonest requests.
        self.first_http: dict[str, Route] = {}
        self.first_websocket: dict[str, WebSocketRoute] = {}
        for path, found in self.exact.items():
            if found.http:
                first = found.http[0][1]
                if type(first) is Route and _matches_plainly(first, path):
                    self.first_http[path] = first
            if found.websocket:
                first = found.websocket[0][1]
                if type(first) is WebSocketRoute and _matches_plainly(first, path):
                    self.first_websocket[path] = first

    def _fill(self, node: _Node, inherited: list[int]) -> None:
        positions = sorted(inherited + node.own) if node.own else inherited
        node.candidates = _Candidates(tuple(self.all.routes[i] for i in positions))
        for child in node.children.values():
            self._fill(child, positions)

    def _walk(self, route_path: str) -> _Candidates:
        node = self.root
        if route_path.startswith("/"):
            segments = route_path.split("/", self.depth + 1)
            del segments[0]
            del segments[self.depth :]
            for segment in segments:
                child = node.children.get(segment)
                if child is None:
                    break
                node = child
        return node.candidates

    def candidates(self, route_path: str) -> _Candidates:
        """The routes that may match ``route_path``, in declaration order."""
        found = self.exact.get(route_path)
        if found is not None:
            return found
        if route_path.endswith("\n"):
            # "$" in a route regex also matches before a final newline: try everything.
            return self.all
        return self._walk(route_path)


def _matches_plainly(route: Route | WebSocketRoute, path: str) -> bool:
    """Whether ``route`` (no parameters) matches ``path`` without anything else to check."""
    return not route.param_convertors and route.path_regex.match(path) is not None


# -- the router -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _no_lifespan(app: object) -> AsyncIterator[None]:
    yield None


def _lifespan_context(lifespan: Any) -> Lifespan[Any]:
    """The async context manager factory for a router's ``lifespan`` argument.

    Plain (async or sync) generator functions, which older Starlette versions accepted, still
    run (startup before the ``yield``, shutdown after it) with a deprecation warning.
    """
    if lifespan is None:
        return _no_lifespan
    # The warning names the function; it is attributed to this module (stacklevel=1), where
    # filters written for Starlette's own warning (module "starlette.routing") look for it.
    where = f"{getattr(lifespan, '__module__', '?')}.{getattr(lifespan, '__qualname__', '?')}"
    if inspect.isasyncgenfunction(lifespan):
        warnings.warn(
            "async generator function lifespans are deprecated, use an "
            f"@contextlib.asynccontextmanager function instead (lifespan={where})",
            BrilloDeprecationWarning,
            stacklevel=1,
        )
        return contextlib.asynccontextmanager(lifespan)
    if inspect.isgeneratorfunction(lifespan):
        warnings.warn(
            "generator function lifespans are deprecated, use an "
            f"@contextlib.asynccontextmanager function instead (lifespan={where})",
            BrilloDeprecationWarning,
            stacklevel=1,
        )
        sync_context = contextlib.contextmanager(lifespan)

        @contextlib.asynccontextmanager
        async def lifted(app: Any) -> AsyncIterator[Any]:
            with sync_context(app) as state:
                yield state

        return lifted
    factory: Lifespan[Any] = lifespan
    return factory


class Router:
    """A table of routes, itself an ASGI app: dispatches each scope to the first matching route.

    No match: 404 for HTTP (an HTTPException inside an application, so handlers can render it),
    a close for WebSockets; a path matching only with the other trailing-slash form is
    redirected when ``redirect_slashes``. ``lifespan`` is an async context manager factory
    called with the application; a mapping it yields is merged into the lifespan state.
    ``middleware`` wraps the whole router and ``max_body_size`` limits request bodies (outside
    that middleware; a limit set on a mount or route wins).
    """

    # Class-level defaults: a subclass that skips __init__ but sets ``routes`` still routes.
    _index: _Index | None = None
    _direct: bool = False

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        redirect_slashes: bool = True,
        default: ASGIApp | None = None,
        lifespan: Lifespan[Any] | None = None,
        *,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        self._index = None
        self.routes = [] if routes is None else list(routes)
        self.redirect_slashes = redirect_slashes
        self.default: ASGIApp = self.not_found if default is None else default
        self.lifespan_context: Lifespan[Any] = _lifespan_context(lifespan)
        self.middleware_stack: ASGIApp = _wrap_middleware(self.app, middleware, max_body_size)
        # No router middleware, and the router's own dispatch: ``__call__`` (and the
        # application's inlined default stack) call ``_resolve`` directly, without the
        # ``middleware_stack`` -> ``app`` frames.
        self._direct = middleware is None and max_body_size is None and type(self).app is Router.app

    @property
    def routes(self) -> list[BaseRoute]:
        """The route table, in match order; changes to it take effect on the next request."""
        return self._routes

    @routes.setter
    def routes(self, routes: Iterable[BaseRoute]) -> None:
        self._routes = _RouteList(routes, self._invalidate)
        self._index = None

    def _invalidate(self) -> None:
        self._index = None

    def _candidates(self, route_path: str) -> tuple[BaseRoute, ...]:
        index = self._index
        if index is None:
            index = self._index = _Index(self._routes)
        return index.candidates(route_path).routes

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The default ``default`` app: 404 (or an HTTPException inside an app), or a close."""
        if scope["type"] == "websocket":
            await WebSocketClose()(scope, receive, send)
            return
        if "app" in scope:
            raise HTTPException(status_code=404)
        await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called ``name`` with exactly these parameters.

        Raises NoMatchFound when no route has that name and parameter set.
        """
        for route in self._routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the lifespan protocol around ``lifespan_context``.

        A failure is reported as ``lifespan.startup.failed`` / ``lifespan.shutdown.failed``
        (with the traceback as message) and re-raised.
        """
        started = False
        app: Any = scope.get("app")
        state = scope.get("state")
        await receive()
        try:
            async with self.lifespan_context(app) as maybe_state:
                if maybe_state is not None:
                    if state is None:
                        raise RuntimeError(
                            'The server does not support "state" in the lifespan scope.'
                        )
                    state.update(maybe_state)
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()
        except BaseException:
            message = traceback.format_exc()
            kind = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": kind, "message": message})
            raise
        else:
            await send({"type": "lifespan.shutdown.complete"})

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch ``scope`` (the router's behaviour, below any router middleware)."""
        scope_type = scope["type"]
        if scope_type == "lifespan":
            if "router" not in scope:
                scope["router"] = self
            await self.lifespan(scope, receive, send)
            return
        assert scope_type == "http" or scope_type == "websocket", f"unknown scope {scope_type!r}"
        await self._resolve(scope)(scope, receive, send)

    def _resolve(self, scope: Scope) -> ASGIApp:
        """The app that serves an HTTP or WebSocket ``scope``, with the scope updated for it.

        A plain function rather than a coroutine: the caller awaits the app it returns, so the
        router adds no frame of its own to the request. The one route lookup: ``__call__``,
        ``app`` and the application's inlined default stack all come here.
        """
        index = self._index
        if index is None:
            index = self._index = _Index(self._routes)
        route_path = scope["path"] if not scope.get("root_path") else get_route_path(scope)
        scope.setdefault("router", self)
        # The commonest case first: a parameter-free path whose first candidate is known (since
        # the index was built) to match it.
        first: Route | WebSocketRoute | None
        if scope["type"] == "http":
            is_http = True
            first = index.first_http.get(route_path)
            if first is not None and first.methods and scope["method"] not in first.methods:
                first = None
        else:
            is_http = False
            first = index.first_websocket.get(route_path)
        if first is not None:
            params = scope.get("path_params")
            scope["endpoint"] = first.endpoint
            scope["path_params"] = dict(params) if params else {}
            scope["route"] = first
            return first.app
        # Then the first full match among the path's candidates, else the first partial one
        # (405), else a trailing-slash redirect, else ``default``.
        found = index.candidates(route_path)
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route, plain in found.http if is_http else found.websocket:
            if plain is not None:
                # Route.matches / WebSocketRoute.matches, inlined (the class is exact, so
                # neither is overridden): no child scope built for a route that matches.
                match = plain.path_regex.match(route_path)
                if match is None:
                    continue
                convertors = plain.param_convertors
                if convertors or scope.get("path_params"):
                    path_params = _path_params(scope, match, convertors)
                else:
                    path_params = {}
                if type(plain) is Route and plain.methods and scope["method"] not in plain.methods:
                    if partial is None:
                        partial = plain
                        partial_scope = {
                            "endpoint": plain.endpoint,
                            "path_params": path_params,
                            "route": plain,
                        }
                    continue
                scope["endpoint"] = plain.endpoint
                scope["path_params"] = path_params
                scope["route"] = plain
                return plain.app
            match_kind, child_scope = route.matches(scope)
            if match_kind is _FULL:
                scope.update(child_scope)
                return route.handle
            if match_kind is _PARTIAL and partial is None:
                partial = route
                partial_scope = child_scope
        if partial is not None:
            scope.update(partial_scope)
            return partial.handle

        if is_http and self.redirect_slashes and route_path != "/":
            redirect_scope = dict(scope)
            if route_path.endswith("/"):
                redirect_scope["path"] = redirect_scope["path"].rstrip("/")
            else:
                redirect_scope["path"] = redirect_scope["path"] + "/"
            for route in self._candidates(get_route_path(redirect_scope)):
                match_kind, _ = route.matches(redirect_scope)
                if match_kind is not _NONE:
                    return RedirectResponse(url=str(URL(scope=redirect_scope)))

        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point (through the router's middleware, if any)."""
        if self._direct:
            scope_type = scope["type"]
            if scope_type == "http" or scope_type == "websocket":
                await self._resolve(scope)(scope, receive, send)
                return
        await self.middleware_stack(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Router) and self.routes == other.routes

    __hash__ = object.__hash__

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        """Append ``Mount(path, app, name=name)``."""
        self.routes.append(Mount(path, app=app, name=name))

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        """Append ``Host(host, app, name=name)``."""
        self.routes.append(Host(host, app=app, name=name))

    def add_route(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response] | Response],
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Append a :class:`Route`."""
        self.routes.append(
            Route(
                path,
                endpoint=endpoint,
                methods=methods,
                name=name,
                include_in_schema=include_in_schema,
            )
        )

    def add_websocket_route(
        self,
        path: str,
        endpoint: Callable[[WebSocket], Awaitable[None]],
        name: str | None = None,
    ) -> None:
        """Append a :class:`WebSocketRoute`."""
        self.routes.append(WebSocketRoute(path, endpoint=endpoint, name=name))
