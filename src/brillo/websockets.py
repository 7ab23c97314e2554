"""The WebSocket connection object: a state machine over the ASGI WebSocket messages.

A :class:`WebSocket` wraps one ASGI ``websocket`` connection. It tracks two states, one per
direction (:attr:`WebSocket.client_state` for what the server told us, and
:attr:`WebSocket.application_state` for what we told the server), refuses every message that is
invalid in the current state with a :class:`RuntimeError` that names the expected and the actual
ASGI message, and turns the ways a client can misbehave into exceptions that carry the close code
to answer with (:class:`WebSocketClientError`).

The per-message methods (``send_text``, ``receive_text``, ``send_json``, ``receive_json`` ...)
are the hottest code in brillo: they check the common state first and do nothing else per call.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar

from brillo._json import compact_encoder
from brillo._utils import truncate_close_reason
from brillo.requests import HTTPConnection
from brillo.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from brillo.responses import Response

__all__ = [
    "InvalidJSONError",
    "UnsupportedDataError",
    "WebSocket",
    "WebSocketClientError",
    "WebSocketClose",
    "WebSocketDisconnect",
    "WebSocketDisconnected",
    "WebSocketState",
]


class WebSocketState(enum.Enum):
    """The state of one direction of a WebSocket connection."""

    #: Handshake not finished: ``websocket.connect`` not yet received / nothing sent yet.
    CONNECTING = 0
    #: Connect received (client side) / accept sent (application side).
    CONNECTED = 1
    #: Disconnect received (client side) / close sent or connection lost (application side).
    DISCONNECTED = 2
    #: The application answered the handshake with an HTTP denial response.
    RESPONSE = 3


class WebSocketDisconnect(Exception):
    """The connection is gone: the client closed it, or the server reported it lost.

    Raised by the ``receive_*`` methods when a ``websocket.disconnect`` message arrives (``code``
    and ``reason`` are the client's), and by the ``send_*`` methods when the server reports the
    connection closed (``code`` 1006, abnormal closure).
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason = reason or ""
        self.args = (code, reason)

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}" if self.reason else str(self.code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketDisconnected(RuntimeError):
    """An operation was attempted on a WebSocket that is already disconnected.

    For instance ``receive`` after a ``websocket.disconnect`` message was received, or ``send``
    after ``close``. It is a :class:`RuntimeError`, like the error Starlette raises there.
    """


class WebSocketClientError(Exception):
    """Base of the errors caused by what a client sent; ``code`` is the close code to answer with.

    When one escapes a brillo WebSocket endpoint, the connection is closed with :attr:`code`.
    """

    #: The WebSocket close code (RFC 6455) that tells the client what was wrong.
    code: int = 1008


class UnsupportedDataError(WebSocketClientError, KeyError):
    """The client sent the wrong kind of frame: binary where text was expected, or the reverse.

    Close code 1003 (unsupported data). It is also a :class:`KeyError`, the error Starlette
    raises there, so existing ``except KeyError`` handlers keep working.
    """

    code = 1003

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidJSONError(WebSocketClientError, json.JSONDecodeError):
    """A message meant to carry JSON is not valid JSON (or not valid UTF-8 in binary mode).

    Close code 1007 (invalid payload data). It is also a :class:`json.JSONDecodeError` (hence a
    :class:`ValueError`), so existing handlers for those keep working.
    """

    code = 1007


_T = TypeVar("_T")

_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED
_RESPONSE = WebSocketState.RESPONSE


# Bound once: the per-message JSON paths call these directly.
_json_encode = compact_encoder(allow_nan=True)
_json_decoder = json.JSONDecoder()
_json_decode = _json_decoder.decode
#: The decoder's scanner: parses one value at an index; ``decode`` adds whitespace handling.
_json_scan: Callable[[str, int], tuple[Any, int]] = _json_decoder.scan_once  # type: ignore[attr-defined]
_JSONDecodeError = json.JSONDecodeError

_NOT_ACCEPTED = 'WebSocket is not connected. Need to call "accept" first.'
_BAD_MODE = 'The "mode" argument should be "text" or "binary".'


