from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from brillo.middleware.wsgi import WSGIMiddleware, build_environ
from tests.support.asgi import call_http, call_ws, http_scope, ws_scope


def hello_world(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    status = "200 OK"
    output = b"Hello World!\n"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(output)))])
    return [output]


def echo_body(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    first_line = environ["wsgi.input"].readline()
    rest = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"line=" + first_line, b"rest=" + rest]


def raise_exception(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    raise RuntimeError("Something went wrong")


def return_exc_info(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    try:
        raise RuntimeError("Something went wrong")
    except RuntimeError:
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("500 Internal Server Error", [("X-Err", "1")], sys.exc_info())
        return [b"Internal Server Error"]


def exc_info_after_body(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    try:
        raise ValueError("late")
    except ValueError:
        start_response("500 Internal Server Error", [], sys.exc_info())


@pytest.mark.anyio
async def test_wsgi_get() -> None:
    result = await call_http(WSGIMiddleware(hello_world), http_scope())
    assert (result.status, result.body) == (200, b"Hello World!\n")
    assert result.header("content-type") == "text/plain"


@pytest.mark.anyio
async def test_wsgi_post_streams_body() -> None:
    scope = http_scope("/", "POST", [("content-length", "17")])
    result = await call_http(WSGIMiddleware(echo_body), scope, [b"first\nsec", b"ond\nthird"])
    assert result.body == b"line=first\nrest=second\nthird"
    assert result.body_chunks[:2] == [b"line=first\n", b"rest=second\nthird"]


@pytest.mark.anyio
async def test_wsgi_exception_propagates() -> None:
    with pytest.raises(RuntimeError, match="Something went wrong"):
        await call_http(WSGIMiddleware(raise_exception), http_scope())


@pytest.mark.anyio
async def test_wsgi_exc_info_replaces_status_before_headers_sent() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    # The error response goes out complete, then the error is raised for the server to log.
    with pytest.raises(RuntimeError, match="Something went wrong"):
        await WSGIMiddleware(return_exc_info)(http_scope(), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 2
    assert sent[0]["status"] == 500
    assert (b"x-err", b"1") in sent[0]["headers"]
    assert b"".join(m["body"] for m in sent[1:]) == b"Internal Server Error"
    assert sent[-1].get("more_body", False) is False


@pytest.mark.anyio
async def test_wsgi_exc_info_after_headers_reraises() -> None:
    with pytest.raises(ValueError, match="late"):
        await call_http(WSGIMiddleware(exc_info_after_body), http_scope())


@pytest.mark.anyio
async def test_wsgi_close_called() -> None:
    closed: list[bool] = []

    class Result:
        def __iter__(self) -> Iterator[bytes]:
            yield b"a"
            yield b""
            yield b"b"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Result:
        start_response("201 Created", [])
        return Result()

    result = await call_http(WSGIMiddleware(app), http_scope())
    assert (result.status, result.body) == (201, b"ab")
    assert closed == [True]


@pytest.mark.anyio
async def test_websocket_refused() -> None:
    sent = await call_ws(WSGIMiddleware(hello_world), ws_scope())
    assert [m["type"] for m in sent] == ["websocket.close"]


def test_build_environ() -> None:
    scope = http_scope(
        "/sub/caf\u00e9",
        "GET",
        [
            ("content-type", "text/plain"),
            ("content-length", "0"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ],
        query=b"x=1&y=%20",
        root_path="/sub",
        scheme="https",
        server=("example.com", 8443),
    )
    environ = build_environ(scope, None)
    assert environ["wsgi.input"].read() == b""
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == "/sub"
    assert environ["PATH_INFO"] == "/caf\u00e9".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "0"
    assert environ["HTTP_X_MULTI"] == "a,b"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_HOST"] == "testserver"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8443")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.version"] == (1, 0)
    assert "HTTP_CONTENT_TYPE" not in environ


@pytest.mark.parametrize("body", [b"raw body", bytearray(b"raw body"), io.BytesIO(b"raw body")])
def test_build_environ_body_is_a_stream(body: Any) -> None:
    environ = build_environ(http_scope(), body)
    assert environ["wsgi.input"].read() == b"raw body"


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("", "/users", "", "/users"),
        ("/app", "/app", "/app", ""),
        ("/app", "/app/users", "/app", "/users"),
        ("/app", "/application", "/app", "/application"),  # not a segment boundary
        ("/app/", "/app/users", "/app/", "users"),
        ("/app", "/users", "/app", "/users"),  # path already relative (older ASGI wording)
    ],
)
def test_build_environ_splits_root_path(
    root_path: str, path: str, script_name: str, path_info: str
) -> None:
    environ = build_environ(http_scope(path, root_path=root_path), b"")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_build_environ_server_port_is_a_native_string() -> None:
    # PEP 3333: CGI variables are strings; frameworks compare SERVER_PORT with "80"/"443".
    environ = build_environ(http_scope(scheme="https", server=("example.org", 443)), b"")
    assert environ["SERVER_PORT"] == "443"
    assert environ["wsgi.errors"] is sys.stderr
