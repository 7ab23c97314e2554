"""Middleware declarations: :class:`Middleware` names a middleware class and its arguments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from brillo.types import ASGIApp

__all__ = ["Middleware"]


class _MiddlewareFactory(Protocol):
    def __call__(self, app: ASGIApp, /, *args: Any, **kwargs: Any) -> ASGIApp: ...


class Middleware:
    """A middleware class plus the arguments to build it with, around an app, later.

    ``Middleware(cls, *args, **kwargs)`` becomes ``cls(app, *args, **kwargs)`` when the
    application builds its middleware stack. Iterating yields ``(cls, args, kwargs)``.
    """

    def __init__(self, cls: _MiddlewareFactory | type[Any], *args: Any, **kwargs: Any) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cls, self.args, self.kwargs))

    def __repr__(self) -> str:
        name = getattr(self.cls, "__name__", repr(self.cls))
        parts = [name, *(repr(arg) for arg in self.args)]
        parts += [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"
