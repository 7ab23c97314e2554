"""Typed payloads of the channel protocol: checked with msgspec when it is installed.

A :class:`PayloadType` wraps the type an event handler declares for its payload (the annotation
of its second parameter, or ``payload=`` given to :meth:`Channel.on`):

* no type, ``Any`` or ``object``: the payload is plain JSON, handed over as decoded;
* a JSON builtin (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``): a type check,
  with or without msgspec (``dict[str, int]`` and ``list[...]``: msgspec checks the items;
  without it only the outer type is checked);
* anything else (a dataclass, a ``TypedDict``, a ``msgspec.Struct``, ``list[int]``,
  ``Annotated[str, msgspec.Meta(max_length=10)]``, ...): converted and validated by
  ``msgspec.convert`` (strict: no string-to-number coercion). That needs the optional ``msgspec``
  extra (``pip install 'brillo[msgspec]'``); declaring such a type without it raises
  :class:`ImportError` at once, not at the first message.

Outgoing payloads (replies, broadcasts) go through :func:`to_builtins`, so handlers may return
dataclasses and Structs; the hub then encodes the builtins once.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any

msgspec: Any
try:
    msgspec = importlib.import_module("msgspec")
except ImportError:  # the optional extra is not installed: plain JSON only
    msgspec = None

__all__ = ["PayloadType", "ValidationError", "has_msgspec", "schemas_for", "to_builtins"]

#: JSON values checked with ``isinstance`` (``bool`` is not an ``int`` here).
_BUILTINS: dict[Any, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}
#: Values a JSON encoder takes as they are, with nothing inside to convert.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_MISSING_EXTRA = (
    "the payload type {name} needs msgspec to be validated: pip install 'brillo[msgspec]' "
    "(or declare the payload as Any / dict for plain JSON)"
)


class ValidationError(ValueError):
    """A payload does not match its declared type; the message says where and why."""


def has_msgspec() -> bool:
    """Whether the optional msgspec extra is installed."""
    return msgspec is not None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


class PayloadType:
    """The declared type of one payload, and the check that goes with it."""

    __slots__ = ("_builtin", "_convert", "type")

    def __init__(self, tp: Any = Any) -> None:
        self.type = tp
        self._builtin: type | None = None
        self._convert: Any = None
        if tp is Any or tp is object or tp is None:
            self.type = Any
        elif tp in _BUILTINS:
            self._builtin = tp
        elif msgspec is None and typing.get_origin(tp) in (dict, list):
            self._builtin = typing.get_origin(tp)  # without msgspec: the outer type only
        elif msgspec is None:
            raise ImportError(_MISSING_EXTRA.format(name=_type_name(tp)))
        else:
            try:  # a type msgspec cannot handle is an error of the declaration
                msgspec.json.schema(tp)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"unsupported payload type {_type_name(tp)}: {exc}") from exc
            self._convert = msgspec.convert

    @property
    def plain(self) -> bool:
        """True when any JSON value is accepted as it is."""
        return self._builtin is None and self._convert is None

    def check(self, value: Any) -> Any:
        """``value`` (decoded JSON) as the declared type; :class:`ValidationError` otherwise."""
        if self._convert is not None:
            try:
                return self._convert(value, self.type, strict=True)
            except msgspec.ValidationError as exc:
                raise ValidationError(str(exc)) from None
        builtin = self._builtin
        if builtin is not None and type(value) is not builtin:
            if builtin is float and type(value) is int:
                return float(value)
            raise ValidationError(f"Expected {_BUILTINS[builtin]}, got {_json_kind(value)}")
        return value

    def __repr__(self) -> str:
        return f"PayloadType({_type_name(self.type)})"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    for builtin, name in _BUILTINS.items():
        if type(value) is builtin:
            return name
    return type(value).__name__


def to_builtins(value: Any) -> Any:
    """``value`` as JSON builtins: Structs and dataclasses become dicts (nested ones too)."""
    if type(value) in _SCALARS:
        return value
    if msgspec is not None:
        return msgspec.to_builtins(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def schemas_for(types: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """JSON Schemas of ``types`` and the named components they refer to.

    References point to ``#/components/schemas/<Name>`` (an AsyncAPI document's components).
    Without msgspec every declared type is plain JSON or a builtin, whose schemas are inline.
    """
    out: list[dict[str, Any]] = []
    typed = [tp for tp in types if tp is not Any]
    components: dict[str, Any] = {}
    if typed and msgspec is not None:
        schemas, components = msgspec.json.schema_components(
            typed, ref_template="#/components/schemas/{name}"
        )
        by_type = dict(zip(range(len(typed)), schemas, strict=True))
    else:
        by_type = {}
    index = 0
    for tp in types:
        if tp is Any:
            out.append({})
        elif msgspec is not None:
            out.append(by_type[index])
            index += 1
        else:
            out.append(_builtin_schema(tp))
    return out, components


_SCHEMA_NAMES: dict[Any, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _builtin_schema(tp: Any) -> dict[str, Any]:
    name = _SCHEMA_NAMES.get(tp)
    return {} if name is None else {"type": name}
