"""Realtime backends, chosen by the scheme of the hub URL.

``memory://`` is the embedded single-process backend; ``redis://`` and ``rediss://`` use Redis;
``postgresql://`` and ``postgres://`` use PostgreSQL (LISTEN/NOTIFY and tables).
Other backends implement :class:`~brillo.realtime.backends.base.Backend` and are registered with
:func:`register_backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brillo.realtime.backends.base import (
    Backend,
    BackendError,
    Delivery,
    Envelope,
    HistoryResult,
    Position,
    PresenceEntry,
    PresenceEvent,
)

__all__ = [
    "Backend",
    "BackendError",
    "Delivery",
    "Envelope",
    "HistoryResult",
    "Position",
    "PresenceEntry",
    "PresenceEvent",
    "create_backend",
    "register_backend",
]

#: Builds a backend from the hub URL and the hub's options.
BackendFactory = Callable[..., Backend]


def _memory(url: str, **options: Any) -> Backend:
    from brillo.realtime.backends.memory import MemoryBackend

    options.pop("presence_ttl", None)
    return MemoryBackend(**options)


def _redis(url: str, **options: Any) -> Backend:
    from brillo.realtime.backends.redis import RedisBackend

    return RedisBackend(url, **options)


def _postgres(url: str, **options: Any) -> Backend:
    from brillo.realtime.backends.postgres import PostgresBackend

    return PostgresBackend(url, **options)


_FACTORIES: dict[str, BackendFactory] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Make ``Hub("<scheme>://...")`` build its backend with ``factory(url, **options)``.

    ``options`` are ``history_size``, ``history_ttl`` and ``presence_ttl``.
    """
    _FACTORIES[scheme.lower()] = factory


def create_backend(url: str, **options: Any) -> Backend:
    """Build the backend that ``url``'s scheme names; :class:`ValueError` for unknown schemes."""
    scheme, sep, _ = url.partition("://")
    factory = _FACTORIES.get(scheme.lower()) if sep else None
    if factory is None:
        known = ", ".join(f"{name}://" for name in sorted(_FACTORIES))
        raise ValueError(f"unsupported realtime backend URL {url!r}: expected one of {known}")
    return factory(url, **options)
