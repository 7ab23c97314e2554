"""WebSocket protection: origin policy, limits, connection caps, idle timeout (asyncio and trio).

Over the wire (uvicorn's three WebSocket implementations, hypercorn, a stopped client process):
tests/integration/test_websocket_protection_wire.py.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from brillo.applications import Brillo
from brillo.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from brillo.middleware import Middleware
from brillo.middleware.authentication import AuthenticationMiddleware
from brillo.middleware.websocket_protection import (
    RATE_LIMIT_REPLY,
    OriginPolicy,
    ProtectionStats,
    RateLimit,
    WebSocketLimits,
    WebSocketProtectionMiddleware,
    protect_websocket,
    protection_stats,
)
from brillo.requests import HTTPConnection
from brillo.responses import PlainTextResponse
from brillo.routing import Route, WebSocketRoute, websocket_session
from brillo.testclient import TestClient, WebSocketDenialResponse
from brillo.types import ASGIApp, Message
from brillo.websockets import WebSocket, WebSocketDisconnect
from tests.support.asgi import ws_scope

TIMEOUT = 5.0


def scope(
    origin: str | None = None,
    host: str = "chat.example.com",
    denial: bool = True,
    client: tuple[str, int] = ("10.0.0.1", 5000),
    **extra: Any,
) -> dict[str, Any]:
    headers = [("origin", origin)] if origin is not None else []
    return ws_scope(
        headers=headers,
        host=host,
        server=("127.0.0.1", 8000),
        client=client,
        denial=denial,
        spec_version="2.4",
        state={},
        **extra,
    )


class Wire:
    """The server's end of one connection: feeds messages in, records what the app sends."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._incoming: list[Message] = [{"type": "websocket.connect"}]
        self._ready = anyio.Event()
        self._changed = anyio.Event()
        self.closed_by_server = False

    def push(self, *messages: Message) -> None:
        self._incoming.extend(messages)
        self._ready.set()

    def text(self, *texts: str) -> None:
        self.push(*({"type": "websocket.receive", "text": t} for t in texts))

    async def receive(self) -> Message:
        while not self._incoming:
            self._ready = anyio.Event()
            await self._ready.wait()
        return self._incoming.pop(0)

    async def send(self, message: Message) -> None:
        if self.closed and message["type"] != "websocket.close":
            raise OSError("sent after close")
        if self.closed and message["type"] == "websocket.close":
            raise RuntimeError("second close")
        self.sent.append(message)
        if message["type"] == "websocket.close":
            self.push({"type": "websocket.disconnect", "code": message.get("code", 1000)})
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    @property
    def closed(self) -> Message | None:
        return next((m for m in self.sent if m["type"] == "websocket.close"), None)

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send" and "text" in m]

    async def wait(self, predicate: Callable[[Wire], bool], timeout: float = TIMEOUT) -> None:
        with anyio.fail_after(timeout):
            while not predicate(self):
                await self._changed.wait()


async def run(app: ASGIApp, wire: Wire, **scope_options: Any) -> None:
    with anyio.fail_after(TIMEOUT):
        await app(scope(**scope_options), wire.receive, wire.send)


def echo_app(log: list[Any] | None = None) -> ASGIApp:
    """An endpoint that echoes text and records how it ended."""

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for text in websocket.iter_text():
                await websocket.send_text(text)
        finally:
            if log is not None:
                log.append(websocket.client_state.name)

    return websocket_session(echo)


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    protection_stats.reset()


# -- origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "origin", "allowed"),
    [
        (["self"], "https://chat.example.com", True),
        (["self"], "http://chat.example.com", True),  # scheme not compared (TLS proxies)
        (["self"], "https://CHAT.example.com", True),
        (["self"], "https://chat.example.com:443", True),
        (["self"], "https://chat.example.com:8443", False),
        (["self"], "https://evil.example.com", False),
        (["self"], "https://chat.example.com.evil.net", False),
        (["self"], "null", False),
        (["self"], "not an origin", False),
        (["https://app.example.com"], "https://app.example.com", True),
        (["https://app.example.com/"], "https://app.example.com:443", True),
        (["https://app.example.com"], "http://app.example.com", False),
        (["https://app.example.com"], "https://app.example.com:444", False),
        (["https://*.example.com"], "https://a.example.com", True),
        (["https://*.example.com"], "https://a.b.example.com", True),
        (["https://*.example.com"], "https://example.com", False),
        (["https://*.example.com"], "https://evilexample.com", False),
        (["https://*.example.com"], "http://a.example.com", False),
        (["https://*.example.com:8443"], "https://a.example.com:8443", True),
        (["https://*.example.com:8443"], "https://a.example.com", False),
        (["http://localhost:*"], "http://localhost:5173", True),
        (["http://localhost:*"], "http://localhost", True),
        (["http://localhost:*"], "http://localhost.evil.net:80", False),
        (["http://[::1]:8000"], "http://[0:0::1]:8000", True),
        (["null"], "null", True),
        (["*"], "https://anything.example", True),
        (["https://app.example.com", "self"], "https://chat.example.com", True),
    ],
)
def test_origin_policy(allow: list[str], origin: str, allowed: bool) -> None:
    policy = OriginPolicy(allow)
    assert policy.allows(scope(origin)) is allowed


