"""Tests for brillo.convertors: each convertor's regex, convert and to_string, and registration."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from brillo.applications import Brillo
from brillo.convertors import (
    CONVERTOR_TYPES,
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    StringConvertor,
    UUIDConvertor,
    register_url_convertor,
)
from brillo.requests import Request
from brillo.responses import JSONResponse, PlainTextResponse, Response
from brillo.routing import Route, Router, compile_path
from brillo.testclient import TestClient


def full(convertor: Convertor[Any], text: str) -> bool:
    return re.fullmatch(convertor.regex, text) is not None


def test_builtin_table() -> None:
    assert set(CONVERTOR_TYPES) >= {"str", "path", "int", "float", "uuid"}
    assert isinstance(CONVERTOR_TYPES["str"], StringConvertor)
    assert isinstance(CONVERTOR_TYPES["path"], PathConvertor)
    assert isinstance(CONVERTOR_TYPES["int"], IntegerConvertor)
    assert isinstance(CONVERTOR_TYPES["float"], FloatConvertor)
    assert isinstance(CONVERTOR_TYPES["uuid"], UUIDConvertor)


def test_string() -> None:
    c = StringConvertor()
    assert full(c, "abc")
    assert not full(c, "a/b")
    assert not full(c, "")
    assert c.convert("x y") == "x y"
    assert c.to_string("abc") == "abc"
    with pytest.raises(AssertionError, match="path separators"):
        c.to_string("a/b")
    with pytest.raises(AssertionError, match="empty"):
        c.to_string("")


def test_path() -> None:
    c = PathConvertor()
    assert full(c, "a/b/c")
    assert full(c, "")
    assert c.convert("a/b") == "a/b"
    assert c.to_string("a/b") == "a/b"


def test_integer() -> None:
    c = IntegerConvertor()
    assert full(c, "0")
    assert full(c, "123")
    assert not full(c, "-1")
    assert not full(c, "1.5")
    assert c.convert("0042") == 42
    assert c.to_string(7) == "7"
    with pytest.raises(AssertionError, match="Negative"):
        c.to_string(-1)


def test_float() -> None:
    c = FloatConvertor()
    assert full(c, "1")
    assert full(c, "1.25")
    assert not full(c, "1.")
    assert not full(c, "-1.0")
    assert c.convert("1.5") == 1.5
    assert c.to_string(1.5) == "1.5"
    assert c.to_string(2.0) == "2"
    assert c.to_string(0.1) == "0.1"
    assert c.to_string(1e-5) == "0.00001"
    for bad, message in ((-0.5, "Negative"), (math.nan, "NaN"), (math.inf, "Infinite")):
        with pytest.raises(AssertionError, match=message):
            c.to_string(bad)


def test_float_round_trip() -> None:
    c = FloatConvertor()
    for value in (0.0, 3.25, 12345.5, 0.001):
        text = c.to_string(value)
        assert full(c, text)
        assert c.convert(text) == value


def test_uuid() -> None:
    c = UUIDConvertor()
    value = uuid.UUID("abcdef01-2345-6789-abcd-ef0123456789")
    for text in (str(value), str(value).upper(), value.hex, value.hex.upper()):
        assert full(c, text), text
        assert c.convert(text) == value
    for text in (
        "1234",
        "abcdef01-23456789-abcd-ef0123456789",  # hyphens: all four or none
        "abcdef01-2345-6789-abcd-ef012345678",
        value.hex + "0",
        "{" + str(value) + "}",
        "urn:uuid:" + str(value),
        "abcdef01-2345-6789-abcd-ef012345678g",
    ):
        assert not full(c, text), text
    assert c.to_string(value) == str(value)


def test_uuid_route_accepts_any_case_and_no_hyphens() -> None:
    async def endpoint(request: Request) -> Response:
        value = request.path_params["id"]
        assert isinstance(value, uuid.UUID)
        return PlainTextResponse(str(value))

    value = uuid.UUID("00000000-aaaa-ffff-9999-000000000000")
    client = TestClient(Router([Route("/{id:uuid}", endpoint)]))
    for text in (str(value), str(value).upper(), value.hex, value.hex.upper()):
        response = client.get(f"/{text}")
        assert (response.status_code, response.text) == (200, str(value))
    assert client.get("/not-a-uuid").status_code == 404


class DateConvertor(Convertor[str]):
    regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}"

    def convert(self, value: str) -> str:
        return value.replace("-", "")

    def to_string(self, value: str) -> str:
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"


@pytest.fixture
def date_convertor() -> Iterator[None]:
    register_url_convertor("bdate", DateConvertor())
    try:
        yield
    finally:
        del CONVERTOR_TYPES["bdate"]


@pytest.mark.usefixtures("date_convertor")
def test_register_custom_convertor(client_factory: Callable[..., TestClient]) -> None:
    async def day(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "day": request.path_params["day"],
                "url": request.url_for("day", day="20240229").path,
            }
        )

    app = Brillo(routes=[Route("/day/{day:bdate}", day, name="day")])
    with client_factory(app) as client:
        response = client.get("/day/2024-03-01")
        assert response.json() == {"day": "20240301", "url": "/day/2024-02-29"}
        assert client.get("/day/2024-3-01").status_code == 404


def test_unknown_convertor_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Unknown path convertor 'nope'"):
        compile_path("/x/{a:nope}")
    with pytest.raises(ValueError, match="register_url_convertor"):
        Router([Route("/x/{a:nope}", lambda r: None)])
