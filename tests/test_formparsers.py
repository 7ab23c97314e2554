from __future__ import annotations

import codecs
import os
import warnings
from collections.abc import AsyncIterator, Iterable

import pytest

from brillo.datastructures import FormData, Headers, UploadFile
from brillo.exceptions import BrilloDeprecationWarning, StarletteDeprecationWarning
from brillo.formparsers import (
    FormMessage,
    FormParser,
    MultiPartException,
    MultiPartParser,
    parse_header_params,
)

BOUNDARY = "----brilloBoundary7MA4YWxk"


async def chunks(body: bytes, size: int = 1 << 16) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def part(
    name: str | None,
    value: bytes,
    *,
    filename: str | None = None,
    disposition: str | None = None,
    content_type: str | None = None,
) -> bytes:
    if disposition is None:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
    lines = [f"Content-Disposition: {disposition}".encode()]
    if content_type:
        lines.append(f"Content-Type: {content_type}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + value


def multipart_body(parts: Iterable[bytes], boundary: str = BOUNDARY) -> bytes:
    delimiter = f"--{boundary}".encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts)
    return body + delimiter + b"--\r\n"


def mp_headers(boundary: str = BOUNDARY, extra: str = "") -> Headers:
    return Headers({"content-type": f"multipart/form-data; boundary={boundary}{extra}"})