def test_origin_policy_remembers_decisions_per_origin_and_host() -> None:
    policy = OriginPolicy()
    for _ in range(2):  # the second round comes from the remembered decisions
        assert policy.allows(scope("https://a.example", host="a.example"))
        assert not policy.allows(scope("https://a.example", host="b.example"))
        assert policy.allows(scope("https://b.example", host="b.example"))
    for n in range(3000):  # a bounded table: many distinct origins start it over
        assert not policy.allows(scope(f"https://{n}.evil.example", host="a.example"))
    assert len(policy._decisions) <= 1024


def test_origin_policy_same_host_with_port_and_missing_header() -> None:
    policy = OriginPolicy()
    assert policy.allows(scope("http://127.0.0.1:8000", host="127.0.0.1:8000"))
    assert not policy.allows(scope("http://127.0.0.1:8001", host="127.0.0.1:8000"))
    assert not policy.allows(scope("http://127.0.0.1", host="127.0.0.1:8000"))
    assert policy.allows(scope(None))  # non-browser clients send no Origin
    assert not OriginPolicy(allow_missing=False).allows(scope(None))
    bare = scope("https://chat.example.com")
    bare["headers"] = [(b"origin", b"https://chat.example.com")]  # no Host header
    assert not policy.allows(bare)


@pytest.mark.parametrize(
    "bad",
    [
        "example.com",
        "https://",
        "https://a.*.com",
        "https://*",
        "https://ex ample.com",
        "https://exämple.com",
        "https://example.com/path",
        "https://example.com:99999",
        "self ",
    ],
)
def test_malformed_origins_are_refused_with_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid origin"):
        OriginPolicy([bad])


def test_origin_policy_needs_a_list() -> None:
    with pytest.raises(TypeError, match="list of origins"):
        OriginPolicy("https://example.com")
    with pytest.raises(TypeError, match="origins are strings"):
        OriginPolicy([b"https://example.com"])  # type: ignore[list-item]


@pytest.mark.anyio
async def test_refused_origin_gets_403_and_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "brillo.websockets")
    ran: list[str] = []
    app = WebSocketProtectionMiddleware(echo_app(ran))
    wire = Wire()
    await run(app, wire, origin="https://evil.example.net")
    assert wire.sent[0]["type"] == "websocket.http.response.start"
    assert wire.sent[0]["status"] == 403
    assert wire.sent[1] == {"type": "websocket.http.response.body", "body": b"origin not allowed\n"}
    assert ran == []
    assert protection_stats.origin == 1
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert "'https://evil.example.net' is not allowed" in record.getMessage()


@pytest.mark.anyio
async def test_refused_origin_without_denial_responses_closes_with_1008() -> None:
    app = WebSocketProtectionMiddleware(echo_app())
    wire = Wire()
    await run(app, wire, origin="https://evil.example.net", denial=False)
    assert [m["type"] for m in wire.sent] == ["websocket.accept", "websocket.close"]
    assert wire.closed == {"type": "websocket.close", "code": 1008, "reason": "origin not allowed"}


@pytest.mark.anyio
async def test_allowed_origin_and_http_pass_through() -> None:
    ran: list[str] = []
    app = WebSocketProtectionMiddleware(echo_app(ran), allow_origins=["https://*.example.com"])
    wire = Wire()
    wire.text("hi")
    wire.push({"type": "websocket.disconnect", "code": 1000})
    await run(app, wire, origin="https://chat.example.com")
    assert wire.texts == ["hi"]
    assert ran == ["DISCONNECTED"]

    http = Brillo(
        routes=[Route("/", lambda request: PlainTextResponse("ok"))],
        middleware=[Middleware(WebSocketProtectionMiddleware)],
    )
    assert TestClient(http).get("/", headers={"origin": "https://evil.net"}).text == "ok"