def _server_closed_error(exc: RuntimeError) -> bool:
    """True for the RuntimeError uvicorn raises on a send after it closed the socket itself."""
    text = str(exc)
    return text.startswith("Unexpected ASGI message '") and "after sending 'websocket.close'" in (
        text
    )


def _wrong_kind(expected: str, message: Message) -> UnsupportedDataError:
    got = "text" if message.get("text") is not None else "binary"
    if expected == "text":
        hint = 'use receive_bytes() or receive_json(mode="binary") for binary frames'
    else:
        hint = 'use receive_text() or receive_json(mode="text") for text frames'
    return UnsupportedDataError(
        f"Expected a {expected} WebSocket message, but the client sent a {got} message ({hint})."
    )


def _invalid_json(exc: Exception, text: str) -> InvalidJSONError:
    if isinstance(exc, json.JSONDecodeError):
        return InvalidJSONError(f"Invalid JSON in WebSocket message: {exc.msg}", exc.doc, exc.pos)
    return InvalidJSONError("Invalid JSON in WebSocket message: nested too deeply", text, 0)


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSONError(
            f"Invalid UTF-8 in binary WebSocket message: {exc.reason}",
            data.decode("utf-8", "replace"),
            exc.start,
        ) from None


class WebSocket(HTTPConnection):
    """One WebSocket connection: the ASGI ``websocket`` scope plus its receive/send callables.

    Lifecycle: ``await websocket.accept()`` (or ``close()`` to reject the handshake with HTTP 403,
    or ``send_denial_response(response)`` to reject it with any HTTP response), then exchange
    messages with the ``receive_*`` / ``send_*`` / ``iter_*`` methods, then ``close()``.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket", 'WebSocket needs a scope of type "websocket"'
        self.scope = scope  # HTTPConnection.__init__, inlined
        self._receive = receive
        self._send = send
        #: What the server has told us: CONNECTING, CONNECTED or DISCONNECTED.
        self.client_state = _CONNECTING
        #: What we have told the server: CONNECTING, CONNECTED, RESPONSE or DISCONNECTED.
        self.application_state = _CONNECTING
        self._lost_connection = False

    # -- raw ASGI messages ------------------------------------------------------------------

    async def receive(self) -> Message:
        """Receive the next ASGI message, checking it is valid in the current state.

        The first message must be ``websocket.connect``; after it only ``websocket.receive`` and
        ``websocket.disconnect`` are valid, and nothing may be received after a disconnect
        (:class:`WebSocketDisconnected`). A disconnect message is returned, not raised.
        """
        state = self.client_state
        if state is _CONNECTED:
            message = await self._receive()
            message_type = message["type"]
            if message_type == "websocket.receive":
                return message
            if message_type == "websocket.disconnect":
                self.client_state = _DISCONNECTED
                return message
            raise RuntimeError(
                'Expected ASGI message "websocket.receive" or "websocket.disconnect", '
                f"but got {message_type!r}"
            )
        if state is _CONNECTING:
            message = await self._receive()
            message_type = message["type"]
            if message_type != "websocket.connect":
                raise RuntimeError(
                    f'Expected ASGI message "websocket.connect", but got {message_type!r}'
                )
            self.client_state = _CONNECTED
            return message
        raise WebSocketDisconnected(
            'Cannot call "receive" once a disconnect message has been received.'
        )

    async def send(self, message: Message) -> None:
        """Send one ASGI message, checking it is valid in the current state.

        Before the handshake only ``websocket.accept``, ``websocket.close`` or
        ``websocket.http.response.start`` are valid; after accept only ``websocket.send`` and
        ``websocket.close``; during a denial response only ``websocket.http.response.body``.
        Nothing may be sent after a close (:class:`WebSocketDisconnected`). When the server
        reports the connection closed, the state becomes DISCONNECTED and
        :class:`WebSocketDisconnect` (code 1006) is raised.
        """
        state = self.application_state
        message_type = message["type"]
        if state is _CONNECTED:
            if message_type == "websocket.close":
                self.application_state = _DISCONNECTED
            elif message_type != "websocket.send":
                raise RuntimeError(
                    'Expected ASGI message "websocket.send" or "websocket.close", '
                    f"but got {message_type!r}"
                )
        elif state is _CONNECTING:
            if message_type == "websocket.accept":
                self.application_state = _CONNECTED
            elif message_type == "websocket.close":
                self.application_state = _DISCONNECTED
            elif message_type == "websocket.http.response.start":
                self.application_state = _RESPONSE
            else:
                raise RuntimeError(
                    'Expected ASGI message "websocket.accept", "websocket.close" or '
                    f'"websocket.http.response.start", but got {message_type!r}'
                )
        elif state is _RESPONSE:
            if message_type != "websocket.http.response.body":
                raise RuntimeError(
                    'Expected ASGI message "websocket.http.response.body", '
                    f"but got {message_type!r}"
                )
            if not message.get("more_body", False):
                self.application_state = _DISCONNECTED
        else:
            raise WebSocketDisconnected('Cannot call "send" once a close message has been sent.')
        try:
            await self._send(message)
        except (OSError, RuntimeError) as exc:
            self._send_failed(exc)

    # -- handshake and close ------------------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Accept the connection, optionally choosing one of ``scope["subprotocols"]``.

        ``headers`` are extra ``(name, value)`` byte pairs for the handshake response. Receives
        the ``websocket.connect`` message first if it has not been received yet.
        """
        if self.client_state is _CONNECTING:
            await self.receive()
        message = {
            "type": "websocket.accept",
            "subprotocol": subprotocol,
            "headers": list(headers) if headers else [],
        }
        if self.application_state is not _CONNECTING:
            await self.send(message)  # raises the error for this state
            return
        # What send() does for an accept, without its frame: once per connection.
        self.application_state = _CONNECTED
        try:
            await self._send(message)
        except (OSError, RuntimeError) as exc:
            self._send_failed(exc)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with ``code`` and ``reason``.

        Before accept this rejects the handshake: the client sees HTTP 403 (and the reason is
        not sent). A reason longer than the 123 bytes of UTF-8 a close frame holds (RFC 6455) is
        cut to fit, on a character boundary.
        """
        reason = truncate_close_reason(reason) if reason else ""
        await self.send({"type": "websocket.close", "code": code, "reason": reason})

    async def send_denial_response(self, response: Response) -> None:
        """Reject the handshake with an HTTP ``response`` (status, headers and body).

        Needs the server's ``websocket.http.response`` extension; raises :class:`RuntimeError`
        when the server does not support it, or when the connection is already accepted or
        closed. While the response is sent the application state is RESPONSE, then
        DISCONNECTED once its last body chunk has been sent.
        """
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            raise RuntimeError(
                "The server doesn't support the Websocket Denial Response extension. Without "
                'the "websocket.http.response" ASGI extension, reject with close(): clients '
                "see HTTP 403."
            )
        if self.application_state is not _CONNECTING:
            raise RuntimeError(
                "A denial response can only be sent before the WebSocket is accepted or "
                f"closed (application state is {self.application_state.name})."
            )
        await response(self.scope, self.receive, self.send)

    # -- receiving data -----------------------------------------------------------------------

    async def receive_text(self) -> str:
        """Receive the next text message.

        Raises :class:`WebSocketDisconnect` when the client disconnects and
        :class:`UnsupportedDataError` (close code 1003) when it sends a binary message.
        """
        if self.application_state is not _CONNECTED or self.client_state is not _CONNECTED:
            await self._prepare_receive()
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                return text  # type: ignore[no-any-return]
            raise _wrong_kind("text", message)
        self._not_data(message)

    async def receive_bytes(self) -> bytes:
        """Receive the next binary message.

        Raises :class:`WebSocketDisconnect` when the client disconnects and
        :class:`UnsupportedDataError` (close code 1003) when it sends a text message.
        """
        if self.application_state is not _CONNECTED or self.client_state is not _CONNECTED:
            await self._prepare_receive()
        message = await self._receive()
        if message["type"] == "websocket.receive":
            data = message.get("bytes")
            if data is not None:
                return data  # type: ignore[no-any-return]
            raise _wrong_kind("binary", message)
        self._not_data(message)

    async def receive_json(self, mode: Literal["text", "binary"] | str = "text") -> Any:
        """Receive the next message and decode it as JSON.

        ``mode="text"`` expects text frames, ``mode="binary"`` UTF-8 encoded binary frames.
        Raises :class:`WebSocketDisconnect` on disconnect, :class:`UnsupportedDataError` (1003)
        for the other kind of frame, and :class:`InvalidJSONError` (1007) for invalid JSON or
        invalid UTF-8.
        """
        if mode == "text":
            key = "text"
        elif mode == "binary":
            key = "bytes"
        else:
            raise RuntimeError(_BAD_MODE)
        if self.application_state is not _CONNECTED or self.client_state is not _CONNECTED:
            await self._prepare_receive()
        message = await self._receive()
        if message["type"] == "websocket.receive":
            data = message.get(key)
            if data is None:
                raise _wrong_kind(mode, message)
            if key == "bytes":
                data = _decode_utf8(data)
            try:
                # Fast path: a document without surrounding whitespace is one scan; anything
                # else (whitespace, trailing data, errors) goes through the full decoder.
                try:
                    value, end = _json_scan(data, 0)
                except StopIteration:
                    end = -1
                if end == len(data):
                    return value
                return _json_decode(data)
            except (_JSONDecodeError, RecursionError) as exc:
                raise _invalid_json(exc, data) from None
        self._not_data(message)

    def iter_text(self) -> AsyncIterator[str]:
        """Iterate over text messages until the client disconnects (then stop, without raising).

        Errors other than the disconnect (e.g. :class:`UnsupportedDataError`) propagate. The
        iterator holds no resources: breaking out of the loop early needs no cleanup.
        """
        return _Messages(self.receive_text)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Iterate over binary messages until the client disconnects (then stop, without raising).

        Errors other than the disconnect propagate; breaking out early needs no cleanup.
        """
        return _Messages(self.receive_bytes)

    def iter_json(self, mode: Literal["text", "binary"] | str = "text") -> AsyncIterator[Any]:
        """Iterate over decoded JSON messages until the client disconnects (then stop).

        ``mode`` is as for :meth:`receive_json` (checked here, before iterating); errors other
        than the disconnect propagate; breaking out early needs no cleanup.
        """
        if mode == "text":
            return _Messages(self.receive_json)
        if mode == "binary":
            return _Messages(functools.partial(self.receive_json, "binary"))
        raise RuntimeError(_BAD_MODE)

    # -- sending data -------------------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Send a text message. Raises :class:`WebSocketDisconnect` (1006) if the connection
        is gone."""
        if self.application_state is _CONNECTED:
            try:
                await self._send({"type": "websocket.send", "text": data})
            except (OSError, RuntimeError) as exc:
                self._send_failed(exc)
        else:
            self._not_sendable()

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message. Raises :class:`WebSocketDisconnect` (1006) if the connection
        is gone."""
        if self.application_state is _CONNECTED:
            try:
                await self._send({"type": "websocket.send", "bytes": data})
            except (OSError, RuntimeError) as exc:
                self._send_failed(exc)
        else:
            self._not_sendable()

    async def send_json(self, data: Any, mode: Literal["text", "binary"] | str = "text") -> None:
        """Send ``data`` encoded as compact JSON (non-ASCII characters kept as is).

        ``mode="text"`` sends a text frame, ``mode="binary"`` a binary frame of UTF-8 bytes.
        """
        if mode == "text":
            message: Message = {"type": "websocket.send", "text": _json_encode(data)}
        elif mode == "binary":
            message = {"type": "websocket.send", "bytes": _json_encode(data).encode("utf-8")}
        else:
            raise RuntimeError(_BAD_MODE)
        if self.application_state is _CONNECTED:
            try:
                await self._send(message)
            except (OSError, RuntimeError) as exc:
                self._send_failed(exc)
        else:
            self._not_sendable()

    # -- slow paths ---------------------------------------------------------------------------

    def _send_failed(self, exc: OSError | RuntimeError) -> NoReturn:
        """The server refused a message: a lost connection becomes WebSocketDisconnect(1006).

        An OSError (ASGI spec 2.4) or uvicorn's "after sending 'websocket.close'" RuntimeError
        means the connection is gone; any other RuntimeError is a misuse and propagates.
        """
        if isinstance(exc, OSError) or _server_closed_error(exc):
            self._lost(exc)
        raise exc

    def _lost(self, exc: BaseException) -> NoReturn:
        self.application_state = _DISCONNECTED
        self._lost_connection = True
        raise WebSocketDisconnect(1006) from exc

    def _not_sendable(self) -> NoReturn:
        if self.application_state is _DISCONNECTED:
            raise WebSocketDisconnected(
                'Cannot call "send" once a close message has been sent '
                "(or the connection was lost)."
            )
        if self.application_state is _RESPONSE:
            raise RuntimeError(
                "WebSocket is not connected: a denial response was sent instead of accepting."
            )
        raise RuntimeError(_NOT_ACCEPTED)

    async def _prepare_receive(self) -> None:
        """Raise the right error when data cannot be received; receive a pending connect."""
        if self.application_state is not _CONNECTED:
            if self.application_state is _DISCONNECTED:
                if self.client_state is _CONNECTED:
                    await self._await_disconnect()
                raise WebSocketDisconnected(
                    'Cannot call "receive" once a disconnect message has been received.'
                )
            # As in Starlette, receiving on a socket that is not connected raises
            # WebSocketDisconnected (a RuntimeError) whatever the reason.
            if self.application_state is _RESPONSE:
                raise WebSocketDisconnected(
                    "WebSocket is not connected: a denial response was sent instead of accepting."
                )
            raise WebSocketDisconnected(_NOT_ACCEPTED)
        if self.client_state is _CONNECTING:
            # Accepted by a raw ``send`` without receiving the connect message first.
            await self.receive()
            return
        raise WebSocketDisconnected(
            'Cannot call "receive" once a disconnect message has been received.'
        )

    async def _await_disconnect(self) -> NoReturn:
        """Receive after this side closed (or lost) the connection: the peer is gone.

        Another task may have closed the socket (a realtime hub dropping a slow client, a
        shutdown) while this one still reads: it gets the same :class:`WebSocketDisconnect` a
        client close gives, not an error. After a lost connection that is code 1006 at once;
        after our close it is the client's answer, and data still in flight is discarded.
        """
        if self._lost_connection:
            self.client_state = _DISCONNECTED
            raise WebSocketDisconnect(1006)
        while True:
            message = await self._receive()
            if message["type"] != "websocket.receive":
                self._not_data(message)

    def _not_data(self, message: Message) -> NoReturn:
        message_type = message["type"]
        if message_type == "websocket.disconnect":
            self.client_state = _DISCONNECTED
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        raise RuntimeError(
            'Expected ASGI message "websocket.receive" or "websocket.disconnect", '
            f"but got {message_type!r}"
        )


class _Messages(Generic[_T]):
    """The async iterator behind ``iter_*``: a plain object, not a generator, so abandoning it
    mid-iteration leaves nothing to finalise."""

    __slots__ = ("_done", "_receive")

    def __init__(self, receive: Callable[[], Awaitable[_T]]) -> None:
        self._receive = receive
        self._done = False

    def __aiter__(self) -> _Messages[_T]:
        return self

    async def __anext__(self) -> _T:
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._receive()
        except WebSocketDisconnect:
            self._done = True
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop the iteration (for ``contextlib.aclosing`` and generator-style callers)."""
        self._done = True


class WebSocketClose:
    """An ASGI app that closes the WebSocket (before accept: rejects the handshake, HTTP 403)."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = truncate_close_reason(reason or "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send ``websocket.close`` with this object's code and reason."""
        await send({"type": "websocket.close", "code": self.code, "reason": self.reason})