async def parse_multipart(
    body: bytes, *, chunk: int = 1 << 16, headers: Headers | None = None, **limits: int
) -> FormData:
    parser = MultiPartParser(headers or mp_headers(), chunks(body, chunk), **limits)
    return await parser.parse()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------------------ header parameters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("form-data", ("form-data", {})),
        ('form-data; name="a"', ("form-data", {"name": "a"})),
        ("Form-Data; NAME=a ; filename=b.txt", ("form-data", {"name": "a", "filename": "b.txt"})),
        ('form-data; name="a;b"; x="q\\"uote"', ("form-data", {"name": "a;b", "x": 'q"uote'})),
        ("form-data; filename*=UTF-8''%C3%A9", ("form-data", {"filename*": "UTF-8''%C3%A9"})),
        ("form-data; junk; name=a", ("form-data", {"name": "a"})),
        ("", ("", {})),
    ],
)
def test_parse_header_params(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_header_params(value) == expected


# ------------------------------------------------------------------------------ urlencoded


@pytest.mark.anyio
@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
async def test_urlencoded(chunk: int) -> None:
    body = b"a=1&b=hello+world&a=2&c=%E2%9C%93&empty=&flag&=anon"
    form = await FormParser(Headers(), chunks(body, chunk)).parse()
    assert form.multi_items() == [
        ("a", "1"),
        ("b", "hello world"),
        ("a", "2"),
        ("c", "✓"),
        ("empty", ""),
        ("flag", ""),
        ("", "anon"),
    ]
    assert form["a"] == "2"


@pytest.mark.anyio
async def test_urlencoded_malformed_escapes_and_empty() -> None:
    form = await FormParser(Headers(), chunks(b"a=%zz&b=%&&c=%ff")).parse()
    assert form.multi_items() == [("a", "%zz"), ("b", "%"), ("c", "\ufffd")]
    empty = await FormParser(Headers(), chunks(b"")).parse()
    assert empty.multi_items() == []


@pytest.mark.anyio
async def test_urlencoded_limits() -> None:
    with pytest.raises(MultiPartException, match="Too many fields. Maximum number of fields is 2"):
        await FormParser(Headers(), chunks(b"a=1&b=2&c=3"), max_fields=2).parse()
    form = await FormParser(Headers(), chunks(b"a=1&b=2"), max_fields=2).parse()
    assert len(form) == 2
    with pytest.raises(MultiPartException, match="maximum size of 4 bytes") as info:
        await FormParser(Headers(), chunks(b"a=12345", 1), max_part_size=4).parse()
    assert "4 bytes" in info.value.message


@pytest.mark.anyio
async def test_urlencoded_limits_stop_inside_one_chunk() -> None:
    # A whole oversized body in a single chunk: parsing stops at the limit instead of
    # collecting the rest of the chunk first (white-box: the parser's own buffers).
    many = "&".join(f"f{i}=v" for i in range(5000)).encode()
    parser = FormParser(Headers(), chunks(many, len(many)), max_fields=10)
    with pytest.raises(MultiPartException, match="Too many fields"):
        await parser.parse()
    assert len(parser._items) == 10

    huge = b"field=" + b"x" * (8 * 1024 * 1024)
    parser = FormParser(Headers(), chunks(huge, len(huge)), max_part_size=1024)
    with pytest.raises(MultiPartException, match="Field exceeded maximum size of 1KB."):
        await parser.parse()
    assert len(parser._value) <= 1024


# ------------------------------------------------------------------------------- multipart


@pytest.mark.anyio
@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
async def test_multipart_fields_and_files(chunk: int) -> None:
    body = multipart_body(
        [
            part("field", b"value"),
            part("text", "héllo\r\nworld".encode()),
            part("upload", b"file\r\n--content", filename="a.txt", content_type="text/plain"),
            part("field", b"second"),
            part("upload", b"", filename="empty.bin"),
        ]
    )
    form = await parse_multipart(body, chunk=chunk)
    try:
        assert form.getlist("field") == ["value", "second"]
        assert form["text"] == "héllo\r\nworld"
        first, second = form.getlist("upload")
        assert isinstance(first, UploadFile)
        assert isinstance(second, UploadFile)
        assert first.filename == "a.txt"
        assert first.content_type == "text/plain"
        assert first.size == len(b"file\r\n--content")
        assert await first.read() == b"file\r\n--content"
        assert first.headers["content-disposition"].startswith("form-data")
        assert second.filename == "empty.bin"
        assert second.content_type is None
        assert second.size == 0
        assert await second.read() == b""
        assert [key for key, _ in form.multi_items()] == [
            "field",
            "text",
            "upload",
            "field",
            "upload",
        ]
    finally:
        await form.close()
    assert first.file.closed
    assert second.file.closed


@pytest.mark.anyio
async def test_multipart_quoted_boundary_and_empty_body() -> None:
    body = multipart_body([part("a", b"1")], boundary="with space")
    form = await parse_multipart(body, headers=mp_headers('"with space"'))
    assert form.multi_items() == [("a", "1")]
    empty = await parse_multipart(b"")
    assert empty.multi_items() == []
    only_end = await parse_multipart(f"--{BOUNDARY}--\r\n".encode())
    assert only_end.multi_items() == []


@pytest.mark.anyio
async def test_multipart_large_file_rolls_to_disk() -> None:
    payload = os.urandom(MultiPartParser.spool_max_size + 12345)
    body = multipart_body([part("f", payload, filename="big.bin"), part("after", b"ok")])
    form = await parse_multipart(body, chunk=50_000)
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    try:
        assert not upload._in_memory
        assert upload.size == len(payload)
        assert await upload.read() == payload
        assert form["after"] == "ok"
    finally:
        await form.close()
    assert upload.file.closed


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('form-data; name="f"; filename="naïve.txt"', "naïve.txt"),  # raw UTF-8 bytes
        ('form-data; name="f"; filename="文件.txt"', "文件.txt"),
        ("form-data; name=\"f\"; filename*=UTF-8''%E6%96%87%E4%BB%B6.txt", "文件.txt"),
        ("form-data; name=\"f\"; filename*=iso-8859-1'en'%A3%20rates.txt", "£ rates.txt"),
        (
            'form-data; name="f"; filename="fallback.txt"; filename*=UTF-8\'\'r%C3%A9el.txt',
            "réel.txt",
        ),
        # a malformed filename* falls back to filename
        ('form-data; name="f"; filename="plain.txt"; filename*=%C3%A9', "plain.txt"),
        ('form-data; name="f"; filename="a;b.txt"', "a;b.txt"),
        ('form-data; name="f"; filename=""', ""),
    ],
)
async def test_multipart_filenames(disposition: str, expected: str) -> None:
    raw = disposition.encode()
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b"Content-Disposition: "
        + raw
        + b"\r\n\r\ndata\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    form = await parse_multipart(body)
    try:
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        assert upload.filename == expected
    finally:
        await form.close()