def test_origin_check_per_route_through_the_test_client() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    app = Brillo(
        routes=[
            WebSocketRoute("/checked", endpoint, allow_origins=["https://app.example.com"]),
            WebSocketRoute("/open", endpoint),
        ]
    )
    client = TestClient(app)
    with client.websocket_connect("/checked", headers={"origin": "https://app.example.com"}) as ws:
        assert ws.receive_text() == "welcome"
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/checked", headers={"origin": "https://evil.net"}),
    ):
        pass
    assert denied.value.status_code == 403
    with client.websocket_connect("/open", headers={"origin": "https://evil.net"}) as ws:
        assert ws.receive_text() == "welcome"


def test_routes_without_options_are_unchanged() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        pass  # pragma: no cover

    session = websocket_session(endpoint)
    assert session.__name__ == "app"  # the plain session app, not wrapped
    assert protect_websocket(session) is session
    route = WebSocketRoute("/ws", endpoint)
    assert getattr(route.app, "__name__", "") == "app"


# -- message size -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_message_over_the_size_limit_closes_with_1009() -> None:
    endings: list[Any] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect as exc:
            endings.append((exc.code, exc.reason))
            if exc.reason.endswith("8)"):
                await websocket.close()  # a no-op: the limit closed it already
            else:
                with pytest.raises(WebSocketDisconnect) as lost:
                    await websocket.send_text("too late")  # refused as on a closed socket
                endings.append(lost.value.code)

    for limit in (8, 7):
        app = websocket_session(endpoint, limits=WebSocketLimits(max_message_size=limit))
        wire = Wire()
        wire.text("1234567", "123456789", "after")
        await run(app, wire)
        assert wire.texts == ["1234567"]
        reason = f"message too big (9 bytes, limit {limit})"
        assert wire.closed == {"type": "websocket.close", "code": 1009, "reason": reason}
        assert [m["type"] for m in wire.sent].count("websocket.close") == 1
    assert endings == [
        (1009, "message too big (9 bytes, limit 8)"),
        (1009, "message too big (9 bytes, limit 7)"),
        1006,
    ]
    assert protection_stats.message_size == 2


