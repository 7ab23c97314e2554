"""Unit tests for brillo.requests: HTTPConnection and Request over hand-written ASGI callables."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from brillo.datastructures import URL, Address, FormData, Headers, QueryParams, State, UploadFile
from brillo.exceptions import HTTPException
from brillo.requests import ClientDisconnect, HTTPConnection, Request, cookie_parser
from brillo.types import Message, Scope
from brillo.websockets import WebSocket
from tests.support import asgi


def http_scope(**extra: Any) -> Scope:
    scope = asgi.http_scope(
        "/items/1",
        headers=[("user-agent", "tests")],
        query=b"a=1&a=2&b=x%20y",
        host="example.org:8000",
        server=("example.org", 8000),
        client=("10.0.0.1", 4321),
    )
    scope.update(extra)
    return scope


def with_headers(*pairs: tuple[bytes, bytes], **extra: Any) -> Scope:
    return http_scope(headers=[(b"host", b"example.org:8000"), *pairs], **extra)


class Body:
    """A scripted ``receive``: yields the given messages, then fails loudly (never hangs)."""

    def __init__(self, *messages: Message) -> None:
        self.messages: deque[Message] = deque(messages)

    async def __call__(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if not self.messages:
            raise AssertionError("the request received more messages than the test scripted")
        return self.messages.popleft()


def chunks(*parts: bytes) -> Body:
    return Body(
        *(
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        )
    )


# -- HTTPConnection --------------------------------------------------------------------------------


def test_connection_is_a_mapping_over_the_scope() -> None:
    scope = http_scope()
    conn = HTTPConnection(scope)
    assert conn["path"] == "/items/1"
    assert len(conn) == len(scope)
    assert list(conn) == list(scope)
    assert dict(conn) == scope
    other = HTTPConnection(scope)
    assert conn != other  # identity, not scope equality
    assert conn == conn
    assert len({conn, other}) == 2


def test_connection_rejects_other_scope_types() -> None:
    with pytest.raises(AssertionError):
        HTTPConnection({"type": "lifespan"})


def test_generic_over_state_type() -> None:
    conn: HTTPConnection[State] = HTTPConnection[State](http_scope())
    assert isinstance(conn.state, State)
    request: Request[State] = Request[State](http_scope())
    assert request.method == "GET"


def test_url_and_parts() -> None:
    conn = HTTPConnection(http_scope())
    assert isinstance(conn.url, URL)
    assert str(conn.url) == "http://example.org:8000/items/1?a=1&a=2&b=x%20y"
    assert conn.url is conn.url  # cached
    assert conn.url.path == "/items/1"


def test_base_url_honours_root_path() -> None:
    conn = HTTPConnection(http_scope(root_path="/api", path="/api/items/1"))
    assert str(conn.base_url) == "http://example.org:8000/api/"
    assert str(conn.url) == "http://example.org:8000/api/items/1?a=1&a=2&b=x%20y"
    assert str(HTTPConnection(http_scope()).base_url) == "http://example.org:8000/"
    mounted = HTTPConnection(http_scope(root_path="/api/sub", app_root_path="/api"))
    assert str(mounted.base_url) == "http://example.org:8000/api/"


def test_websocket_url() -> None:
    async def nothing() -> Message:
        raise AssertionError

    async def drop(message: Message) -> None:
        raise AssertionError

    scope = http_scope(type="websocket", scheme="wss", server=("example.org", 443))
    ws = WebSocket(scope, nothing, drop)
    assert str(ws.url) == "wss://example.org:8000/items/1?a=1&a=2&b=x%20y"


def test_headers_and_query_params() -> None:
    conn = HTTPConnection(http_scope())
    assert isinstance(conn.headers, Headers)
    assert conn.headers["User-Agent"] == "tests"
    assert conn.headers is conn.headers
    assert isinstance(conn.query_params, QueryParams)
    assert conn.query_params.getlist("a") == ["1", "2"]
    assert conn.query_params["b"] == "x y"
    assert conn.query_params is conn.query_params


def test_path_params() -> None:
    assert HTTPConnection(http_scope()).path_params == {}
    assert HTTPConnection(http_scope(path_params={"id": 1})).path_params == {"id": 1}


def test_client() -> None:
    client = HTTPConnection(http_scope()).client
    assert client == Address("10.0.0.1", 4321)
    assert client is not None
    assert (client.host, client.port) == ("10.0.0.1", 4321)
    assert HTTPConnection(http_scope(client=None)).client is None
    no_client = http_scope()
    del no_client["client"]
    assert HTTPConnection(no_client).client is None


def test_cookies() -> None:
    conn = HTTPConnection(with_headers((b"cookie", b"session=abc; theme=dark")))
    assert conn.cookies == {"session": "abc", "theme": "dark"}
    assert conn.cookies is conn.cookies
    assert HTTPConnection(http_scope()).cookies == {}


def test_cookies_from_several_cookie_headers_are_merged() -> None:
    # HTTP/2 and HTTP/3 clients may split the Cookie header into one field per cookie.
    conn = HTTPConnection(
        with_headers((b"cookie", b"a=1; b=2"), (b"cookie", b"c=3"), (b"cookie", b"a=4"))
    )
    assert conn.cookies == {"a": "4", "b": "2", "c": "3"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("  a = 1 ;b=2;", {"a": "1", "b": "2"}),
        ("a=1; a=2", {"a": "2"}),
        ("a==b=c", {"a": "=b=c"}),
        ("flag", {"": "flag"}),
        ("=value", {"": "value"}),
        ("a=", {"a": ""}),
        (";;; ;", {}),
        ('q="quoted value"', {"q": "quoted value"}),
        ('q="a\\"b\\\\c"', {"q": 'a"b\\c'}),
        ('q="\\054x"', {"q": ",x"}),
        ('q="unterminated', {"q": '"unterminated'}),
        ('q="', {"q": '"'}),
        ("emoji=☃; x=y", {"emoji": "☃", "x": "y"}),
        ("a=1, b=2", {"a": "1, b=2"}),
    ],
)
def test_cookie_parser_tolerates_what_browsers_send(header: str, expected: dict[str, str]) -> None:
    assert cookie_parser(header) == expected


def test_session_auth_user_need_middleware() -> None:
    conn = HTTPConnection(http_scope())
    with pytest.raises(AssertionError, match="SessionMiddleware must be installed"):
        _ = conn.session
    with pytest.raises(AssertionError, match="AuthenticationMiddleware must be installed"):
        _ = conn.auth
    with pytest.raises(AssertionError, match="AuthenticationMiddleware must be installed"):
        _ = conn.user
    ready = HTTPConnection(http_scope(session={"k": "v"}, auth="creds", user="alice"))
    assert ready.session == {"k": "v"}
    assert ready.auth == "creds"
    assert ready.user == "alice"


def test_state_is_seeded_from_scope_and_shared_with_it() -> None:
    scope = http_scope(state={"db": "pool"})
    conn = HTTPConnection(scope)
    assert conn.state.db == "pool"
    conn.state.user_id = 7
    assert scope["state"] == {"db": "pool", "user_id": 7}
    assert conn.state is conn.state
    assert HTTPConnection(scope).state.user_id == 7  # a later connection object sees it
    with pytest.raises(AttributeError, match="missing"):
        _ = conn.state.missing


def test_state_created_when_scope_has_none() -> None:
    scope = http_scope()
    conn = HTTPConnection(scope)
    conn.state.x = 1
    assert scope["state"] == {"x": 1}


def test_app() -> None:
    marker = object()
    assert HTTPConnection(http_scope(app=marker)).app is marker
    with pytest.raises(KeyError):
        _ = HTTPConnection(http_scope()).app


class _Routes:
    """The part of the router that url_for uses: ``url_path_for(name, **params)``."""

    def url_path_for(self, name: str, /, **params: Any) -> Any:
        from brillo.datastructures import URLPath

        if name == "item":
            return URLPath(f"/items/{params['id']}", protocol="http")
        if name == "feed":
            return URLPath("/feed", protocol="websocket")
        raise LookupError(name)


def test_url_for_uses_router_and_base_url() -> None:
    conn = HTTPConnection(http_scope(router=_Routes(), root_path="/api"))
    assert str(conn.url_for("item", id=3)) == "http://example.org:8000/api/items/3"
    assert str(conn.url_for("feed")) == "ws://example.org:8000/api/feed"
    secure = HTTPConnection(http_scope(router=_Routes(), scheme="https"))
    assert str(secure.url_for("feed")) == "wss://example.org:8000/feed"


def test_url_for_falls_back_to_app() -> None:
    conn = HTTPConnection(http_scope(app=_Routes()))
    assert str(conn.url_for("item", id=5)) == "http://example.org:8000/items/5"


def test_url_for_name_is_positional_only() -> None:
    conn = HTTPConnection(http_scope(router=_Routes()))
    with pytest.raises(TypeError):
        conn.url_for(name="item", id=1)  # type: ignore[call-arg]


def test_url_for_outside_an_app() -> None:
    with pytest.raises(RuntimeError, match="`url_for` method can only be used inside") as info:
        HTTPConnection(http_scope()).url_for("item")
    assert 'scope["router"]' in str(info.value)


# -- Request ---------------------------------------------------------------------------------------


def test_request_requires_http_scope() -> None:
    with pytest.raises(AssertionError):
        Request(http_scope(type="websocket"))


def test_request_basics() -> None:
    receive = Body()
    request = Request(http_scope(method="PATCH"), receive)
    assert request.method == "PATCH"
    assert request.receive is receive
    assert isinstance(request, HTTPConnection)


@pytest.mark.anyio
async def test_request_without_receive_or_send() -> None:
    request = Request(http_scope())
    with pytest.raises(RuntimeError, match="Receive channel has not been made available"):
        await request.body()
    pushable = Request(http_scope(extensions={"http.response.push": {}}))
    with pytest.raises(RuntimeError, match="Send channel has not been made available"):
        await pushable.send_push_promise("/style.css")


@pytest.mark.anyio
async def test_body_across_chunks_is_cached() -> None:
    request = Request(http_scope(method="POST"), chunks(b"hel", b"", b"lo"))
    assert await request.body() == b"hello"
    assert await request.body() == b"hello"  # no second read (the Body would fail)
    assert [c async for c in request.stream()] == [b"hello", b""]


@pytest.mark.anyio
async def test_stream_yields_chunks_then_empty() -> None:
    request = Request(http_scope(method="POST"), chunks(b"a", b"b"))
    assert [c async for c in request.stream()] == [b"a", b"b", b""]
    with pytest.raises(RuntimeError, match="Stream consumed"):
        async for _ in request.stream():
            pass
    with pytest.raises(RuntimeError, match="Stream consumed"):
        await request.body()


@pytest.mark.anyio
async def test_request_without_body() -> None:
    request = Request(http_scope(), Body({"type": "http.request"}))
    assert await request.body() == b""


@pytest.mark.anyio
async def test_client_disconnect_while_reading() -> None:
    receive = Body(
        {"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}
    )
    request = Request(http_scope(method="POST"), receive)
    with pytest.raises(ClientDisconnect):
        await request.body()
    assert await request.is_disconnected()


@pytest.mark.anyio
async def test_json() -> None:
    request = Request(http_scope(method="POST"), chunks(b'{"a": [1, "', "é".encode(), b'"]}'))
    assert await request.json() == {"a": [1, "é"]}
    assert await request.json() == {"a": [1, "é"]}
    bad = Request(http_scope(method="POST"), chunks(b"{nope"))
    with pytest.raises(json.JSONDecodeError):
        await bad.json()


@pytest.mark.anyio
async def test_is_disconnected_never_waits() -> None:
    waited = anyio.Event()

    async def quiet_receive() -> Message:
        waited.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    request = Request(http_scope(), quiet_receive)
    with anyio.fail_after(5):
        assert await request.is_disconnected() is False
    assert waited.is_set()
    ready = Request(http_scope(), _immediate({"type": "http.disconnect"}))
    assert await ready.is_disconnected() is True
    assert await ready.is_disconnected() is True  # remembered; no second receive
    body_message = Request(http_scope(), _immediate({"type": "http.request", "body": b"x"}))
    assert await body_message.is_disconnected() is False


def _immediate(message: Message) -> Any:
    """A receive that returns without a checkpoint, as a server with a queued message does."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        assert not sent, "received twice"
        sent = True
        return message

    return receive