@pytest.mark.anyio
async def test_multipart_non_ascii_field_name_and_charset() -> None:
    body = multipart_body([b'Content-Disposition: form-data; name="\xe9"\r\n\r\n\xe9t\xe9'])
    form = await parse_multipart(body, headers=mp_headers(extra="; charset=iso-8859-1"))
    assert form.multi_items() == [("é", "été")]
    # undecodable UTF-8 value falls back to latin-1 rather than failing
    body = multipart_body([b'Content-Disposition: form-data; name="x"\r\n\r\n\xff\xfe'])
    form = await parse_multipart(body)
    assert form["x"] == "ÿþ"


@pytest.mark.anyio
async def test_multipart_field_within_part_size_limit() -> None:
    body = multipart_body([part("a", b"x" * 100)])
    form = await parse_multipart(body, max_part_size=100)
    assert form["a"] == "x" * 100


@pytest.mark.anyio
async def test_multipart_part_limit_checked_before_buffering() -> None:
    body = multipart_body([part("a", b"x" * (4 * 1024 * 1024))])
    parser = MultiPartParser(mp_headers(), chunks(body, len(body)), max_part_size=1024)
    with pytest.raises(MultiPartException, match="Part exceeded maximum size of 1KB."):
        await parser.parse()
    assert len(parser._part.data) <= 1024


@pytest.mark.anyio
async def test_multipart_field_too_big_default_limit() -> None:
    big = b"x" * (1024 * 1024 + 1)
    body = multipart_body([part("f", b"file", filename="f.txt"), part("big", big)])
    parser = MultiPartParser(mp_headers(), chunks(body))
    with pytest.raises(MultiPartException) as info:
        await parser.parse()
    assert info.value.message == "Part exceeded maximum size of 1024KB."
    assert str(info.value) == info.value.message
    assert parser._files
    assert all(upload.file.closed for upload in parser._files)


@pytest.mark.anyio
async def test_multipart_file_parts_are_not_size_limited() -> None:
    body = multipart_body([part("f", b"y" * 200, filename="f.txt")])
    form = await parse_multipart(body, max_part_size=10)
    try:
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        assert upload.size == 200
    finally:
        await form.close()


@pytest.mark.anyio
async def test_multipart_too_many_files_closes_everything() -> None:
    payload = b"z" * (MultiPartParser.spool_max_size + 1)  # roll the first files to disk
    body = multipart_body([part(f"f{i}", payload, filename=f"{i}.bin") for i in range(3)])
    before = open_fds()
    parser = MultiPartParser(mp_headers(), chunks(body, 100_000), max_files=2)
    with pytest.raises(MultiPartException, match=r"^Too many files. Maximum number of files is 2."):
        await parser.parse()
    assert len(parser._files) == 2
    assert not any(upload._in_memory for upload in parser._files[:1])
    assert all(upload.file.closed for upload in parser._files)
    assert open_fds() <= before


@pytest.mark.anyio
async def test_multipart_too_many_fields() -> None:
    body = multipart_body(
        [part("f", b"file", filename="f.txt")] + [part(f"k{i}", b"v") for i in range(4)]
    )
    parser = MultiPartParser(mp_headers(), chunks(body), max_fields=3)
    with pytest.raises(MultiPartException, match="Too many fields. Maximum number of fields is 3."):
        await parser.parse()
    assert all(upload.file.closed for upload in parser._files)


