"""What the hub asks of a socket: the :class:`SocketLike` contract, eager sends, send errors."""

from __future__ import annotations

from typing import Any, Protocol

import anyio

from brillo.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

__all__ = ["SocketLike", "client_gone", "eager_send_safe", "server_send"]


class SocketLike(Protocol):
    """What the hub needs from a connection; :class:`brillo.websockets.WebSocket` fits.

    The contract:

    * ``send(message)`` sends one raw ASGI ``websocket.send`` message. The hub calls it from
      the connection's own writer task (a task of the hub), one call at a time, in order.
    * ``close(code, reason)`` is called once, from that writer task, when the hub drops the
      connection (1013: slow or stuck, 1001: shutdown).
    * A send that fails because the peer is gone raises :class:`OSError`,
      :class:`~brillo.websockets.WebSocketDisconnect`,
      :class:`~brillo.websockets.WebSocketDisconnected`, or a closed-stream error of anyio or
      websockets: the connection leaves its rooms, logged at DEBUG. Any other exception also
      drops it, logged as a WARNING with the traceback.
    * **Eager sends** (asyncio only). When the writer is idle, the hub may instead *start* the
      send in the task that publishes, and hand it, half-run, to the writer if it has to wait.
      That is only sound for a send that holds nothing tied to the running task across a
      suspension: no anyio cancel scope (``fail_after``, ``move_on_after``, task groups), no
      ``asyncio.timeout``, no context variable it sets. The hub does it only for sockets known
      to be safe: brillo's own :class:`~brillo.websockets.WebSocket` (its ``send`` not
      overridden) straight over uvicorn's send (any of its three WebSocket implementations),
      or any socket with an attribute ``eager_send_safe = True``. ``eager_send_safe = False``
      opts a socket out; ``Hub(eager_sends=False)`` turns eager sends off for every socket.
    """

    async def send(self, message: Any) -> None:
        """Send one raw ASGI message."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with ``code``."""


#: Server sends known to hold nothing tied to the calling task across a suspension: uvicorn's
#: WebSocket protocols wait on plain asyncio futures, events and locks only.
_SAFE_SERVER_SENDS = frozenset(
    {
        ("uvicorn.protocols.websockets.websockets_impl", "WebSocketProtocol.asgi_send"),
        ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol.send"),
        ("uvicorn.protocols.websockets.wsproto_impl", "WSProtocol.send"),
    }
)


#: Sends that pass each message straight to the send they wrap (``wrapped_send``) and hold
#: nothing tied to the task: as safe as that send. brillo's WebSocket protection is one.
_PASS_THROUGH_SENDS = frozenset({("brillo.middleware.websocket_protection", "_Guard.send")})


def eager_send_safe(socket: object) -> bool:
    """Whether ``socket.send`` may be started in one task and finished in another.

    An ``eager_send_safe`` attribute decides when present; otherwise only brillo's WebSocket over
    a server send in :data:`_SAFE_SERVER_SENDS` (no middleware wrapping it, or only brillo's
    WebSocket protection) qualifies.
    """
    declared = getattr(socket, "eager_send_safe", None)
    if declared is not None:
        return declared is True
    if not isinstance(socket, WebSocket) or type(socket).send is not WebSocket.send:
        return False
    send = getattr(socket, "_send", None)
    for _ in range(4):  # at most a few protection layers (application and route)
        function = getattr(send, "__func__", None)
        if function is None:
            return False
        name = (function.__module__, function.__qualname__)
        if name in _SAFE_SERVER_SENDS:
            return True
        if name not in _PASS_THROUGH_SENDS:
            return False
        send = getattr(send.__self__, "wrapped_send", None)  # type: ignore[union-attr]
    return False


def server_send(socket: object) -> Any:
    """The server's own send under brillo's WebSocket, when fan-out may call it directly.

    That is brillo's :class:`~brillo.websockets.WebSocket` (``send`` not overridden) that
    :func:`eager_send_safe` accepts (over a server send it knows, or declared safe); ``None`` for
    any other socket. ``WebSocket.send`` only adds state checks to the server's send, and a
    send the server refuses is redone through ``WebSocket.send``, which turns the refusal into
    the WebSocket's own error and state.
    """
    if not isinstance(socket, WebSocket) or type(socket).send is not WebSocket.send:
        return None
    if not eager_send_safe(socket):
        return None
    return socket._send


#: Errors that mean the peer is gone (or the socket was closed), whatever else they are.
_GONE_TYPES = (
    OSError,
    WebSocketDisconnect,
    WebSocketDisconnected,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)
#: The same for libraries brillo does not import (uvicorn's is an OSError already).
_GONE_NAMES = frozenset({"ClientDisconnected", "ConnectionClosed"})


def client_gone(exc: BaseException) -> bool:
    """True when a send failed because the client is gone, not because something is broken.

    A plain :class:`RuntimeError` is not such an error: it is a bug (a misused socket, a cancel
    scope left in the wrong task) and must be seen.
    """
    if isinstance(exc, _GONE_TYPES):
        return True
    return any(cls.__name__ in _GONE_NAMES for cls in type(exc).__mro__)
