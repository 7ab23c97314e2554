"""Tests for brillo.responses, driven at the ASGI level with hand-written receive/send."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from brillo.background import BackgroundTask
from brillo.datastructures import URL
from brillo.requests import ClientDisconnect
from brillo.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from brillo.types import ASGIApp, Message

# --------------------------------------------------------------------------- ASGI driver


@dataclass
class Sent:
    """Everything an app sent for one request."""

    messages: list[Message] = field(default_factory=list)

    @property
    def start(self) -> Message:
        return self.messages[0]

    @property
    def status(self) -> int:
        status: int = self.start["status"]
        return status

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.start["headers"])

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    def headers(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.raw_headers if k == key]

    @property
    def body(self) -> bytes:
        return b"".join(bytes(m.get("body", b"")) for m in self.messages[1:])


def make_scope(
    *,
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[str, str]] | None = None,
    scope_type: str = "http",
    spec_version: str = "2.3",
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": scope_type,
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "scheme": "http" if scope_type == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers or []],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "extensions": extensions or {},
    }
    if scope_type == "http":
        scope["method"] = method
    return scope


async def call(app: ASGIApp, *, disconnect: anyio.Event | None = None, **kw: Any) -> Sent:
    """Run ``app`` for one request; ``receive`` reports a disconnect once ``disconnect`` is set."""
    sent = Sent()
    requested = False
    gone = disconnect or anyio.Event()

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.messages.append(message)

    with anyio.fail_after(10):
        await app(make_scope(**kw), receive, send)
    return sent


# --------------------------------------------------------------------------- Response


@pytest.mark.anyio
async def test_text_response_sets_length_and_charset() -> None:
    sent = await call(Response("héllo", media_type="text/plain"))
    assert sent.status == 200
    assert sent.body == "héllo".encode()
    assert sent.header("content-length") == str(len("héllo".encode()))
    assert sent.header("content-type") == "text/plain; charset=utf-8"
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.body"]


@pytest.mark.anyio
async def test_bytes_memoryview_and_empty_bodies() -> None:
    sent = await call(Response(b"\x00\x01", media_type="image/png"))
    assert sent.body == b"\x00\x01"
    assert sent.header("content-type") == "image/png"
    sent = await call(Response(memoryview(b"abc")))
    assert sent.body == b"abc"
    assert sent.header("content-type") is None
    sent = await call(Response())
    assert sent.body == b""
    assert sent.header("content-length") == "0"


@pytest.mark.anyio
async def test_typed_memoryview_length_counts_bytes() -> None:
    view = memoryview(b"abcdefgh").cast("I")  # two 4-byte items
    assert len(view) == 2
    sent = await call(Response(view))
    assert sent.header("content-length") == "8"
    assert sent.body == b"abcdefgh"


@pytest.mark.anyio
async def test_strided_memoryview_is_sent_as_its_bytes() -> None:
    sent = await call(Response(memoryview(b"abcdefgh")[1::2]))
    assert sent.header("content-length") == "4"
    assert sent.body == b"bdfh"
    # servers join/write the body as a buffer: a strided view cannot be one
    assert memoryview(sent.messages[1]["body"]).contiguous


@pytest.mark.anyio
async def test_plain_byte_memoryview_is_sent_as_is() -> None:
    view = memoryview(bytearray(b"xyz"))
    response = Response(view)
    assert response.body is view
    assert (await call(response)).header("content-length") == "3"


def test_existing_charset_is_not_duplicated_and_custom_charset_used() -> None:
    response = Response("x", media_type="text/html; charset=latin-1")
    assert response.headers["content-type"] == "text/html; charset=latin-1"

    class Latin(Response):
        charset = "latin-1"
        media_type = "text/plain"

    latin = Latin("é")
    assert latin.body == b"\xe9"
    assert latin.headers["content-type"] == "text/plain; charset=latin-1"


def test_explicit_headers_win_over_computed_ones() -> None:
    response = Response(
        "abc",
        media_type="text/plain",
        headers={"Content-Type": "application/x-custom", "Content-Length": "3", "X-A": "1"},
    )
    assert response.headers.getlist("content-type") == ["application/x-custom"]
    assert response.headers.getlist("content-length") == ["3"]
    assert response.headers["x-a"] == "1"


@pytest.mark.parametrize("status", [100, 204, 304])
def test_no_content_length_for_bodiless_statuses(status: int) -> None:
    assert "content-length" not in Response(status_code=status).headers


def test_render_rejects_other_types_clearly() -> None:
    with pytest.raises(TypeError, match="str, bytes or memoryview, not int"):
        Response(123)


@pytest.mark.anyio
async def test_headers_property_is_live() -> None:
    response = PlainTextResponse("x")
    response.headers["x-custom"] = "yes"
    response.headers["content-type"] = "text/csv"
    assert response.headers is response.headers
    sent = await call(response)
    assert sent.header("x-custom") == "yes"
    assert sent.headers("content-type") == ["text/csv"]


def test_media_type_subclasses() -> None:
    assert HTMLResponse("<b>").headers["content-type"] == "text/html; charset=utf-8"
    assert PlainTextResponse("x").headers["content-type"] == "text/plain; charset=utf-8"
    assert JSONResponse({}).headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_background_runs_after_the_body_is_sent() -> None:
    events: list[str] = []

    class Recording(Response):
        pass

    async def task(tag: str) -> None:
        events.append(tag)

    response = Recording("ok", background=BackgroundTask(task, "bg"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def spy(message: Message) -> None:
            events.append(message["type"])
            await send(message)

        await response(scope, receive, spy)

    await call(app)
    assert events == ["http.response.start", "http.response.body", "bg"]


@pytest.mark.anyio
async def test_websocket_scope_sends_a_denial_response() -> None:
    sent = await call(PlainTextResponse("nope", status_code=403), scope_type="websocket")
    assert [m["type"] for m in sent.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent.status == 403
    assert sent.body == b"nope"


# --------------------------------------------------------------------------- JSON


def test_json_is_compact_utf8() -> None:
    response = JSONResponse({"a": [1, 2], "b": "é☃"})
    assert response.body == '{"a":[1,2],"b":"é☃"}'.encode()
    assert JSONResponse(None).body == b"null"


def test_json_rejects_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        JSONResponse({"x": float("nan")})


def test_json_status_and_media_type_override() -> None:
    response = JSONResponse([1], status_code=201, media_type="application/vnd.api+json")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/vnd.api+json"


def test_json_content_is_required_and_subclasses_keep_working() -> None:
    with pytest.raises(TypeError, match="content"):
        JSONResponse()  # type: ignore[call-arg]
    assert JSONResponse(content={"k": 1}, headers={"x": "1"}).raw_headers == [
        (b"x", b"1"),
        (b"content-length", b"7"),
        (b"content-type", b"application/json"),
    ]

    class Pretty(JSONResponse):
        media_type = "application/pretty+json"

        def render(self, content: object) -> bytes:
            return repr(content).encode()

    response = Pretty([1, "a"], status_code=202)
    assert (response.status_code, response.body) == (202, b"[1, 'a']")
    assert response.headers["content-type"] == "application/pretty+json"
    assert response.headers["content-length"] == "8"


def test_content_type_cache_follows_the_charset() -> None:
    # The header cache keys text types by charset; other types do not depend on it.
    class Latin(PlainTextResponse):
        charset = "latin-1"

    assert Latin("x").headers["content-type"] == "text/plain; charset=latin-1"
    assert PlainTextResponse("x").headers["content-type"] == "text/plain; charset=utf-8"
    assert Latin("x").headers["content-type"] == "text/plain; charset=latin-1"

    class LatinJSON(JSONResponse):
        charset = "latin-1"

    assert LatinJSON(1).headers["content-type"] == "application/json"
    assert Response("x", media_type="text/csv; charset=ascii").headers["content-type"] == (
        "text/csv; charset=ascii"
    )


@pytest.mark.anyio
async def test_a_plain_response_on_a_websocket_scope_is_a_denial_response() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:  # pragma: no cover - never called
        return {"type": "websocket.disconnect"}

    ran: list[str] = []
    response = PlainTextResponse("no", status_code=403, background=BackgroundTask(ran.append, "bg"))
    await response({"type": "websocket", "path": "/"}, receive, send)
    assert sent == [
        {"type": "websocket.http.response.start", "status": 403, "headers": response.raw_headers},
        {"type": "websocket.http.response.body", "body": b"no"},
    ]
    assert ran == ["bg"]


# --------------------------------------------------------------------------- Redirect


@pytest.mark.anyio
async def test_redirect_defaults_and_quoting() -> None:
    sent = await call(RedirectResponse("/a b/ü?q=1&r=%20#frag"))
    assert sent.status == 307
    assert sent.header("location") == "/a%20b/%C3%BC?q=1&r=%20#frag"
    assert sent.body == b""
    assert sent.header("content-length") == "0"


def test_redirect_accepts_url_and_status_and_headers() -> None:
    response = RedirectResponse(
        URL("https://example.com/x"), status_code=301, headers={"location": "ignored", "x": "1"}
    )
    assert response.status_code == 301
    assert response.headers.getlist("location") == ["https://example.com/x"]
    assert response.headers["x"] == "1"


def test_redirect_header_injection_is_neutralised() -> None:
    response = RedirectResponse("/ok\r\nSet-Cookie: evil=1")
    assert response.headers["location"] == "/ok%0D%0ASet-Cookie:%20evil=1"


# --------------------------------------------------------------------------- cookies


def test_set_cookie_with_every_flag() -> None:
    response = Response()
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    response.set_cookie(
        "session",
        "a b",
        max_age=60,
        expires=when,
        path="/app",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="none",
        partitioned=True,
    )
    header = response.headers["set-cookie"]
    parts = [p.strip() for p in header.split(";")]
    assert parts[0] == 'session="a b"'
    assert "Max-Age=60" in parts
    assert "expires=Wed, 02 Jan 2030 03:04:05 GMT" in parts
    assert "Path=/app" in parts
    assert "Domain=example.com" in parts
    assert "Secure" in parts
    assert "HttpOnly" in parts
    assert "SameSite=none" in parts
    assert parts[-1] == "Partitioned"


def test_set_cookie_defaults_and_omissions() -> None:
    response = Response()
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", path=None, samesite=None)
    first, second = response.headers.getlist("set-cookie")
    assert first == "a=1; Path=/; SameSite=lax"
    assert second == "b=2"


def test_set_cookie_expires_int_and_str() -> None:
    response = Response()
    response.set_cookie("n", "1", expires=10)
    response.set_cookie("s", "1", expires="Thu, 01 Jan 2032 00:00:00 GMT")
    by_int, by_str = response.headers.getlist("set-cookie")
    expires = re.search(r"expires=([^;]+)", by_int)
    assert expires is not None
    delta = parsedate_to_datetime(expires.group(1)) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=-60) < delta < dt.timedelta(seconds=70)
    assert "expires=Thu, 01 Jan 2032 00:00:00 GMT" in by_str


def test_set_cookie_rejects_bad_samesite() -> None:
    with pytest.raises(ValueError, match="samesite must be either"):
        Response().set_cookie("a", samesite="sometimes")  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        Response().set_cookie("a", samesite="bogus")  # type: ignore[arg-type]


def test_set_cookie_samesite_is_case_insensitive() -> None:
    response = Response()
    response.set_cookie("a", samesite="Strict")  # type: ignore[arg-type]
    assert "SameSite=Strict" in response.headers["set-cookie"]


def test_delete_cookie_expires_now() -> None:
    response = Response()
    response.delete_cookie("gone", path="/p", domain="d.example", secure=True, httponly=True)
    header = response.headers["set-cookie"]
    assert header.startswith('gone=""; ')
    assert "Max-Age=0" in header
    assert "Path=/p" in header
    assert "Domain=d.example" in header
    assert "Secure" in header
    assert "HttpOnly" in header
    expires = re.search(r"expires=([^;]+)", header)
    assert expires is not None
    assert parsedate_to_datetime(expires.group(1)) <= dt.datetime.now(dt.UTC)
    assert "Partitioned" not in header


def test_delete_partitioned_cookie() -> None:
    response = Response()
    response.delete_cookie("gone", secure=True, samesite="none", partitioned=True)
    parts = [p.strip() for p in response.headers["set-cookie"].split(";")]
    assert "Partitioned" in parts
    assert "Max-Age=0" in parts


def test_partitioned_cookie_works_on_every_python_version() -> None:
    # Starlette refuses partitioned=True below Python 3.14 (its Morsel lacks the attribute);
    # brillo writes the attribute itself there, and lets 3.14's Morsel place it.
    response = Response()
    response.set_cookie("chip", "1", secure=True, samesite="none", partitioned=True)
    header = response.headers["set-cookie"]
    assert header.count("Partitioned") == 1
    assert "Partitioned" in [p.strip() for p in header.split(";")]


# --------------------------------------------------------------------------- Streaming


@pytest.mark.anyio
async def test_streaming_async_iterator() -> None:
    async def numbers() -> AsyncIterator[str | bytes]:
        for i in range(3):
            yield str(i)
        yield b"!"

    ran: list[int] = []
    response = StreamingResponse(
        numbers(), media_type="text/plain", background=BackgroundTask(ran.append, 1)
    )
    sent = await call(response)
    assert sent.status == 200
    assert sent.body == b"012!"
    assert sent.header("content-type") == "text/plain; charset=utf-8"
    assert sent.header("content-length") is None
    assert sent.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert all(m["more_body"] for m in sent.messages[1:-1])
    assert ran == [1]


@pytest.mark.anyio
async def test_streaming_sync_iterator_runs_in_threads() -> None:
    import threading

    loop_thread = threading.current_thread()
    threads: list[bool] = []

    def chunks() -> Iterator[bytes]:
        for part in (b"a", b"b"):
            threads.append(threading.current_thread() is loop_thread)
            yield part

    sent = await call(StreamingResponse(chunks(), headers={"x-h": "1"}, status_code=201))
    assert sent.status == 201
    assert sent.body == b"ab"
    assert sent.header("x-h") == "1"
    assert threads == [False, False]


@pytest.mark.anyio
async def test_streaming_stops_on_http_disconnect() -> None:
    """ASGI < 2.4: the stream is abandoned once ``http.disconnect`` arrives."""
    disconnect = anyio.Event()
    stuck = anyio.Event()
    cancelled = anyio.Event()
    ran: list[str] = []

    async def forever() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            disconnect.set()  # the client leaves while we wait for more data
            await stuck.wait()
            yield b"never"
        finally:
            cancelled.set()

    response = StreamingResponse(forever(), background=BackgroundTask(ran.append, "bg"))
    sent = await call(response, disconnect=disconnect)
    assert sent.body == b"first"
    assert cancelled.is_set()
    assert ran == ["bg"]  # as in Starlette, the background task still runs


@pytest.mark.anyio
async def test_streaming_oserror_from_the_iterator_is_not_a_disconnect() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        raise FileNotFoundError("source vanished")

    async def receive() -> Message:
        raise AssertionError("receive must not be needed on ASGI 2.4")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(FileNotFoundError, match="source vanished"):
        await StreamingResponse(failing())(make_scope(spec_version="2.4"), receive, send)
    assert sent[-1]["body"] == b"a"


@pytest.mark.anyio
async def test_streaming_oserror_on_send_is_client_disconnect_for_spec_2_4() -> None:
    ran: list[str] = []
    sends = 0

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x"

    response = StreamingResponse(chunks(), background=BackgroundTask(ran.append, "bg"))

    async def receive() -> Message:
        raise AssertionError("receive must not be needed on ASGI 2.4")

    async def send(message: Message) -> None:
        nonlocal sends
        sends += 1
        if sends == 3:
            raise OSError("connection lost")

    with pytest.raises(ClientDisconnect), anyio.fail_after(10):
        await response(make_scope(spec_version="2.4"), receive, send)
    assert sends == 3
    assert ran == []


@pytest.mark.anyio
async def test_streaming_iterator_error_propagates_unwrapped() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a"
        raise LookupError("generator failed")

    with pytest.raises(LookupError, match="generator failed"):
        await call(StreamingResponse(broken()))


@pytest.mark.anyio
async def test_streaming_on_websocket_scope_is_a_denial_body() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"no"

    sent = await call(StreamingResponse(body(), status_code=401), scope_type="websocket")
    assert {m["type"] for m in sent.messages} == {
        "websocket.http.response.start",
        "websocket.http.response.body",
    }
    assert sent.status == 401
    assert sent.body == b"no"


# --------------------------------------------------------------------------- FileResponse


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(48, 58)) * 10)  # "0123456789" * 10, 100 bytes
    return path


CONTENT = b"0123456789" * 10


@pytest.mark.anyio
async def test_file_response_whole_file(data_file: Path) -> None:
    ran: list[str] = []
    response = FileResponse(data_file, background=BackgroundTask(ran.append, "bg"))
    response.chunk_size = 7
    sent = await call(response)
    assert sent.status == 200
    assert sent.body == CONTENT
    assert sent.header("content-length") == "100"
    assert sent.header("content-type") == "text/plain; charset=utf-8"
    assert sent.header("accept-ranges") == "bytes"
    assert sent.header("content-disposition") is None
    stat = os.stat(data_file)
    last_modified = sent.header("last-modified")
    assert last_modified is not None
    assert parsedate_to_datetime(last_modified).timestamp() == int(stat.st_mtime)
    etag = sent.header("etag")
    assert etag is not None
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', etag)
    bodies = sent.messages[1:]
    assert all(len(m["body"]) <= 7 for m in bodies)
    assert bodies[-1]["more_body"] is False
    assert ran == ["bg"]


@pytest.mark.anyio
async def test_file_response_etag_changes_with_content(data_file: Path) -> None:
    first = (await call(FileResponse(data_file))).header("etag")
    data_file.write_bytes(b"changed and longer" * 20)
    second = (await call(FileResponse(data_file))).header("etag")
    assert first != second


@pytest.mark.anyio
async def test_file_response_head_has_headers_only(data_file: Path) -> None:
    sent = await call(FileResponse(data_file), method="HEAD")
    assert sent.status == 200
    assert sent.header("content-length") == "100"
    assert sent.body == b""


@pytest.mark.anyio
async def test_file_response_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with pytest.raises(RuntimeError, match=re.escape(str(missing))):
        await call(FileResponse(missing))


@pytest.mark.anyio
async def test_file_response_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="is not a file"):
        await call(FileResponse(tmp_path))


@pytest.mark.anyio
async def test_file_response_with_stat_result_sets_headers_eagerly(data_file: Path) -> None:
    response = FileResponse(data_file, stat_result=os.stat(data_file))
    assert response.headers["content-length"] == "100"
    assert "etag" in response.headers
    assert "last-modified" in response.headers
    sent = await call(response)
    assert sent.body == CONTENT
    assert len(sent.headers("etag")) == 1


@pytest.mark.parametrize(
    ("filename", "disposition_type", "expected"),
    [
        ("report.txt", "attachment", 'attachment; filename="report.txt"'),
        ("report.txt", "inline", 'inline; filename="report.txt"'),
        (
            "résumé €.txt",
            "attachment",
            "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%E2%82%AC.txt",
        ),
    ],
)
def test_file_response_content_disposition(
    data_file: Path, filename: str, disposition_type: str, expected: str
) -> None:
    response = FileResponse(data_file, filename=filename, content_disposition_type=disposition_type)
    assert response.headers["content-disposition"] == expected


def test_file_response_media_type_guessing(data_file: Path) -> None:
    assert FileResponse(data_file, filename="x.png").media_type == "image/png"
    assert FileResponse("/no/such/file.unknownext").media_type == "application/octet-stream"
    assert FileResponse(data_file, media_type="text/csv").headers["content-type"] == (
        "text/csv; charset=utf-8"
    )


def test_file_response_has_no_method_parameter(data_file: Path) -> None:
    # Starlette 1.0 removed ``method``: the ninth positional is ``content_disposition_type``.
    with pytest.raises(TypeError):
        FileResponse(data_file, method="GET")  # type: ignore[call-arg]
    response = FileResponse(data_file, 200, None, None, None, "a.txt", None, "inline")
    assert response.headers["content-disposition"] == 'inline; filename="a.txt"'


def test_file_response_generate_multipart(data_file: Path) -> None:
    response = FileResponse(data_file)
    length, part_head = response.generate_multipart([(0, 2), (5, 9)], "XYZ", 10, "text/plain")
    assert part_head(5, 9) == (
        b"--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-8/10\r\n\r\n"
    )
    body = part_head(0, 2) + b"ab\r\n" + part_head(5, 9) + b"fghi\r\n" + b"--XYZ--"
    assert length == len(body)


@pytest.mark.anyio
async def test_file_response_pathsend_extension(data_file: Path) -> None:
    sent = await call(FileResponse(data_file), extensions={"http.response.pathsend": {}})
    assert sent.messages[1] == {"type": "http.response.pathsend", "path": str(data_file)}


@pytest.mark.anyio
async def test_file_response_on_websocket_scope(data_file: Path) -> None:
    sent = await call(FileResponse(data_file), scope_type="websocket")
    assert {m["type"] for m in sent.messages} == {
        "websocket.http.response.start",
        "websocket.http.response.body",
    }
    assert sent.body == CONTENT


# ranges


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-4", 0, 4),
        ("bytes=10-19", 10, 19),
        ("bytes=95-", 95, 99),
        ("bytes=-3", 97, 99),
        ("bytes=-500", 0, 99),
        ("bytes=90-1000", 90, 99),
        ("Bytes = 5-5", 5, 5),
        ("bytes=0-99999999999999999999999999999999999999999", 0, 99),
        ("bytes=0-4, 2-8", 0, 8),  # overlapping ranges are merged
        ("bytes=0-4,5-9", 0, 9),  # adjacent ones too
        ("bytes=x-y, 3-4", 3, 4),  # unparseable parts are ignored
    ],
)
@pytest.mark.anyio
async def test_single_range(data_file: Path, range_header: str, start: int, end: int) -> None:
    response = FileResponse(data_file)
    response.chunk_size = 4
    sent = await call(response, headers=[("range", range_header)])
    assert sent.status == 206
    assert sent.header("content-range") == f"bytes {start}-{end}/100"
    assert sent.header("content-length") == str(end - start + 1)
    assert sent.body == CONTENT[start : end + 1]
    assert sent.messages[-1]["more_body"] is False
    assert all(m["more_body"] for m in sent.messages[1:-1])


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", content_type)
    assert match is not None
    boundary = match.group(1).encode()
    assert body.endswith(b"--" + boundary + b"--")
    parts = body[: -len(boundary) - 4].split(b"--" + boundary + b"\r\n")
    assert parts[0] == b""
    result = []
    for part in parts[1:]:
        head, _, data = part.partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n"))
        result.append((headers, data[:-2]))
    return result


@pytest.mark.anyio
async def test_multiple_ranges_are_multipart_byteranges(data_file: Path) -> None:
    response = FileResponse(data_file)
    response.chunk_size = 3
    sent = await call(response, headers=[("range", "bytes=50-54, 0-1, -2")])
    assert sent.status == 206
    content_type = sent.header("content-type")
    assert content_type is not None
    assert sent.header("content-length") == str(len(sent.body))
    assert sent.header("content-range") is None
    parts = parse_multipart(sent.body, content_type)
    assert [(h["Content-Range"], data) for h, data in parts] == [
        ("bytes 0-1/100", CONTENT[0:2]),
        ("bytes 50-54/100", CONTENT[50:55]),
        ("bytes 98-99/100", CONTENT[98:100]),
    ]
    assert all(h["Content-Type"] == "text/plain; charset=utf-8" for h, _ in parts)
    assert sent.messages[-1]["more_body"] is False


@pytest.mark.anyio
async def test_multiple_ranges_head(data_file: Path) -> None:
    sent = await call(FileResponse(data_file), method="HEAD", headers=[("range", "bytes=0-1,5-6")])
    assert sent.status == 206
    assert sent.body == b""
    length = sent.header("content-length")
    assert length is not None
    assert int(length) > 4


@pytest.mark.anyio
async def test_single_range_head(data_file: Path) -> None:
    sent = await call(FileResponse(data_file), method="HEAD", headers=[("range", "bytes=1-2")])
    assert sent.status == 206
    assert sent.header("content-length") == "2"
    assert sent.body == b""


@pytest.mark.parametrize(
    "range_header", ["bytes=100-", "bytes=200-300", "bytes=-0", "bytes=0-1,100-"]
)
@pytest.mark.anyio
async def test_unsatisfiable_range_is_416(data_file: Path, range_header: str) -> None:
    sent = await call(FileResponse(data_file), headers=[("range", range_header)])
    assert sent.status == 416
    assert sent.header("content-range") == "bytes */100"


@pytest.mark.anyio
async def test_any_range_on_an_empty_file_is_416(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    sent = await call(FileResponse(empty), headers=[("range", "bytes=0-")])
    assert sent.status == 416
    assert sent.header("content-range") == "bytes */0"


@pytest.mark.parametrize(
    ("range_header", "message"),
    [
        ("bytes", "Malformed range header."),
        ("items=0-1", "Only support bytes range"),
        ("bytes=abc", "range must be requested"),
        ("bytes=,", "range must be requested"),
        ("bytes=5-2", "start must be less than end"),
        ("bytes=²-3", "range must be requested"),
    ],
)
@pytest.mark.anyio
async def test_malformed_range_is_400(data_file: Path, range_header: str, message: str) -> None:
    sent = await call(FileResponse(data_file), headers=[("range", range_header)])
    assert sent.status == 400
    assert message in sent.body.decode()


@pytest.mark.anyio
async def test_too_many_ranges_serve_the_whole_file(data_file: Path) -> None:
    many = ",".join(f"{i % 50}-{i % 50}" for i in range(0, 202, 2))
    sent = await call(FileResponse(data_file), headers=[("range", f"bytes={many}")])
    assert sent.status == 200
    assert sent.body == CONTENT


@pytest.mark.anyio
async def test_if_range_matching_etag_or_date_uses_the_range(data_file: Path) -> None:
    full = await call(FileResponse(data_file))
    for validator in (full.header("etag"), full.header("last-modified")):
        assert validator is not None
        sent = await call(
            FileResponse(data_file), headers=[("range", "bytes=0-1"), ("if-range", validator)]
        )
        assert sent.status == 206
        assert sent.body == b"01"


@pytest.mark.anyio
async def test_if_range_mismatch_sends_the_whole_file(data_file: Path) -> None:
    sent = await call(
        FileResponse(data_file), headers=[("range", "bytes=0-1"), ("if-range", '"stale"')]
    )
    assert sent.status == 200
    assert sent.body == CONTENT


@pytest.mark.anyio
async def test_range_ignored_for_non_200_file_responses(data_file: Path) -> None:
    sent = await call(FileResponse(data_file, status_code=404), headers=[("range", "bytes=0-1")])
    assert sent.status == 404
    assert sent.body == CONTENT


@pytest.mark.anyio
async def test_range_background_runs(data_file: Path) -> None:
    ran: list[str] = []
    response = FileResponse(data_file, background=BackgroundTask(ran.append, "bg"))
    await call(response, headers=[("range", "bytes=0-1,4-5")])
    assert ran == ["bg"]


def test_file_response_extra_headers_kept(data_file: Path) -> None:
    response = FileResponse(
        data_file,
        headers={"Accept-Ranges": "none", "Cache-Control": "no-store"},
        filename="x.txt",
    )
    assert response.headers.getlist("accept-ranges") == ["none"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
@pytest.mark.anyio
async def test_range_ignored_for_methods_other_than_get_and_head(
    data_file: Path, method: str
) -> None:
    # RFC 9110 14.2: Range is defined for GET only (brillo also answers HEAD with the 206 head).
    sent = await call(FileResponse(data_file), method=method, headers=[("range", "bytes=0-1")])
    assert sent.status == 200
    assert sent.header("content-range") is None
    assert sent.body == CONTENT


@pytest.mark.parametrize("if_range", ['W/"v1"', 'W/"v1" '])
@pytest.mark.anyio
async def test_weak_if_range_never_matches(data_file: Path, if_range: str) -> None:
    # If-Range needs a strong validator: even the identical weak ETag sends the whole file.
    response = FileResponse(data_file, headers={"etag": 'W/"v1"'})
    sent = await call(response, headers=[("range", "bytes=0-1"), ("if-range", if_range)])
    assert sent.status == 200
    assert sent.body == CONTENT


@pytest.mark.anyio
async def test_weak_form_of_a_strong_etag_does_not_match_if_range(data_file: Path) -> None:
    etag = (await call(FileResponse(data_file))).header("etag")
    assert etag is not None
    assert etag.startswith('"')
    headers = [("range", "bytes=0-1"), ("if-range", f"W/{etag}")]
    sent = await call(FileResponse(data_file), headers=headers)
    assert sent.status == 200
    assert sent.body == CONTENT


@pytest.mark.parametrize("range_header", [None, "bytes=2-8", "bytes=0-1,5-8", "bytes=0-1,20-30"])
@pytest.mark.anyio
async def test_file_shorter_than_its_stat_raises(data_file: Path, range_header: str | None) -> None:
    response = FileResponse(data_file, stat_result=os.stat(data_file))
    data_file.write_bytes(b"0123")  # shrinks after the stat (content-length says 100)
    headers = [] if range_header is None else [("range", range_header)]
    with pytest.raises(RuntimeError, match=re.escape(f"File at path {data_file} is shorter")):
        await call(response, headers=headers)


@pytest.mark.anyio
async def test_file_that_grew_sends_only_the_stated_length(data_file: Path) -> None:
    response = FileResponse(data_file, stat_result=os.stat(data_file))
    data_file.write_bytes(CONTENT + b"appended later")
    sent = await call(response)
    assert sent.header("content-length") == "100"
    assert sent.body == CONTENT


@pytest.mark.anyio
async def test_empty_file_ends_the_body(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    sent = await call(FileResponse(empty))
    assert sent.header("content-length") == "0"
    assert sent.messages[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> list[anyio.AsyncFile[bytes]]:
    """Every file FileResponse opens (through the real ``anyio.open_file``), to check closing."""
    opened: list[anyio.AsyncFile[bytes]] = []
    real_open_file = anyio.open_file

    async def recording_open_file(*args: Any, **kwargs: Any) -> anyio.AsyncFile[bytes]:
        file: anyio.AsyncFile[bytes] = await real_open_file(*args, **kwargs)
        opened.append(file)
        return file

    monkeypatch.setattr(anyio, "open_file", recording_open_file)
    return opened


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB: 256 chunks of 1 KiB
    return path


@pytest.mark.parametrize("range_header", [None, "bytes=0-", "bytes=0-99999,150000-"])
@pytest.mark.parametrize("spec_version", ["2.0", "2.3"])
@pytest.mark.anyio
async def test_file_response_stops_reading_when_the_client_disconnects(
    big_file: Path,
    opened_files: list[anyio.AsyncFile[bytes]],
    range_header: str | None,
    spec_version: str,
) -> None:
    # Like uvicorn (ASGI < 2.4), send() silently drops messages once the client is gone: only
    # the http.disconnect from receive() can stop the response from reading the whole file.
    gone = anyio.Event()
    sent_bytes = 0
    ran: list[bool] = []

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal sent_bytes
        if message["type"] == "http.response.body":
            sent_bytes += len(message["body"])
            if sent_bytes >= 4096:
                gone.set()

    def background() -> None:
        assert opened_files[0].closed  # closed before the background task runs
        ran.append(True)

    response = FileResponse(big_file, background=BackgroundTask(background))
    response.chunk_size = 1024
    headers = [] if range_header is None else [("range", range_header)]
    scope = make_scope(spec_version=spec_version, headers=headers)
    with anyio.fail_after(10):
        await response(scope, receive, send)
    assert sent_bytes < big_file.stat().st_size // 2
    assert len(opened_files) == 1
    assert opened_files[0].closed
    assert ran == [True]  # a disconnect is a normal end: the background task still runs


@pytest.mark.parametrize("range_header", [None, "bytes=0-", "bytes=0-99999,150000-"])
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
@pytest.mark.anyio
async def test_file_response_closes_the_file_when_cancelled(
    big_file: Path,
    opened_files: list[anyio.AsyncFile[bytes]],
    range_header: str | None,
    spec_version: str,
) -> None:
    ran: list[bool] = []

    async def receive() -> Message:
        assert spec_version != "2.4", "no disconnect watcher on ASGI 2.4: send() reports it"
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            scope.cancel()
            await anyio.sleep_forever()

    response = FileResponse(big_file, background=BackgroundTask(ran.append, True))
    headers = [] if range_header is None else [("range", range_header)]
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        await response(make_scope(spec_version=spec_version, headers=headers), receive, send)
    assert scope.cancelled_caught
    assert len(opened_files) == 1
    assert opened_files[0].closed
    assert ran == []


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
@pytest.mark.anyio
async def test_file_response_send_error_propagates_and_closes_the_file(
    big_file: Path, opened_files: list[anyio.AsyncFile[bytes]], spec_version: str
) -> None:
    broken = ConnectionResetError("peer gone")

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise broken

    with anyio.fail_after(10), pytest.raises(ConnectionResetError) as info:
        await FileResponse(big_file)(make_scope(spec_version=spec_version), receive, send)
    assert info.value is broken
    assert opened_files[0].closed


@pytest.mark.parametrize("spec_version", ["2.0", "2.3"])
@pytest.mark.anyio
async def test_file_response_with_a_receive_that_never_blocks(
    data_file: Path, spec_version: str
) -> None:
    # A hand-made receive() that answers http.request forever must not make the disconnect
    # watcher spin (that would starve the event loop and hang the response).
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = Sent()

    async def send(message: Message) -> None:
        sent.messages.append(message)
        await anyio.lowlevel.checkpoint()

    response = FileResponse(data_file)
    response.chunk_size = 10
    with anyio.fail_after(10):
        await response(make_scope(spec_version=spec_version), receive, send)
    assert sent.body == CONTENT
    assert calls <= 2


@pytest.mark.anyio
async def test_file_response_disconnect_after_an_unread_request_body(data_file: Path) -> None:
    # The app never read the body: the watcher drains it, then still sees the disconnect.
    messages: list[Message] = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b", "more_body": False},
        {"type": "http.disconnect"},
    ]
    bodies: list[bytes] = []

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            await anyio.lowlevel.checkpoint()

    response = FileResponse(data_file)
    response.chunk_size = 1
    with anyio.fail_after(10):
        await response(make_scope(spec_version="2.3"), receive, send)
    assert len(b"".join(bodies)) < len(CONTENT)