@pytest.mark.anyio
async def test_multipart_limits_exactly_reached_are_fine() -> None:
    body = multipart_body(
        [
            part("a", b"1"),
            part("b", b"2"),
            part("f", b"x", filename="f"),
            part("g", b"y", filename="g"),
        ]
    )
    form = await parse_multipart(body, max_fields=2, max_files=2)
    assert len(form.multi_items()) == 4
    await form.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (Headers({"content-type": "multipart/form-data"}), "Missing boundary in multipart."),
        (Headers({"content-type": "multipart/form-data; boundary="}), "Missing boundary"),
        (Headers({"content-type": "text/plain; boundary=x"}), "Expected a multipart/form-data"),
        (Headers(), "Expected a multipart/form-data"),
        (
            Headers({"content-type": "multipart/form-data; boundary=" + "x" * 300}),
            "^Invalid multipart data.$",
        ),
    ],
)
async def test_multipart_bad_content_type(headers: Headers, message: str) -> None:
    with pytest.raises(MultiPartException, match=message):
        await MultiPartParser(headers, chunks(b"whatever")).parse()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            multipart_body([part(None, b"v", disposition="form-data")]),
            'The Content-Disposition header field "name" must be provided.',
        ),
        (
            multipart_body([b"Content-Type: text/plain\r\n\r\nv"]),
            "A multipart part has no Content-Disposition header.",
        ),
        (b"this is not multipart at all", "Invalid multipart data."),
        (
            f"--{BOUNDARY}\r\n".encode() + part("a", b"truncated"),
            "Incomplete multipart body: the closing boundary is missing.",
        ),
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n".encode()
            + b"X-Big: "
            + b"h" * 10_000
            + b"\r\n\r\nv\r\n"
            + f"--{BOUNDARY}--\r\n".encode(),
            "Invalid multipart data.",
        ),
    ],
)
async def test_multipart_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(MultiPartException) as info:
        await parse_multipart(body)
    assert message in info.value.message


@pytest.mark.anyio
async def test_multipart_truncated_file_is_closed() -> None:
    body = f"--{BOUNDARY}\r\n".encode() + part("f", b"data" * 1000, filename="f.bin")
    parser = MultiPartParser(mp_headers(), chunks(body, 512))
    with pytest.raises(MultiPartException, match="closing boundary is missing"):
        await parser.parse()
    assert len(parser._files) == 1
    assert parser._files[0].file.closed


class StreamBroke(Exception):
    pass


@pytest.mark.anyio
async def test_multipart_stream_error_closes_files_and_propagates() -> None:
    payload = b"q" * (MultiPartParser.spool_max_size + 10)
    body = multipart_body([part("f", payload, filename="f.bin")])

    async def broken() -> AsyncIterator[bytes]:
        yield body[: len(body) - 100]
        raise StreamBroke("client went away")

    before = open_fds()
    parser = MultiPartParser(mp_headers(), broken())
    with pytest.raises(StreamBroke):
        await parser.parse()
    assert parser._files[0].file.closed
    assert open_fds() <= before


@pytest.mark.anyio
async def test_multipart_many_small_chunks_with_crlf_boundaries() -> None:
    # values that look like partial boundaries must survive any chunking
    tricky = b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n\r"
    body = multipart_body([part("a", tricky), part("f", tricky, filename="t")])
    for size in (1, 2, 5, 13):
        form = await parse_multipart(body, chunk=size)
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        assert form["a"] == tricky.decode()
        assert await upload.read() == tricky
        await form.close()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["multipart", "urlencoded"])
async def test_abandoned_stream_is_closed_on_error(kind: str) -> None:
    closed = []

    async def stream() -> AsyncIterator[bytes]:
        try:
            if kind == "multipart":
                yield multipart_body([part("a", b"1"), part("b", b"2")])
            else:
                yield b"a=1&b=2"
            yield b"never consumed"
        finally:
            closed.append(True)

    parser: MultiPartParser | FormParser
    if kind == "multipart":
        parser = MultiPartParser(mp_headers(), stream(), max_fields=1)
    else:
        parser = FormParser(Headers(), stream(), max_fields=1)
    with pytest.raises(MultiPartException, match="Too many fields"):
        await parser.parse()
    assert closed == [True]


# ------------------------------------------------------------- through Request.form()


