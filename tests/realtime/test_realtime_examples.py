"""Unit tests of the examples' pure parts (the wire behaviour is in tests/integration/realtime)."""

from __future__ import annotations

import pytest

from examples.realtime.document import BadEdit, apply_edit


def test_apply_edit() -> None:
    assert apply_edit("", {"pos": 0, "insert": "hello"}) == "hello"
    assert apply_edit("hello", {"pos": 1, "delete": 3, "insert": "ipp"}) == "hippo"
    assert apply_edit("hello", {"pos": 5, "delete": 0}) == "hello"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("text", "JSON object"),
        ({"pos": "0"}, "expected"),
        ({"pos": True}, "integers"),
        ({"pos": 6}, "out of range"),
        ({"pos": 0, "delete": 6}, "out of range"),
        ({"pos": -1}, "out of range"),
    ],
)
def test_bad_edits(edit: object, message: str) -> None:
    with pytest.raises(BadEdit, match=message):
        apply_edit("hello", edit)