@pytest.mark.anyio
async def test_size_counts_utf8_bytes_and_binary_frames() -> None:
    limits = WebSocketLimits(max_message_size=8)
    wire = Wire()
    wire.text("ééé")  # 6 bytes
    wire.text("éééé")  # 4 characters, 8 bytes
    wire.text("ééééé")  # 5 characters, 10 bytes
    await run(protect_websocket(echo_app(), limits=limits), wire)
    assert wire.texts == ["ééé", "éééé"]
    assert wire.closed is not None
    assert wire.closed["reason"] == "message too big (10 bytes, limit 8)"

    async def binary(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_bytes():
            await websocket.send_bytes(data)

    wire = Wire()
    wire.push({"type": "websocket.receive", "bytes": b"12345678"})
    wire.push({"type": "websocket.receive", "bytes": b"123456789"})
    await run(websocket_session(binary, limits=limits), wire)
    assert [m.get("bytes") for m in wire.sent if m["type"] == "websocket.send"] == [b"12345678"]
    assert wire.closed is not None
    assert wire.closed["code"] == 1009


# -- rate ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_over_the_rate_closes_with_1008() -> None:
    limits = WebSocketLimits(rate=RateLimit(0.5, burst=3))
    wire = Wire()
    wire.text(*(str(n) for n in range(10)))
    await run(protect_websocket(echo_app(), limits=limits), wire)
    assert wire.texts == ["0", "1", "2"]
    assert wire.closed == {"type": "websocket.close", "code": 1008, "reason": "rate limit exceeded"}
    assert protection_stats.rate == 1


@pytest.mark.anyio
async def test_over_the_rate_drops_with_an_error_reply_and_refills(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "brillo.websockets")
    limits = WebSocketLimits(rate=RateLimit(5, burst=2, action="drop"))
    wire = Wire()
    wire.text(*(f"m{n}" for n in range(10)))
    async with anyio.create_task_group() as group:
        group.start_soon(run, protect_websocket(echo_app(), limits=limits), wire)
        started = anyio.current_time()
        await wire.wait(lambda w: len(w.texts) >= 10)
        elapsed = anyio.current_time() - started
        echoed = [t for t in wire.texts if t != RATE_LIMIT_REPLY]
        # two of the burst, plus at most what refilled meanwhile (5/s)
        assert echoed[:2] == ["m0", "m1"]
        assert len(echoed) <= 2 + int(elapsed * 5) + 1
        dropped = wire.texts.count(RATE_LIMIT_REPLY)
        assert dropped == 10 - len(echoed) > 0
        # the bucket refills: after 0.3 s (1.5 tokens) one more message gets through
        await anyio.sleep(0.3)
        wire.text("later")
        await wire.wait(lambda w: "later" in w.texts)
        wire.push({"type": "websocket.disconnect", "code": 1000})
    assert wire.closed is None
    assert protection_stats.rate_dropped == dropped
    drops = [r for r in caplog.records if "dropping messages" in r.getMessage()]
    assert len(drops) == 1  # logged once per connection, counted every time


@pytest.mark.anyio
async def test_drop_without_reply_and_binary_reply() -> None:
    for reply, expected in ((None, []), (b"slow down", [b"slow down"])):
        limits = WebSocketLimits(rate=RateLimit(0.1, burst=1, action="drop", reply=reply))
        wire = Wire()
        wire.text("a", "b")
        wire.push({"type": "websocket.disconnect", "code": 1000})
        await run(protect_websocket(echo_app(), limits=limits), wire)
        assert wire.texts == ["a"]
        assert [m["bytes"] for m in wire.sent if "bytes" in m] == expected


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        RateLimit(0)
    with pytest.raises(ValueError, match="burst must be an int >= 1"):
        RateLimit(1, burst=0)
    with pytest.raises(ValueError, match="action must be 'close' or 'drop'"):
        RateLimit(1, action="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reply must be str, bytes or None"):
        RateLimit(1, reply=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_message_size must be an int >= 1"):
        WebSocketLimits(max_message_size=0)
    with pytest.raises(ValueError, match="idle_timeout must be a positive number"):
        WebSocketLimits(idle_timeout=-1)
    with pytest.raises(ValueError, match="idle_close_code must be 1001 or 1008"):
        WebSocketLimits(idle_timeout=1, idle_close_code=1000)
    with pytest.raises(TypeError, match="rate must be a RateLimit"):
        WebSocketLimits(rate=10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limits must be a WebSocketLimits"):
        protect_websocket(echo_app(), limits={"max_message_size": 1})  # type: ignore[arg-type]


# -- connection caps ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_connections_per_client_address_are_capped_and_released() -> None:
    app = protect_websocket(echo_app(), limits=WebSocketLimits(max_connections_per_client=2))
    first, second, third, other = Wire(), Wire(), Wire(), Wire()
    async with anyio.create_task_group() as group:
        for wire in (first, second):
            group.start_soon(run, app, wire)
            await wire.wait(lambda w: bool(w.sent))
        await run(app, third)
        assert third.sent[0]["status"] == 429
        other.push({"type": "websocket.disconnect", "code": 1000})
        await run(app, other, client=("10.0.0.2", 1))  # another address
        assert other.sent[0]["type"] == "websocket.accept"
        assert protection_stats.client_connections == 1
        first.push({"type": "websocket.disconnect", "code": 1000})
        second.push({"type": "websocket.disconnect", "code": 1000})
    # the two ended: the address may connect again
    again = Wire()
    again.push({"type": "websocket.disconnect", "code": 1000})
    await run(app, again)
    assert again.sent[0]["type"] == "websocket.accept"


@pytest.mark.anyio
async def test_connections_per_user_are_capped_with_1013_without_denial_responses() -> None:
    limits = WebSocketLimits(
        max_connections_per_user=1, user_key=lambda scope: scope.get("session", {}).get("name")
    )
    app = protect_websocket(echo_app(), limits=limits)
    held, refused, anonymous = Wire(), Wire(), Wire()
    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(run, app, held, session={"name": "ada"}))
        await held.wait(lambda w: bool(w.sent))
        await run(app, refused, denial=False, client=("10.0.0.9", 1), session={"name": "ada"})
        held.push({"type": "websocket.disconnect", "code": 1000})
    assert refused.sent[0]["type"] == "websocket.accept"
    assert refused.closed == {
        "type": "websocket.close",
        "code": 1013,
        "reason": "too many connections",
    }
    anonymous.push({"type": "websocket.disconnect", "code": 1000})
    await run(app, anonymous)  # no user: not counted
    assert anonymous.sent[0]["type"] == "websocket.accept"
    assert protection_stats.user_connections == 1


def test_per_user_cap_with_authentication_middleware() -> None:
    class Header(AuthenticationBackend):
        async def authenticate(
            self, conn: HTTPConnection
        ) -> tuple[AuthCredentials, SimpleUser] | None:
            user = conn.headers.get("x-user")
            return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.user.display_name)
        await websocket.receive_text()

    app = Brillo(
        routes=[WebSocketRoute("/ws", endpoint)],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=Header()),
            Middleware(
                WebSocketProtectionMiddleware, limits=WebSocketLimits(max_connections_per_user=1)
            ),
        ],
    )
    client = TestClient(app)
    with client.websocket_connect("/ws", headers={"x-user": "ada"}) as ws:
        assert ws.receive_text() == "ada"
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect("/ws", headers={"x-user": "ada"}),
        ):
            pass
        assert denied.value.status_code == 429
        with client.websocket_connect("/ws", headers={"x-user": "bob"}) as other:
            assert other.receive_text() == "bob"
            other.send_text("bye")
        ws.send_text("bye")
    with client.websocket_connect("/ws", headers={"x-user": "ada"}) as ws:
        assert ws.receive_text() == "ada"
        ws.send_text("bye")


