"""Exceptions an application raises to answer a client with an HTTP error or a WebSocket close."""

from __future__ import annotations

import http
from collections.abc import Mapping

__all__ = [
    "BrilloDeprecationWarning",
    "HTTPException",
    "StarletteDeprecationWarning",
    "WebSocketException",
]


class HTTPException(Exception):
    """Abort the request with an HTTP error response.

    ``detail`` defaults to the status code's reason phrase; ``headers`` are added to the response
    the exception handler renders.
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = http.HTTPStatus(status_code).phrase
            except ValueError:
                detail = ""
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
        super().__init__(status_code, detail)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class WebSocketException(Exception):
    """Close the WebSocket with ``code`` and an optional ``reason`` (at most 123 UTF-8 bytes)."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(code, self.reason)

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class BrilloDeprecationWarning(UserWarning):
    """Emitted when deprecated brillo (Starlette-compatible) API is used.

    It derives from ``UserWarning`` rather than ``DeprecationWarning`` on purpose: Python hides
    ``DeprecationWarning`` outside ``__main__`` by default, so applications would never see it.
    Filter it like any other warning category, e.g.
    ``warnings.simplefilter("ignore", BrilloDeprecationWarning)``.
    """


#: Starlette-compatible name of :class:`BrilloDeprecationWarning` (the same class).
StarletteDeprecationWarning = BrilloDeprecationWarning