def test_request_form_end_to_end() -> None:
    from brillo.applications import Brillo
    from brillo.requests import Request
    from brillo.responses import JSONResponse
    from brillo.routing import Route
    from brillo.testclient import TestClient

    async def upload(request: Request) -> JSONResponse:
        async with request.form(max_part_size=64) as form:
            result: dict[str, object] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    result[key] = [
                        value.filename,
                        value.content_type,
                        (await value.read()).decode(),
                    ]
                else:
                    result[key] = value
        return JSONResponse(result)

    app = Brillo(routes=[Route("/", upload, methods=["POST"])])
    with TestClient(app) as client:
        response = client.post(
            "/",
            data={"name": "brillo ✓"},
            files={"doc": ("résumé.txt", b"hello", "text/plain")},
        )
        assert response.status_code == 200
        assert response.json() == {
            "name": "brillo ✓",
            "doc": ["résumé.txt", "text/plain", "hello"],
        }
        response = client.post("/", data={"a": "1", "b": "two words"})
        assert response.json() == {"a": "1", "b": "two words"}
        response = client.post(
            "/", data={"big": "x" * 100}, files={"doc": ("a.txt", b"1", "text/plain")}
        )
        assert response.status_code == 400
        assert response.text == "Part exceeded maximum size of 64 bytes."


# ------------------------------------------------------------------- messages, charset, deprecation


@pytest.mark.parametrize(
    ("limit", "text"), [(1024 * 1024, "1024KB"), (10 * 1024, "10KB"), (1500, "1500 bytes")]
)
@pytest.mark.anyio
async def test_size_limit_messages(limit: int, text: str) -> None:
    # Starlette's wording (the client sees it in the 400); a limit that is not whole KiB is
    # given in bytes rather than rounded down.
    with pytest.raises(MultiPartException) as info:
        await FormParser(Headers(), chunks(b"k=" + b"v" * (limit + 1)), max_part_size=limit).parse()
    assert info.value.message == f"Field exceeded maximum size of {text}."
    with pytest.raises(MultiPartException) as info:
        await FormParser(Headers(), chunks(b"k" * (limit + 1) + b"=v"), max_part_size=limit).parse()
    assert info.value.message == f"Field exceeded maximum size of {text}."
    body = multipart_body([part("big", b"x" * (limit + 1))])
    with pytest.raises(MultiPartException) as info:
        await parse_multipart(body, max_part_size=limit)
    assert info.value.message == f"Part exceeded maximum size of {text}."


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (mp_headers("b" * 257), multipart_body([part("a", b"1")], "b" * 257)),
        (
            mp_headers(),
            multipart_body(
                [b'Content-Disposition: form-data; name="a"\r\n' + b"X-H: v\r\n" * 20 + b"\r\nv"]
            ),
        ),
        (mp_headers(), b"garbage without any boundary"),
    ],
)
@pytest.mark.anyio
async def test_parser_rejections_say_invalid_multipart_data_and_keep_the_cause(
    headers: Headers, body: bytes
) -> None:
    with pytest.raises(MultiPartException) as info:
        await MultiPartParser(headers, chunks(body)).parse()
    assert info.value.message == "Invalid multipart data."
    # the parser's own explanation stays available to the server (logs, debugging)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("charset", ["no-such-charset", "base64", "rot13"])
@pytest.mark.anyio
async def test_unknown_or_non_text_charset_falls_back_to_utf8(charset: str) -> None:
    body = multipart_body([part("u", "żółw".encode()), part("l", b"\xe9t\xe9")])
    form = await parse_multipart(body, headers=mp_headers(extra=f"; charset={charset}"))
    assert form.multi_items() == [("u", "żółw"), ("l", "été")]  # then latin-1 for non-UTF-8


@pytest.mark.anyio
async def test_charset_is_resolved_once_per_body() -> None:
    searches: list[str] = []

    def search(name: str) -> None:
        if name.startswith("brillo_probe"):
            searches.append(name)
        return None

    body = multipart_body([part(f"f{i}", b"v") for i in range(5)])
    codecs.register(search)
    try:
        form = await parse_multipart(body, headers=mp_headers(extra="; charset=brillo_probe"))
    finally:
        codecs.unregister(search)
    assert len(form) == 5
    assert searches == ["brillo_probe"]


def test_form_message_is_deprecated() -> None:
    assert StarletteDeprecationWarning is BrilloDeprecationWarning
    with pytest.warns(BrilloDeprecationWarning, match="`FormMessage` is deprecated"):
        assert FormMessage(1) is FormMessage.FIELD_START
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [m.value for m in FormMessage] == [1, 2, 3, 4, 5]  # importing/listing is quiet
