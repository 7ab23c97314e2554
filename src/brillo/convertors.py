"""Path parameter convertors: how ``{name:type}`` segments of a route path match and render.

A convertor pairs a regular expression (what the segment may look like in a URL) with two
conversions: :meth:`Convertor.convert` turns the matched text into a Python value for
``request.path_params``, and :meth:`Convertor.to_string` turns a value back into URL text for
``url_path_for``. Register your own with :func:`register_url_convertor`.
"""

from __future__ import annotations

import decimal
import math
import uuid
from typing import Any, ClassVar, Generic, TypeVar

__all__ = [
    "CONVERTOR_TYPES",
    "Convertor",
    "FloatConvertor",
    "IntegerConvertor",
    "PathConvertor",
    "StringConvertor",
    "UUIDConvertor",
    "register_url_convertor",
]

T = TypeVar("T")


class Convertor(Generic[T]):
    """Base class of path convertors.

    Subclasses set :attr:`regex` (without anchors or groups that capture) and implement
    :meth:`convert` and :meth:`to_string`.
    """

    #: The regular expression a path segment must match.
    regex: ClassVar[str] = ""

    def convert(self, value: str) -> T:
        """Turn the text matched in the URL into the value handed to the endpoint."""
        raise NotImplementedError()  # pragma: no cover

    def to_string(self, value: T) -> str:
        """Turn a value back into the URL text that :meth:`convert` would accept."""
        raise NotImplementedError()  # pragma: no cover


class StringConvertor(Convertor[str]):
    """One path segment as text: anything but ``/``, at least one character (the default)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        """Return the segment unchanged."""
        return value

    def to_string(self, value: str) -> str:
        """Render ``value``; it must be non-empty and free of ``/``."""
        value = str(value)
        if "/" in value:
            raise AssertionError("May not contain path separators")
        if not value:
            raise AssertionError("Must not be empty")
        return value


class PathConvertor(Convertor[str]):
    """The rest of the path, ``/`` included (possibly empty)."""

    regex = ".*"

    def convert(self, value: str) -> str:
        """Return the matched text unchanged."""
        return str(value)

    def to_string(self, value: str) -> str:
        """Render ``value`` as is."""
        return str(value)


class IntegerConvertor(Convertor[int]):
    """A non-negative decimal integer."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        """Parse the digits as an ``int``."""
        return int(value)

    def to_string(self, value: int) -> str:
        """Render a non-negative integer."""
        value = int(value)
        if value < 0:
            raise AssertionError("Negative integers are not supported")
        return str(value)


class FloatConvertor(Convertor[float]):
    """A non-negative decimal number, with an optional fractional part."""

    regex = r"[0-9]+(\.[0-9]+)?"

    def convert(self, value: str) -> float:
        """Parse the text as a ``float``."""
        return float(value)

    def to_string(self, value: float) -> str:
        """Render a finite, non-negative number without exponent or trailing zeros."""
        value = float(value)
        if value < 0.0:
            raise AssertionError("Negative floats are not supported")
        if math.isnan(value):
            raise AssertionError("NaN values are not supported")
        if math.isinf(value):
            raise AssertionError("Infinite values are not supported")
        # The shortest decimal that round-trips, written out without an exponent.
        text = format(decimal.Decimal(repr(value)), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text


class UUIDConvertor(Convertor[uuid.UUID]):
    """A UUID: 32 hex digits of either case, hyphenated 8-4-4-4-12 or not hyphenated at all.

    URLs are built with the canonical lower-case, hyphenated form.
    """

    regex = (
        "(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        "|[0-9a-fA-F]{32})"
    )

    def convert(self, value: str) -> uuid.UUID:
        """Parse the text as a :class:`uuid.UUID`."""
        return uuid.UUID(value)

    def to_string(self, value: uuid.UUID) -> str:
        """Render the UUID in canonical form."""
        return str(value)


#: The convertors available in route paths, by the name used after the colon.
CONVERTOR_TYPES: dict[str, Convertor[Any]] = {
    "str": StringConvertor(),
    "path": PathConvertor(),
    "int": IntegerConvertor(),
    "float": FloatConvertor(),
    "uuid": UUIDConvertor(),
}


def register_url_convertor(key: str, convertor: Convertor[Any]) -> None:
    """Make ``convertor`` available in route paths as ``{name:key}``.

    Register before the routes that use it are created: paths are compiled when a route is built.
    """
    CONVERTOR_TYPES[key] = convertor
