"""Authentication primitives: backends, credentials, users and the ``requires`` decorator.

Install :class:`brillo.middleware.authentication.AuthenticationMiddleware` with a backend; every
HTTP request and WebSocket connection then has ``.auth`` (an :class:`AuthCredentials`) and
``.user`` (a :class:`BaseUser`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlencode

from brillo.exceptions import HTTPException
from brillo.status import WS_1008_POLICY_VIOLATION

if TYPE_CHECKING:
    from brillo.requests import HTTPConnection

__all__ = [
    "AuthCredentials",
    "AuthenticationBackend",
    "AuthenticationError",
    "BaseUser",
    "SimpleUser",
    "UnauthenticatedUser",
    "has_required_scope",
    "requires",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def has_required_scope(conn: HTTPConnection, scopes: Sequence[str]) -> bool:
    """True when the connection's credentials include every scope in ``scopes``."""
    granted = conn.auth.scopes
    return all(scope in granted for scope in scopes)


def requires(
    scopes: str | Sequence[str],
    status_code: int = 403,
    redirect: str | None = None,
) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Protect an endpoint: the connection must hold every scope in ``scopes``.

    The decorated function (sync or async, plain function or method) must take a parameter
    named ``request`` or ``websocket``. When a scope is missing:

    * HTTP: raise ``HTTPException(status_code)``, or with ``redirect`` (a route name) answer
      ``303 See Other`` to that route with ``?next=<the requested URL>``.
    * WebSocket: close the connection before accept with 1008 (policy violation): the client
      sees the handshake refused (HTTP 403).
    """
    scopes_list = [scopes] if isinstance(scopes, str) else list(scopes)

    def decorator(func: Callable[_P, Any]) -> Callable[_P, Any]:
        names = list(inspect.signature(func).parameters)
        found = [name for name in names if name in ("request", "websocket")]
        if not found:
            raise TypeError(
                f'No "request" or "websocket" argument on function "{func.__qualname__}"'
            )
        kind = found[0]
        index = names.index(kind)

        def find_connection(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            conn = kwargs.get(kind, args[index] if index < len(args) else None)
            from brillo.requests import HTTPConnection

            assert isinstance(conn, HTTPConnection), (
                f'The "{kind}" argument of "{func.__qualname__}" must be a '
                f"{'WebSocket' if kind == 'websocket' else 'Request'}, got {type(conn).__name__}"
            )
            return conn

        if kind == "websocket":

            @functools.wraps(func)
            async def websocket_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
                websocket = find_connection(args, kwargs)
                if not has_required_scope(websocket, scopes_list):
                    await websocket.close(code=WS_1008_POLICY_VIOLATION)
                    return
                await func(*args, **kwargs)

            return websocket_wrapper

        def deny(request: Any) -> Any:
            if redirect is None:
                raise HTTPException(status_code=status_code)
            from brillo.responses import RedirectResponse

            query = urlencode({"next": str(request.url)})
            return RedirectResponse(url=f"{request.url_for(redirect)}?{query}", status_code=303)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                request = find_connection(args, kwargs)
                if not has_required_scope(request, scopes_list):
                    return deny(request)
                return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def sync_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            request = find_connection(args, kwargs)
            if not has_required_scope(request, scopes_list):
                return deny(request)
            return func(*args, **kwargs)

        return sync_wrapper

    return decorator


class AuthenticationError(Exception):
    """Raise from ``AuthenticationBackend.authenticate`` to reject the credentials.

    The middleware answers HTTP with its ``on_error`` response (400 with the message by
    default) and closes a WebSocket with 1008 and the message as the close reason.
    """


class AuthenticationBackend:
    """Base class for authentication backends; override :meth:`authenticate`."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Return ``(credentials, user)``, ``None`` for an anonymous connection, or raise
        :class:`AuthenticationError` for invalid credentials."""
        raise NotImplementedError()  # pragma: no cover


class AuthCredentials:
    """The scopes (permissions) granted to a connection, e.g. ``["authenticated", "admin"]``."""

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes: list[str] = [] if scopes is None else list(scopes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scopes={self.scopes!r})"


class BaseUser:
    """Interface of the object stored in ``request.user``."""

    @property
    def is_authenticated(self) -> bool:
        """True for a signed-in user."""
        raise NotImplementedError()  # pragma: no cover

    @property
    def display_name(self) -> str:
        """A human-readable name."""
        raise NotImplementedError()  # pragma: no cover

    @property
    def identity(self) -> str:
        """A unique, stable identifier."""
        raise NotImplementedError()  # pragma: no cover


class SimpleUser(BaseUser):
    """An authenticated user known by ``username`` only."""

    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def is_authenticated(self) -> bool:
        """Always True."""
        return True

    @property
    def display_name(self) -> str:
        """The username."""
        return self.username

    @property
    def identity(self) -> str:
        """The username."""
        return self.username

    def __repr__(self) -> str:
        return f"{type(self).__name__}(username={self.username!r})"


class UnauthenticatedUser(BaseUser):
    """The anonymous user (no credentials)."""

    @property
    def is_authenticated(self) -> bool:
        """Always False."""
        return False

    @property
    def display_name(self) -> str:
        """The empty string."""
        return ""

    @property
    def identity(self) -> str:
        """The empty string."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
