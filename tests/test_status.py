"""Tests for brillo.status: the constants and the deprecated pre-RFC 9110 names."""

from __future__ import annotations

import warnings

import pytest

from brillo import status
from brillo.exceptions import BrilloDeprecationWarning, StarletteDeprecationWarning

DEPRECATED = {
    "HTTP_413_REQUEST_ENTITY_TOO_LARGE": ("HTTP_413_CONTENT_TOO_LARGE", 413),
    "HTTP_414_REQUEST_URI_TOO_LONG": ("HTTP_414_URI_TOO_LONG", 414),
    "HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE": ("HTTP_416_RANGE_NOT_SATISFIABLE", 416),
    "HTTP_422_UNPROCESSABLE_ENTITY": ("HTTP_422_UNPROCESSABLE_CONTENT", 422),
}


def test_deprecation_warning_class() -> None:
    assert StarletteDeprecationWarning is BrilloDeprecationWarning
    assert issubclass(BrilloDeprecationWarning, UserWarning)
    # Not a DeprecationWarning: those are hidden by default outside __main__.
    assert not issubclass(BrilloDeprecationWarning, DeprecationWarning)


@pytest.mark.parametrize("name", DEPRECATED)
def test_deprecated_name_warns_and_resolves(name: str) -> None:
    replacement, code = DEPRECATED[name]
    with pytest.warns(BrilloDeprecationWarning, match=f"{name}.*{replacement}") as record:
        value = getattr(status, name)
    assert value == code == getattr(status, replacement)
    assert str(record[0].message) == f"{name!r} is deprecated. Use {replacement!r} instead."
    # The warning points at the code using the old name.
    assert record[0].filename == __file__


def test_deprecated_name_via_from_import() -> None:
    with pytest.warns(BrilloDeprecationWarning, match="HTTP_422_UNPROCESSABLE_ENTITY"):
        from brillo.status import HTTP_422_UNPROCESSABLE_ENTITY
    assert HTTP_422_UNPROCESSABLE_ENTITY == 422


def test_current_names_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert status.HTTP_413_CONTENT_TOO_LARGE == 413
        assert status.HTTP_422_UNPROCESSABLE_CONTENT == 422


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="HTTP_999_NOPE"):
        status.HTTP_999_NOPE  # noqa: B018
    assert not hasattr(status, "HTTP_999_NOPE")


def test_dir_lists_current_and_deprecated_names() -> None:
    names = dir(status)
    assert set(DEPRECATED) <= set(names)
    assert set(status.__all__) <= set(names)
    assert not set(DEPRECATED) & set(status.__all__)
    assert names == sorted(names)