# -- forms -----------------------------------------------------------------------------------------


def form_request(content_type: bytes, body: bytes, **extra: Any) -> Request:
    scope = with_headers(
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        method="POST",
        **extra,
    )
    return Request(scope, chunks(body))


MULTIPART = (
    b"--BOUNDARY\r\n"
    b'Content-Disposition: form-data; name="title"\r\n\r\n'
    b"hello\r\n"
    b"--BOUNDARY\r\n"
    b'Content-Disposition: form-data; name="upload"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
    b"file body\r\n"
    b"--BOUNDARY--\r\n"
)


@pytest.mark.anyio
async def test_form_urlencoded() -> None:
    request = form_request(b"application/x-www-form-urlencoded", b"a=1&a=2&b=x+y")
    form = await request.form()
    assert isinstance(form, FormData)
    assert form.getlist("a") == ["1", "2"]
    assert form["b"] == "x y"
    assert await request.form() is form  # cached


@pytest.mark.anyio
async def test_form_content_type_is_case_and_param_insensitive() -> None:
    request = form_request(b"Application/X-WWW-Form-URLEncoded; charset=utf-8", b"k=v")
    assert (await request.form())["k"] == "v"


@pytest.mark.anyio
async def test_form_other_content_type_is_empty() -> None:
    request = form_request(b"application/json", b"{}")
    assert len(await request.form()) == 0
    no_type = Request(http_scope(method="POST"), chunks(b"x"))
    assert len(await no_type.form()) == 0


