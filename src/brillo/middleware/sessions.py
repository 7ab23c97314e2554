"""Signed-cookie sessions for HTTP requests and WebSocket connections."""

from __future__ import annotations

import binascii
import json
from base64 import b64decode, b64encode
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Self

from brillo._middleware_asgi import add_vary, get_headers, mutable_headers
from brillo.datastructures import Secret
from brillo.requests import cookie_parser
from brillo.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

try:
    import itsdangerous
    from itsdangerous.exc import BadSignature
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "SessionMiddleware needs the 'itsdangerous' package: pip install itsdangerous "
        "(or brillo[full])."
    ) from exc

__all__ = ["Session", "SessionMiddleware"]

_EXPIRED = "; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"


class Session(dict[str, Any]):
    """The session mapping stored in ``scope["session"]``.

    A plain ``dict`` that remembers whether it was read (``accessed``) or changed (``modified``)
    through its own methods, so the middleware only writes a cookie when something changed.
    Changes made *inside* nested values are caught too: the middleware compares the serialised
    payload with the one the client sent whenever the session was accessed.
    """

    accessed: bool = False
    modified: bool = False

    def mark_accessed(self) -> None:
        """Record that the session was read (adds ``Vary: Cookie`` to the response)."""
        self.accessed = True

    def mark_modified(self) -> None:
        """Record that the session changed and must be written back."""
        self.accessed = True
        self.modified = True

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get`` that marks the session accessed."""
        self.accessed = True
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return super().__iter__()

    def __len__(self) -> int:
        self.accessed = True
        return super().__len__()

    def keys(self) -> dict_keys[str, Any]:
        """``dict.keys`` that marks the session accessed."""
        self.accessed = True
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        """``dict.values`` that marks the session accessed."""
        self.accessed = True
        return super().values()

    def items(self) -> dict_items[str, Any]:
        """``dict.items`` that marks the session accessed."""
        self.accessed = True
        return super().items()

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.mark_modified()
        super().__delitem__(key)

    def clear(self) -> None:
        """Empty the session; the cookie is deleted on the response."""
        self.mark_modified()
        super().clear()

    def pop(self, key: str, *args: Any) -> Any:
        """``dict.pop`` that marks the session modified when ``key`` was present."""
        self.accessed = True
        if super().__contains__(key):
            self.modified = True
        return super().pop(key, *args)

    def popitem(self) -> tuple[str, Any]:
        """``dict.popitem`` that marks the session modified."""
        self.mark_modified()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``dict.setdefault`` that marks the session modified when ``key`` was missing."""
        self.accessed = True
        if not super().__contains__(key):
            self.modified = True
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """``dict.update`` that marks the session modified."""
        self.mark_modified()
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> Self:  # type: ignore[override,misc]
        self.mark_modified()
        super().update(other)
        return self


class SessionMiddleware:
    """Keep ``request.session`` / ``websocket.session`` in a signed, timestamped cookie.

    The payload is base64-encoded JSON signed with ``itsdangerous.TimestampSigner``: clients can
    read it but not change it, so never store secrets in a session. A cookie that is tampered
    with, expired (older than ``max_age`` seconds) or garbled simply yields an empty session.

    On HTTP the cookie is (re)written on the response when the session changed, and deleted
    (expired in the past) when a non-empty session was emptied. On a WebSocket connection the
    handshake's cookie is read and ``websocket.session`` works, but nothing can be written back:
    a WebSocket has no response headers once accepted. Change the session over HTTP instead.

    ``max_age=None`` makes a browser-session cookie (no ``Max-Age``; the signature does not expire).
    ``https_only`` adds ``Secure``; ``partitioned`` adds ``Partitioned`` (CHIPS). The cookie is
    always ``HttpOnly``.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | Secret,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
    ) -> None:
        self.app = app
        self.signer = itsdangerous.TimestampSigner(str(secret_key))
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.path = path
        # Set-Cookie is "name=value; path=...[; Max-Age=...]; httponly; ..." (lifetime after path).
        self._path_attr = f"; path={path}"
        self._max_age_attr = f"; Max-Age={max_age}" if max_age is not None else ""
        flags = f"; httponly; samesite={same_site}"
        if https_only:
            flags += "; secure"
        if domain is not None:
            flags += f"; domain={domain}"
        if partitioned:
            flags += "; partitioned"
        self._flags = flags

    def _load(self, scope: Scope) -> tuple[Session, bytes | None]:
        # The same parser as ``request.cookies`` (several Cookie lines read as one; for a name
        # given twice the later value wins), so the session and the app see the same cookie.
        values = get_headers(scope, b"cookie")
        if not values:
            return Session(), None
        header = b"; ".join(values).decode("latin-1")
        raw = cookie_parser(header).get(self.session_cookie)
        if not raw:
            return Session(), None
        try:
            payload = self.signer.unsign(raw.encode("utf-8"), max_age=self.max_age)
            data = json.loads(b64decode(payload, validate=True))
        except (BadSignature, ValueError, binascii.Error, UnicodeError):
            return Session(), None
        if not isinstance(data, dict):
            return Session(), None
        return Session(data), payload

    def _cookie_for(self, session: Session) -> bytes:
        payload = b64encode(json.dumps(session, separators=(",", ":")).encode("utf-8"))
        signed = self.signer.sign(payload).decode("utf-8")
        return (
            f"{self.session_cookie}={signed}{self._path_attr}{self._max_age_attr}{self._flags}"
        ).encode("latin-1")

    def _deletion_cookie(self) -> bytes:
        return f"{self.session_cookie}=null{self._path_attr}{_EXPIRED}{self._flags}".encode(
            "latin-1"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load the session into ``scope["session"]`` and write it back on the HTTP response."""
        scope_type = scope["type"]
        if scope_type == "websocket":
            scope["session"] = self._load(scope)[0]
            await self.app(scope, receive, send)
            return
        if scope_type != "http":
            await self.app(scope, receive, send)
            return

        session, original = self._load(scope)
        scope["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = scope["session"]
                if not isinstance(current, Session):  # replaced wholesale by the app
                    current = Session(current)
                    current.modified = True
                extra: list[tuple[bytes, bytes]] = []
                if current.accessed or current.modified:
                    if dict.__len__(current):
                        if current.modified or self._changed(current, original):
                            extra.append((b"set-cookie", self._cookie_for(current)))
                    elif original is not None:
                        extra.append((b"set-cookie", self._deletion_cookie()))
                if current.accessed or current.modified:
                    headers = mutable_headers(message)
                    add_vary(headers, b"Cookie")
                    headers.extend(extra)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _changed(session: Session, original: bytes | None) -> bool:
        if original is None:
            return True
        return b64encode(json.dumps(session, separators=(",", ":")).encode("utf-8")) != original
