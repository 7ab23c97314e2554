"""Application settings from environment variables and ``.env`` files.

>>> config = Config(".env")
>>> DEBUG = config("DEBUG", cast=bool, default=False)
>>> DATABASE_URL = config("DATABASE_URL")

Environment variables win over the file. :data:`environ` wraps :data:`os.environ` and refuses
changes to keys that have already been read, so tests cannot silently change settings that
were already loaded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TypeVar, overload

__all__ = ["Config", "EnvironError", "Environ", "environ", "undefined"]

_T = TypeVar("_T")


class undefined:
    """Sentinel default: "no default given"."""


class EnvironError(Exception):
    """A key of :class:`Environ` was changed or deleted after it had been read."""


class Environ(MutableMapping[str, str]):
    """A mutable mapping over ``os.environ`` (or any mapping) that remembers which keys were read.

    Setting or deleting a key that has already been read raises :class:`EnvironError`.
    """

    def __init__(self, environ: MutableMapping[str, str] = os.environ) -> None:
        self._environ = environ
        self._has_been_read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self._has_been_read.add(key)
        return self._environ[key]

    def __setitem__(self, key: str, value: str) -> None:
        if key in self._has_been_read:
            raise EnvironError(
                f"Attempting to set environ['{key}'], but the value has already been read."
            )
        self._environ[key] = value

    def __delitem__(self, key: str) -> None:
        if key in self._has_been_read:
            raise EnvironError(
                f"Attempting to delete environ['{key}'], but the value has already been read."
            )
        del self._environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


#: The process environment, guarded against changes after a key has been read.
environ = Environ()

_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _parse_value(raw: str) -> str:
    """Unquote one ``.env`` value: quoted values keep ``#`` and spaces, unquoted ones lose
    a trailing `` # comment``; double quotes honour ``\\n``, ``\\t``, ``\\"`` and ``\\\\``."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        out: list[str] = []
        index = 1
        while index < len(raw):
            char = raw[index]
            if char == quote:
                return "".join(out)
            if char == "\\" and quote == '"' and index + 1 < len(raw):
                nxt = raw[index + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                index += 2
                continue
            out.append(char)
            index += 1
        # No closing quote: treat the opening quote as part of the value.
        return raw
    for marker in (" #", "\t#"):
        cut = raw.find(marker)
        if cut != -1:
            raw = raw[:cut]
    return raw.strip()


def parse_env_file(text: str) -> dict[str, str]:
    """Parse the text of a ``.env`` file into a dict.

    One ``KEY=value`` per line; blank lines and ``#`` comments are skipped, an ``export``
    prefix is allowed, and lines without ``=`` are ignored.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith(("export ", "export\t")):
            key = key[7:].strip()
        if key:
            values[key] = _parse_value(value)
    return values


class Config:
    """Read settings from ``environ`` first, then from ``env_file``.

    ``env_prefix`` is prepended to every key looked up. A missing ``env_file`` only warns.
    """

    def __init__(
        self,
        env_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] = environ,
        env_prefix: str = "",
        encoding: str = "utf-8",
    ) -> None:
        self.environ = environ
        self.env_prefix = env_prefix
        self.file_values: dict[str, str] = {}
        if env_file is not None:
            if os.path.isfile(env_file):
                self.file_values = self._read_file(env_file, encoding)
            else:
                warnings.warn(f"Config file '{env_file}' not found.", stacklevel=2)

    @overload
    def __call__(self, key: str, cast: None = None, *, default: None) -> str | None: ...
    @overload
    def __call__(self, key: str, cast: type[_T], default: _T = ...) -> _T: ...
    @overload
    def __call__(self, key: str, cast: type[str] = ..., default: str = ...) -> str: ...
    @overload
    def __call__(self, key: str, cast: Callable[[Any], _T] = ..., default: Any = ...) -> _T: ...
    @overload
    def __call__(self, key: str, cast: type[str] = ..., default: _T = ...) -> _T | str: ...
    def __call__(
        self, key: str, cast: Callable[[Any], Any] | None = None, default: Any = undefined
    ) -> Any:
        """Same as :meth:`get`."""
        return self._lookup(key, cast, default)

    @overload
    def get(self, key: str, cast: None = None, *, default: None) -> str | None: ...
    @overload
    def get(self, key: str, cast: type[_T], default: _T = ...) -> _T: ...
    @overload
    def get(self, key: str, cast: type[str] = ..., default: str = ...) -> str: ...
    @overload
    def get(self, key: str, cast: Callable[[Any], _T] = ..., default: Any = ...) -> _T: ...
    @overload
    def get(self, key: str, cast: type[str] = ..., default: _T = ...) -> _T | str: ...
    def get(
        self, key: str, cast: Callable[[Any], Any] | None = None, default: Any = undefined
    ) -> Any:
        """The value of ``env_prefix + key``, passed through ``cast``.

        Raises ``KeyError`` naming the key when it is missing and no default is given, and
        ``ValueError`` naming the key and value when ``cast`` rejects it. ``cast=bool``
        accepts ``true``/``1``/``false``/``0`` (any case). A default is cast too (not None).
        """
        return self._lookup(key, cast, default)

    def _lookup(self, key: str, cast: Callable[[Any], Any] | None, default: Any) -> Any:
        key = self.env_prefix + key
        if key in self.environ:
            return self._perform_cast(key, self.environ[key], cast)
        if key in self.file_values:
            return self._perform_cast(key, self.file_values[key], cast)
        if default is not undefined:
            return self._perform_cast(key, default, cast)
        raise KeyError(f"Config '{key}' is missing, and has no default.")

    def _read_file(self, file_name: str | os.PathLike[str], encoding: str) -> dict[str, str]:
        return parse_env_file(Path(file_name).read_text(encoding=encoding))

    def _perform_cast(self, key: str, value: Any, cast: Callable[[Any], Any] | None = None) -> Any:
        if cast is None or value is None:
            return value
        if cast is bool and isinstance(value, str):
            lowered = value.lower()
            if lowered not in _BOOLEANS:
                raise ValueError(f"Config '{key}' has value '{value}'. Not a valid bool.")
            return _BOOLEANS[lowered]
        try:
            return cast(value)
        except (TypeError, ValueError):
            name = getattr(cast, "__name__", repr(cast))
            raise ValueError(f"Config '{key}' has value '{value}'. Not a valid {name}.") from None