@pytest.mark.anyio
async def test_form_multipart_and_files_closed_by_context_manager() -> None:
    request = form_request(b"multipart/form-data; boundary=BOUNDARY", MULTIPART)
    async with request.form() as form:
        assert form["title"] == "hello"
        upload = form["upload"]
        assert isinstance(upload, UploadFile)
        assert upload.filename == "a.txt"
        assert await upload.read() == b"file body"
    assert upload.file.closed


@pytest.mark.anyio
async def test_request_close_closes_form_files() -> None:
    request = form_request(b"multipart/form-data; boundary=BOUNDARY", MULTIPART)
    form = await request.form()
    upload = form["upload"]
    assert isinstance(upload, UploadFile)
    assert not upload.file.closed
    await request.close()
    assert upload.file.closed
    await Request(http_scope()).close()  # nothing parsed: nothing to close


@pytest.mark.anyio
async def test_form_limits_become_http_400_inside_an_app() -> None:
    request = form_request(b"multipart/form-data; boundary=BOUNDARY", MULTIPART, app=object())
    with pytest.raises(HTTPException) as info:
        await request.form(max_files=0)
    assert info.value.status_code == 400
    assert info.value.detail
    await request.close()


@pytest.mark.anyio
async def test_form_limits_raise_multipart_exception_outside_an_app() -> None:
    from brillo.formparsers import MultiPartException

    request = form_request(b"multipart/form-data; boundary=BOUNDARY", MULTIPART)
    with pytest.raises(MultiPartException):
        await request.form(max_fields=0)
    await request.close()


