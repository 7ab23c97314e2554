"""Middleware declarations: :class:`Middleware` names a middleware class and its arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, Protocol

__all__ = ["Middleware"]

P = ParamSpec("P")

# The app a middleware factory is given, typed loosely on purpose: a middleware written against
# another ASGI type vocabulary (asgiref's, Starlette's) still type-checks as a brillo one.
_App = Callable[[Any, Any, Any], Awaitable[None]]


class _MiddlewareFactory(Protocol[P]):
    """What ``Middleware(cls, ...)`` needs of ``cls``: ``cls(app, *args, **kwargs)`` makes the
    wrapped app. ``P`` captures the rest of its parameters, so a type checker checks the
    arguments given to :class:`Middleware` (or ``add_middleware``) against them."""

    def __call__(self, app: _App, /, *args: P.args, **kwargs: P.kwargs) -> _App: ...


class Middleware:
    """A middleware class plus the arguments to build it with, around an app, later.

    ``Middleware(cls, *args, **kwargs)`` becomes ``cls(app, *args, **kwargs)`` when the
    application builds its middleware stack; a type checker checks ``args`` and ``kwargs``
    against ``cls``'s parameters after ``app``. Iterating yields ``(cls, args, kwargs)``.
    """

    def __init__(self, cls: _MiddlewareFactory[P], *args: P.args, **kwargs: P.kwargs) -> None:
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
