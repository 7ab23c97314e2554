"""Operational transformation for plain text, as the collaborative editor uses it.

An operation is a list of components walked over the document from its start:

* ``n > 0`` keeps (retains) the next ``n`` characters,
* ``n < 0`` deletes the next ``-n`` characters,
* a non-empty ``str`` inserts that text.

An operation covers the whole document it applies to: the retained plus deleted characters must
add up to the document's length. The server keeps every accepted operation; a client's edit based
on an older version is transformed past the ones it has not seen, so all clients converge. The
browser side (``static/ot.js``) implements the same rules with the same tie-break: when two
inserts land at one place, the client's (first argument) goes first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

Component = int | str
Operation = list[Component]

__all__ = ["OTError", "apply", "base_length", "normalize", "parse", "transform"]


class OTError(ValueError):
    """An operation is malformed or does not fit the document it is applied to."""


def parse(raw: Any, *, max_components: int = 10_000) -> Operation:
    """Validate an operation received from a client (JSON) and return it normalised."""
    if not isinstance(raw, list) or len(raw) > max_components:
        raise OTError(f"an operation is a list of at most {max_components} components")
    for component in raw:
        if isinstance(component, bool) or not isinstance(component, int | str):
            raise OTError(f"bad component {component!r}: use an int or a string")
        if component == 0 or component == "":
            raise OTError("components must not be empty")
    return normalize(raw)


def normalize(op: Sequence[Component]) -> Operation:
    """Merge neighbouring components of one kind and put inserts before deletes at one place."""
    out: Operation = []
    for component in op:
        if component == 0 or component == "":
            continue
        if out:
            last = out[-1]
            if isinstance(component, str) and isinstance(last, str):
                out[-1] = last + component
                continue
            if (
                isinstance(component, int)
                and isinstance(last, int)
                and (component > 0) == (last > 0)
            ):
                out[-1] = last + component
                continue
            if isinstance(component, str) and isinstance(last, int) and last < 0:
                # delete-then-insert and insert-then-delete mean the same: keep one form.
                if len(out) >= 2 and isinstance(out[-2], str):
                    out[-2] = out[-2] + component
                else:
                    out.insert(len(out) - 1, component)
                continue
        out.append(component)
    return out


def base_length(op: Sequence[Component]) -> int:
    """Length of the document the operation applies to."""
    return sum(abs(c) for c in op if isinstance(c, int))


def target_length(op: Sequence[Component]) -> int:
    """Length of the document the operation produces."""
    return sum(
        c if isinstance(c, int) and c > 0 else len(c) if isinstance(c, str) else 0 for c in op
    )


def apply(text: str, op: Sequence[Component]) -> str:
    """Apply ``op`` to ``text``; :class:`OTError` when it does not fit."""
    if base_length(op) != len(text):
        raise OTError(
            f"operation expects a document of {base_length(op)} characters, not {len(text)}"
        )
    parts: list[str] = []
    index = 0
    for component in op:
        if isinstance(component, str):
            parts.append(component)
        elif component > 0:
            parts.append(text[index : index + component])
            index += component
        else:
            index -= component
    return "".join(parts)


class _Cursor:
    """Walks an operation, handing out pieces of at most a given length."""

    def __init__(self, op: Sequence[Component]) -> None:
        self._items: Iterator[Component] = iter(op)
        self.head: Component | None = next(self._items, None)

    def take(self, length: int | None) -> Component:
        head = self.head
        assert head is not None
        if isinstance(head, str):
            self.head = next(self._items, None)
            return head
        size = abs(head)
        if length is None or length >= size:
            self.head = next(self._items, None)
            return head
        sign = 1 if head > 0 else -1
        self.head = sign * (size - length)
        return sign * length


def transform(a: Sequence[Component], b: Sequence[Component]) -> tuple[Operation, Operation]:
    """Given concurrent ``a`` and ``b`` on one document, return ``(a', b')``.

    ``apply(apply(doc, a), b') == apply(apply(doc, b), a')``. Inserts of ``a`` win ties.
    """
    if base_length(a) != base_length(b):
        raise OTError("concurrent operations must apply to the same document")
    a_out: Operation = []
    b_out: Operation = []
    ca, cb = _Cursor(a), _Cursor(b)
    while ca.head is not None or cb.head is not None:
        if isinstance(ca.head, str):
            text = ca.take(None)
            assert isinstance(text, str)
            a_out.append(text)
            b_out.append(len(text))
            continue
        if isinstance(cb.head, str):
            text = cb.take(None)
            assert isinstance(text, str)
            a_out.append(len(text))
            b_out.append(text)
            continue
        if ca.head is None or cb.head is None:
            raise OTError("operations of different lengths")
        length = min(abs(ca.head), abs(cb.head))
        x = ca.take(length)
        y = cb.take(length)
        assert isinstance(x, int)
        assert isinstance(y, int)
        if x > 0 and y > 0:
            a_out.append(length)
            b_out.append(length)
        elif x < 0 and y > 0:
            a_out.append(-length)
        elif x > 0 and y < 0:
            b_out.append(-length)
        # both delete the same characters: nothing left to do for either.
    return normalize(a_out), normalize(b_out)