@pytest.mark.anyio
async def test_urlencoded_form_limits_apply_too() -> None:
    body = b"&".join(b"f%d=v" % n for n in range(5))
    request = form_request(b"application/x-www-form-urlencoded", body, app=object())
    with pytest.raises(HTTPException) as info:
        await request.form(max_fields=4)
    assert info.value.status_code == 400
    assert "field" in info.value.detail.lower()
    request = form_request(b"application/x-www-form-urlencoded", b"big=" + b"x" * 100, app=object())
    with pytest.raises(HTTPException) as info:
        await request.form(max_part_size=10)
    assert info.value.status_code == 400
    ok = form_request(b"application/x-www-form-urlencoded", body)
    assert len(await ok.form(max_fields=5)) == 5


# -- server push -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_send_push_promise() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = with_headers(
        (b"accept", b"text/css"),
        (b"accept-language", b"en"),
        (b"accept-language", b"fr"),
        (b"cookie", b"secret=1"),
        extensions={"http.response.push": {}},
    )
    await Request(scope, Body(), send).send_push_promise("/style.css")
    assert sent == [
        {
            "type": "http.response.push",
            "path": "/style.css",
            "headers": [
                (b"accept", b"text/css"),
                (b"accept-language", b"en"),
                (b"accept-language", b"fr"),
            ],
        }
    ]
    sent.clear()
    await Request(http_scope(), Body(), send).send_push_promise("/style.css")
    assert sent == []  # no push support: nothing sent


@pytest.mark.anyio
async def test_send_early_hints() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope(extensions={"http.response.early_hint": {}})
    request = Request(scope, Body(), send)
    await request.send_early_hints("</a.css>; rel=preload; as=style", "</b.js>; rel=preload")
    assert sent == [
        {
            "type": "http.response.early_hint",
            "links": [b"</a.css>; rel=preload; as=style", b"</b.js>; rel=preload"],
        }
    ]
    sent.clear()
    await Request(http_scope(), Body(), send).send_early_hints("</a.css>; rel=preload")
    assert sent == []  # the server offers no early hints: nothing sent
