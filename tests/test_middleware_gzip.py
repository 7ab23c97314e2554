from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest

from _mw_helpers import call_http, call_ws, hello_app, http_scope, ws_scope
from brillo.middleware.gzip import GZipMiddleware

BIG = b"x" * 1000 + b"hello world " * 100


def body_app(
    body: bytes, *, headers: list[tuple[bytes, bytes]] | None = None, status: int = 200
) -> Any:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        hdrs = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send(
            {"type": "http.response.start", "status": status, "headers": hdrs + (headers or [])}
        )
        await send({"type": "http.response.body", "body": body})

    return app


def streaming_app(chunks: list[bytes], media_type: bytes = b"text/plain") -> Any:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", media_type)],
            }
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


GZ = [("accept-encoding", "gzip, deflate, br")]


@pytest.mark.anyio
async def test_compresses_large_body() -> None:
    result = await call_http(GZipMiddleware(body_app(BIG)), http_scope(headers=GZ))
    assert result.header("content-encoding") == "gzip"
    assert result.header("vary") == "Accept-Encoding"
    assert int(result.header("content-length") or 0) == len(result.body) < len(BIG)
    assert gzip.decompress(result.body) == BIG


@pytest.mark.anyio
async def test_small_body_not_compressed_but_varies() -> None:
    result = await call_http(GZipMiddleware(hello_app), http_scope(headers=GZ))
    assert result.body == b"hello"
    assert result.header("content-encoding") is None
    assert result.header("vary") == "Accept-Encoding"


@pytest.mark.anyio
async def test_minimum_size_and_level() -> None:
    app = GZipMiddleware(hello_app, minimum_size=1, compresslevel=1)
    result = await call_http(app, http_scope(headers=GZ))
    assert gzip.decompress(result.body) == b"hello"


@pytest.mark.anyio
@pytest.mark.parametrize("accept", [None, "identity", "br", "gzip;q=0", "deflate, gzip; q=0"])
async def test_not_accepted(accept: str | None) -> None:
    headers = [] if accept is None else [("accept-encoding", accept)]
    result = await call_http(GZipMiddleware(body_app(BIG)), http_scope(headers=headers))
    assert result.body == BIG
    assert result.header("content-encoding") is None
    assert result.header("vary") == "Accept-Encoding"


@pytest.mark.anyio
@pytest.mark.parametrize("accept", ["GZIP", "gzip;q=0.5", "*"])
async def test_accepted_variants(accept: str) -> None:
    result = await call_http(
        GZipMiddleware(body_app(BIG)), http_scope(headers=[("accept-encoding", accept)])
    )
    assert gzip.decompress(result.body) == BIG


@pytest.mark.anyio
async def test_already_encoded_untouched() -> None:
    app = GZipMiddleware(body_app(BIG, headers=[(b"content-encoding", b"br")]))
    result = await call_http(app, http_scope(headers=GZ))
    assert result.body == BIG
    assert result.headers_list("content-encoding") == ["br"]
    assert result.header("vary") is None


@pytest.mark.anyio
async def test_event_stream_not_compressed() -> None:
    app = GZipMiddleware(streaming_app([b"data: 1\n\n" * 100], b"text/event-stream; charset=utf-8"))
    result = await call_http(app, http_scope(headers=GZ))
    assert result.header("content-encoding") is None
    assert result.body == b"data: 1\n\n" * 100


@pytest.mark.anyio
async def test_excluded_prefix_and_206() -> None:
    app = GZipMiddleware(body_app(BIG, headers=[(b"content-type", b"image/png")]))
    assert (await call_http(app, http_scope(headers=GZ))).body == BIG
    app = GZipMiddleware(body_app(BIG, status=206))
    assert (await call_http(app, http_scope(headers=GZ))).body == BIG
    app = GZipMiddleware(body_app(BIG), exclude_content_types=["text/*"])
    assert (await call_http(app, http_scope(headers=GZ))).body == BIG


@pytest.mark.anyio
async def test_grpc_not_compressed_by_default() -> None:
    app = GZipMiddleware(body_app(BIG, headers=[(b"content-type", b"application/grpc")]))
    assert (await call_http(app, http_scope(headers=GZ))).body == BIG


def test_exclude_content_types_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        GZipMiddleware(body_app(BIG), 500, 9, 1024, ["text/*"])  # type: ignore[misc]


@pytest.mark.anyio
async def test_streaming_compressed_per_chunk() -> None:
    chunks = [b"chunk-%d " % i * 50 for i in range(5)]
    result = await call_http(GZipMiddleware(streaming_app(chunks)), http_scope(headers=GZ))
    assert result.header("content-encoding") == "gzip"
    assert result.header("content-length") is None
    # Every chunk is flushed when it is sent: decompressing the output message by message
    # yields each input chunk as soon as its message arrives.
    decoder = zlib.decompressobj(31)
    out = [decoder.decompress(c) for c in result.body_chunks]
    assert out[: len(chunks)] == chunks
    assert b"".join(out) + decoder.flush() == b"".join(chunks)
    assert decoder.eof


@pytest.mark.anyio
async def test_streaming_small_first_chunk_still_compressed() -> None:
    result = await call_http(GZipMiddleware(streaming_app([b"a", b"b"])), http_scope(headers=GZ))
    assert gzip.decompress(result.body) == b"ab"


@pytest.mark.anyio
async def test_websocket_passes_through() -> None:
    sent = await call_ws(GZipMiddleware(hello_app), ws_scope(headers=GZ))
    assert sent[1] == {"type": "websocket.send", "text": "hello"}


def test_bad_level() -> None:
    with pytest.raises(ValueError, match="compresslevel"):
        GZipMiddleware(hello_app, compresslevel=10)


@pytest.mark.anyio
async def test_large_chunks_compressed_in_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import brillo.middleware.gzip as gzip_module

    threads: list[str] = []
    real = gzip_module._compress

    def spy(compressor: Any, body: bytes, final: bool) -> bytes:
        threads.append(threading.current_thread().name)
        return real(compressor, body, final)

    monkeypatch.setattr(gzip_module, "_compress", spy)
    loop_thread = threading.current_thread().name
    chunks = [b"a" * 2000, b"b" * 10, b"c" * 3000]
    app = GZipMiddleware(streaming_app(chunks), thread_minimum_size=1000)
    result = await call_http(app, http_scope(headers=GZ))
    assert gzip.decompress(result.body) == b"".join(chunks)
    assert threads[0] != loop_thread
    assert threads[1] == loop_thread
    assert threads[2] != loop_thread
