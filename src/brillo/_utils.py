"""Small private helpers shared across brillo modules."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from brillo.types import Scope


def is_async_callable(obj: Any) -> bool:
    """True when calling ``obj`` returns an awaitable coroutine.

    Looks through ``functools.partial`` layers and at ``__call__`` of callable instances.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(type(obj).__call__)
    )


def get_route_path(scope: Scope) -> str:
    """The path the router should match: ``scope["path"]`` without the ``root_path`` prefix."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path:
        return path
    if path == root_path:
        return ""
    if path.startswith(root_path) and path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path
