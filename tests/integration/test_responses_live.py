"""Responses and static files over the wire, under real uvicorn on 127.0.0.1."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest

from brillo.applications import Brillo
from brillo.background import BackgroundTask
from brillo.requests import Request
from brillo.responses import FileResponse, Response, StreamingResponse
from brillo.routing import Mount, Route
from brillo.staticfiles import StaticFiles
from brillo.testing import LiveServer

LiveServerFactory = Callable[..., LiveServer]

CONTENT = bytes(range(256)) * 40  # 10 KiB, every byte value


def raw_request(server: LiveServer, target: str) -> bytes:
    """Send a request line verbatim (no client-side path normalisation) and read the reply."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_streaming_response_stops_when_the_client_disconnects(
    live_server: LiveServerFactory,
) -> None:
    finished = threading.Event()
    sent_first = threading.Event()

    async def endless() -> AsyncIterator[bytes]:
        never = anyio.Event()
        try:
            yield b"first chunk"
            sent_first.set()
            await never.wait()
            yield b"unreachable"
        finally:
            finished.set()

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(endless(), media_type="text/plain")

    server = live_server(Brillo(routes=[Route("/stream", stream)]))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"first chunk" not in received:
            chunk = sock.recv(4096)
            assert chunk, "server closed before sending the first chunk"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        assert sent_first.wait(10)
    # the client is gone: the server must notice and finish the generator
    assert finished.wait(10), "streaming response kept running after the client disconnected"


class _CountingFile(io.FileIO):
    """A real file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data) if data else 0
        return data or b""


@pytest.mark.parametrize("server_name", ["uvicorn", "hypercorn"])
def test_aborted_download_stops_reading_the_file(
    live_server: LiveServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_name: str,
) -> None:
    size = 256 * 1024 * 1024  # far beyond what socket buffers can swallow
    path = tmp_path / "huge.bin"
    with path.open("wb") as f:
        f.truncate(size)  # sparse: costs no disk
    opened: list[_CountingFile] = []

    async def counting_open_file(file: Any, mode: str = "r", **kw: Any) -> anyio.AsyncFile[Any]:
        raw = _CountingFile(file, "rb")
        opened.append(raw)
        return anyio.AsyncFile(raw)

    # The servers run in this process (a thread): FileResponse opens through this hook.
    monkeypatch.setattr(anyio, "open_file", counting_open_file)
    finished = threading.Event()

    async def download(request: Request) -> FileResponse:
        return FileResponse(path, background=BackgroundTask(finished.set))

    server = live_server(Brillo(routes=[Route("/huge", download)]), server=server_name)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n")
        received = 0
        while received < 256 * 1024:
            chunk = sock.recv(65536)
            assert chunk, "server closed before sending the first bytes"
            received += len(chunk)
        # unread data in the receive buffer: closing now resets the connection
    # The response ends (and runs its background task) once the server notices the client left
    assert finished.wait(30), "the response never finished after the client went away"
    assert len(opened) == 1
    assert opened[0].closed
    assert opened[0].bytes_read < size // 4, f"read {opened[0].bytes_read} of {size} bytes"


def test_file_ranges_over_the_wire(live_server: LiveServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(CONTENT)

    async def download(request: Request) -> FileResponse:
        return FileResponse(path, filename="blob ü.bin")

    server = live_server(Brillo(routes=[Route("/f", download, methods=["GET", "HEAD"])]))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        whole = client.get("/f")
        assert whole.status_code == 200
        assert whole.content == CONTENT
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-disposition"] == (
            "attachment; filename*=utf-8''blob%20%C3%BC.bin"
        )

        single = client.get("/f", headers={"Range": "bytes=1000-1999"})
        assert single.status_code == 206
        assert single.headers["content-range"] == f"bytes 1000-1999/{len(CONTENT)}"
        assert single.content == CONTENT[1000:2000]

        multi = client.get("/f", headers={"Range": "bytes=0-9, -10"})
        assert multi.status_code == 206
        assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
        assert int(multi.headers["content-length"]) == len(multi.content)
        assert CONTENT[:10] in multi.content
        assert CONTENT[-10:] in multi.content

        bad = client.get("/f", headers={"Range": f"bytes={len(CONTENT)}-"})
        assert bad.status_code == 416
        assert bad.headers["content-range"] == f"bytes */{len(CONTENT)}"

        head = client.head("/f")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(CONTENT))
        assert head.content == b""

        etag = whole.headers["etag"]
        conditional = client.get("/f", headers={"Range": "bytes=0-0", "If-Range": etag})
        assert conditional.status_code == 206
        assert conditional.content == CONTENT[:1]


def test_static_files_mounted_in_an_app(live_server: LiveServerFactory, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.css").write_text("body{color:red}")
    (site / "index.html").write_text("<h1>index</h1>")
    (tmp_path / "secret.txt").write_text("top secret")

    async def home(request: Request) -> Response:
        return Response("home")

    app = Brillo(
        routes=[
            Route("/", home),
            Mount("/static", StaticFiles(directory=site, html=True), name="static"),
        ]
    )
    server = live_server(app)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        css = client.get("/static/app.css")
        assert css.status_code == 200
        assert css.text == "body{color:red}"
        assert css.headers["content-type"] == "text/css; charset=utf-8"

        cached = client.get("/static/app.css", headers={"If-None-Match": css.headers["etag"]})
        assert cached.status_code == 304
        assert cached.content == b""

        assert client.get("/static/missing.js").status_code == 404
        assert client.post("/static/app.css").status_code == 405
        assert client.get("/static/").text == "<h1>index</h1>"
        redirect = client.get("/static", follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"].endswith("/static/")

    # traversal straight down the wire, bypassing any client-side normalisation
    for target in (
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
    ):
        reply = raw_request(server, target)
        assert b"top secret" not in reply, target
        assert reply.startswith(b"HTTP/1.1 404"), (target, reply[:60])


@pytest.mark.parametrize("server_name", ["uvicorn", "hypercorn"])
def test_plain_responses_on_both_servers(live_server: LiveServerFactory, server_name: str) -> None:
    async def hello(request: Request) -> Response:
        response = Response("hello", media_type="text/plain")
        response.set_cookie("c", "v", httponly=True, partitioned=True, secure=True)
        return response

    server = live_server(Brillo(routes=[Route("/", hello)]), server=server_name)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get("/")
    assert response.text == "hello"
    assert response.headers["content-length"] == "5"
    assert "Partitioned" in response.headers["set-cookie"]


def test_websocket_denial_response_over_the_wire(live_server: LiveServerFactory) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from brillo.responses import PlainTextResponse
    from brillo.routing import WebSocketRoute
    from brillo.websockets import WebSocket

    async def deny(websocket: WebSocket) -> None:
        await websocket.send_denial_response(
            PlainTextResponse("members only", status_code=403, headers={"x-why": "auth"})
        )

    server = live_server(Brillo(routes=[WebSocketRoute("/ws", deny)]))
    with pytest.raises(InvalidStatus) as info, connect(server.ws_url + "/ws", open_timeout=10):
        pass
    response = info.value.response
    assert response.status_code == 403
    assert response.headers["x-why"] == "auth"
    assert response.body == b"members only"