# -- idle timeout ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("code", [1001, 1008])
async def test_an_idle_client_is_closed(code: int) -> None:
    ended: list[tuple[int, str]] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for text in websocket.iter_text():
                await websocket.send_text(text)
            ended.append((-1, "iteration ended"))
        finally:
            ended.append((websocket.client_state.value, "finally"))

    limits = WebSocketLimits(idle_timeout=1.0, idle_close_code=code)
    wire = Wire()
    async with anyio.create_task_group() as group:
        group.start_soon(run, websocket_session(endpoint, limits=limits), wire)
        # messages 0.1 s apart keep it open well past the timeout
        started = anyio.current_time()
        n = 0
        while anyio.current_time() - started < 1.5:
            wire.text(str(n))
            await wire.wait(functools.partial(lambda text, w: text in w.texts, str(n)))
            await anyio.sleep(0.1)
            n += 1
        assert wire.closed is None
        started = anyio.current_time()
        await wire.wait(lambda w: w.closed is not None)
        assert anyio.current_time() - started >= 0.8
    assert wire.closed == {"type": "websocket.close", "code": code, "reason": "idle timeout"}
    assert ended == [(-1, "iteration ended"), (2, "finally")]
    assert protection_stats.idle_timeout == 1


@pytest.mark.anyio
async def test_time_spent_outside_receive_does_not_count() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        await anyio.sleep(0.4)  # busy for twice the timeout
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    wire = Wire()
    wire.text("one", "two")  # "two" is already there when the endpoint asks
    await run(websocket_session(endpoint, limits=WebSocketLimits(idle_timeout=0.2)), wire)
    assert wire.texts == ["two"]
    assert wire.closed == {"type": "websocket.close", "code": 1000, "reason": ""}


@pytest.mark.anyio
async def test_idle_timeout_leaves_other_cancellations_alone() -> None:
    """Cancelling the endpoint from outside still cancels it; the timer does not swallow it."""
    entered = anyio.Event()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        entered.set()
        await websocket.receive_text()

    wire = Wire()
    app = websocket_session(endpoint, limits=WebSocketLimits(idle_timeout=0.05))
    with anyio.move_on_after(0.3) as outer:
        async with anyio.create_task_group() as group:
            group.start_soon(run, app, wire)
            await entered.wait()
            group.cancel_scope.cancel()
    assert not outer.cancelled_caught
    assert wire.closed is None  # cancelled before its idle timeout: nothing sent


@pytest.mark.anyio
async def test_own_stats_object_and_middleware_with_limits() -> None:
    stats = ProtectionStats()
    app = WebSocketProtectionMiddleware(
        echo_app(), allow_origins=None, limits=WebSocketLimits(max_message_size=2), stats=stats
    )
    wire = Wire()
    wire.text("abc")
    await run(app, wire, origin="https://evil.example.net")
    assert wire.closed is not None
    assert wire.closed["code"] == 1009
    assert stats.snapshot()["message_size"] == 1
    assert protection_stats.message_size == 0
