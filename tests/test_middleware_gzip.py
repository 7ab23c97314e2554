from __future__ import annotations

import gzip
import zlib
from typing import Any

import anyio
import pytest

from brillo.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipMiddleware,
    GZipResponder,
    IdentityResponder,
)
from brillo.types import Message, Receive, Scope, Send
from tests.support.asgi import call_http, call_ws, hello_app, http_scope, ws_scope

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


@pytest.mark.parametrize("headers", [GZ, [], [("accept-encoding", "identity")]])
@pytest.mark.anyio
async def test_small_body_neither_compressed_nor_varied(headers: list[tuple[str, str]]) -> None:
    # Too small to compress for anyone: the response does not depend on Accept-Encoding, so
    # no Vary (which would split caches for nothing).
    result = await call_http(GZipMiddleware(hello_app), http_scope(headers=headers))
    assert result.body == b"hello"
    assert result.header("content-encoding") is None
    assert result.header("vary") is None
    assert result.header("content-length") == "5"


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
        GZipMiddleware(body_app(BIG), 500, 9, 1024, ["text/*"])  # type: ignore[call-arg]


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


def start_app(
    headers: list[tuple[bytes, bytes]], messages: list[Message], *, trailers: bool = False
) -> Any:
    """An app sending a start with ``headers`` (and ``trailers``), then ``messages``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {"type": "http.response.start", "status": 200, "headers": headers}
        if trailers:
            start["trailers"] = True
        await send(start)
        for message in messages:
            await send(message)

    return app


def body(data: bytes, more_body: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more_body}


@pytest.mark.parametrize(
    "content_type",
    [b"application/grpc", b"application/grpc+proto", b"Application/GRPC+json; x=1", b"video/mp4"],
)
@pytest.mark.anyio
async def test_grpc_flavours_and_wildcards_excluded_by_default(content_type: bytes) -> None:
    app = GZipMiddleware(start_app([(b"content-type", content_type)], [body(BIG)]))
    result = await call_http(app, http_scope(headers=GZ))
    assert result.body == BIG
    assert result.header("content-encoding") is None
    assert result.header("vary") is None


@pytest.mark.parametrize("content_type", [b"image/svg+xml", b"application/grpc-web-text"])
@pytest.mark.anyio
async def test_plus_suffix_rule_does_not_catch_other_types(content_type: bytes) -> None:
    # image/svg is not excluded (so image/svg+xml is compressed), and application/grpc only
    # covers application/grpc+..., not other names that merely start the same way
    app = GZipMiddleware(start_app([(b"content-type", content_type)], [body(BIG)]))
    result = await call_http(app, http_scope(headers=GZ))
    assert result.header("content-encoding") == "gzip"
    assert gzip.decompress(result.body) == BIG


@pytest.mark.parametrize(
    "configured", ["Application/ZIP; charset=utf-8", "  application/zip  ", "APPLICATION/*"]
)
@pytest.mark.anyio
async def test_configured_exclusions_are_normalised(configured: str) -> None:
    app = GZipMiddleware(
        start_app([(b"content-type", b"application/zip")], [body(BIG)]),
        exclude_content_types=(configured,),
    )
    result = await call_http(app, http_scope(headers=GZ))
    assert result.header("content-encoding") is None
    assert result.body == BIG


@pytest.mark.anyio
async def test_replacing_exclusions_after_construction_takes_effect() -> None:
    app = GZipMiddleware(start_app([(b"content-type", b"application/zip")], [body(BIG)]))
    assert (await call_http(app, http_scope(headers=GZ))).header("content-encoding") is None
    app.exclude_content_types = ()
    assert (await call_http(app, http_scope(headers=GZ))).header("content-encoding") == "gzip"


@pytest.mark.anyio
async def test_default_exclusions_are_extendable() -> None:
    types = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/x-custom")
    for content_type in (b"application/x-custom", b"image/png"):
        app = GZipMiddleware(
            start_app([(b"content-type", content_type)], [body(BIG)]), exclude_content_types=types
        )
        assert (await call_http(app, http_scope(headers=GZ))).header("content-encoding") is None


@pytest.mark.parametrize("accept", ["gzip", "identity"])
@pytest.mark.anyio
async def test_several_vary_headers_keep_their_order(accept: str) -> None:
    headers = [
        (b"vary", b"Accept-Language"),
        (b"content-type", b"text/plain"),
        (b"vary", b"Cookie"),
    ]
    app = GZipMiddleware(start_app(headers, [body(BIG)]))
    result = await call_http(app, http_scope(headers=[("accept-encoding", accept)]))
    assert ", ".join(result.headers_list("vary")) == "Accept-Language, Cookie, Accept-Encoding"


@pytest.mark.anyio
async def test_vary_already_listing_accept_encoding_is_not_repeated() -> None:
    app = GZipMiddleware(start_app([(b"vary", b"accept-encoding, Origin")], [body(BIG)]))
    result = await call_http(app, http_scope(headers=GZ))
    assert result.headers_list("vary") == ["accept-encoding, Origin"]


@pytest.mark.parametrize("messages", [[body(BIG)], [body(b"x", True), body(b"")]])
@pytest.mark.anyio
async def test_identity_client_gets_vary_when_a_gzip_client_would_get_gzip(
    messages: list[Message],
) -> None:
    app = GZipMiddleware(start_app([(b"content-type", b"text/plain")], messages))
    result = await call_http(app, http_scope(headers=[("accept-encoding", "identity")]))
    assert result.header("content-encoding") is None
    assert result.header("vary") == "Accept-Encoding"


@pytest.mark.parametrize("accept", ["gzip", "identity"])
@pytest.mark.anyio
async def test_excluded_response_start_is_not_held_back(accept: str) -> None:
    # A response that is never compressed is passed on at once: its start must reach the
    # server before the app produces the first body chunk (server-sent events, long polls).
    sent: list[str] = []
    start_seen = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await start_seen.wait()
        await send(body(b"data: 1\n\n"))

    async def send(message: Message) -> None:
        sent.append(message["type"])
        start_seen.set()

    async def receive() -> Message:
        raise AssertionError("not used")

    with anyio.fail_after(5):
        await GZipMiddleware(app)(http_scope(headers=[("accept-encoding", accept)]), receive, send)
    assert sent == ["http.response.start", "http.response.body"]


TRAILERS: Message = {"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]}


@pytest.mark.parametrize("accept", ["gzip", "identity"])
@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.anyio
async def test_trailers_pass_through(accept: str, streamed: bool) -> None:
    messages = [body(BIG, True), body(b"")] if streamed else [body(BIG)]
    app = GZipMiddleware(start_app([], [*messages, TRAILERS], trailers=True))
    result = await call_http(app, http_scope(headers=[("accept-encoding", accept)]))
    assert result.messages[-1] == TRAILERS
    # trailers need a chunked body: no content-length, not even for one compressed message
    assert result.header("content-length") is None
    data = gzip.decompress(result.body) if accept == "gzip" else result.body
    assert data == BIG
    assert result.header("content-encoding") == ("gzip" if accept == "gzip" else None)


@pytest.mark.anyio
async def test_trailers_of_an_excluded_type_pass_through() -> None:
    headers = [(b"content-type", b"application/grpc")]
    app = GZipMiddleware(start_app(headers, [body(BIG), TRAILERS], trailers=True))
    result = await call_http(app, http_scope(headers=GZ))
    assert result.body == BIG
    assert result.messages[-1] == TRAILERS
    assert result.header("content-encoding") is None


@pytest.mark.anyio
async def test_pathsend_after_a_held_start_goes_out_unchanged() -> None:
    pathsend: Message = {"type": "http.response.pathsend", "path": "/srv/file.txt"}
    app = GZipMiddleware(start_app([(b"content-type", b"text/plain")], [pathsend]))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("not used")

    await app(http_scope(headers=GZ), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[0]["headers"] == [(b"content-type", b"text/plain")]


@pytest.mark.anyio
async def test_gzip_responder_is_a_reusable_asgi_app() -> None:
    responder = GZipResponder(
        start_app([(b"content-type", b"application/zip")], [body(BIG)]),
        500,
        exclude_content_types=("Application/ZIP; charset=utf-8",),
    )
    assert responder.content_encoding == "gzip"
    for _ in range(2):  # no Accept-Encoding check: the middleware chose the responder
        result = await call_http(responder, http_scope())
        assert result.header("content-encoding") is None
        assert result.body == BIG
    compressing = GZipResponder(start_app([], [body(BIG)]), 500, 1, thread_minimum_size=10)
    async with anyio.create_task_group() as tg:  # one instance, concurrent requests
        results: list[bytes] = []

        async def one() -> None:
            results.append((await call_http(compressing, http_scope())).body)

        for _ in range(3):
            tg.start_soon(one)
    assert [gzip.decompress(r) for r in results] == [BIG] * 3


@pytest.mark.anyio
async def test_identity_responder_leaves_the_body_alone() -> None:
    responder = IdentityResponder(start_app([], [body(BIG)]), 500)
    assert isinstance(GZipResponder(hello_app, 1), IdentityResponder)
    result = await call_http(responder, http_scope(headers=GZ))
    assert result.body == BIG
    assert result.header("content-encoding") is None
    assert result.header("vary") == "Accept-Encoding"


def test_responder_signatures_and_level_check() -> None:
    with pytest.raises(TypeError):
        GZipResponder(hello_app, 500, 9, 1024)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        IdentityResponder(hello_app, 500, ())  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="compresslevel"):
        GZipResponder(hello_app, 500, compresslevel=-1)


@pytest.mark.anyio
async def test_subclass_that_skips_init_still_works() -> None:
    class Custom(GZipMiddleware):
        def __init__(self, app: Any) -> None:
            self.app = app  # no super().__init__(): the defaults and exclusions still apply

    result = await call_http(Custom(body_app(BIG)), http_scope(headers=GZ))
    assert gzip.decompress(result.body) == BIG
    png = Custom(start_app([(b"content-type", b"image/png")], [body(BIG)]))
    assert (await call_http(png, http_scope(headers=GZ))).header("content-encoding") is None
