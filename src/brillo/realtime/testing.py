"""Test an app's channel handlers with the TestClient in a few lines::

    from brillo.realtime.testing import connect_channels

    def test_say(client: TestClient) -> None:
        with connect_channels(client, "/ws") as ada, connect_channels(client, "/ws") as bob:
            ada.join("chat:lobby")
            bob.join("chat:lobby")
            assert ada.push("chat:lobby", "say", {"text": "hi"}) == {"ok": True}
            bob.assert_broadcast("chat:lobby", "said", {"text": "hi"})
            with pytest.raises(ReplyError) as info:
                ada.push("chat:lobby", "say", {"text": 5})
            assert info.value.code == "invalid_payload"

Every wait is bounded by the TestClient's timeout. Frames that are not the one waited for are
kept (events per room, presence applied, heartbeat pings answered), so a test reads them in any
order it likes; :meth:`ChannelTestSession.assert_no_broadcast` makes sure nothing else came.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from brillo.realtime._clientstate import ClientState, Event, Notice, Reply

if TYPE_CHECKING:
    from brillo.testclient import TestClient, WebSocketTestSession

__all__ = ["ANY", "ChannelTestSession", "Event", "ReplyError", "connect_channels"]


class _Any:
    def __eq__(self, other: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ANY"

    __hash__ = object.__hash__


#: Matches any payload in :meth:`ChannelTestSession.assert_broadcast`.
ANY: Any = _Any()


class ReplyError(AssertionError):
    """The server answered with an error where the test expected a reply (``code``, ``message``)."""

    def __init__(self, code: str, message: str, room: str | None) -> None:
        super().__init__(f"{code}: {message} (room {room!r})")
        self.code = code
        self.message = message
        self.room = room


class ChannelTestSession:
    """The channel protocol over a :class:`~brillo.testclient.WebSocketTestSession`.

    Use :func:`connect_channels` to get one.
    """

    def __init__(self, session: WebSocketTestSession) -> None:
        self.session = session
        self.state = ClientState()
        self.events: dict[str, deque[Event]] = {}
        self.notices: list[Notice] = []
        self._replies: dict[str | int, Reply] = {}

    # -- reading -----------------------------------------------------------------------------

    def _read(self) -> None:
        """Read one frame and sort it (a ping is answered at once)."""
        frame = json.loads(self.session.receive_text())
        item = self.state.receive(frame)
        if item is None:
            return
        if isinstance(item, Reply):
            self._replies[item.ref] = item
        elif isinstance(item, Event):
            self.events.setdefault(item.room, deque()).append(item)
        else:
            if item.kind == "ping":
                self.session.send_text('{"type":"pong"}')
            self.notices.append(item)

    def _wait(self, found: Callable[[], Any]) -> Any:
        while True:
            value = found()
            if value is not None:
                return value
            self._read()

    def _reply(self, ref: str) -> Reply:
        reply: Reply = self._wait(lambda: self._replies.pop(ref, None))
        return reply

    @staticmethod
    def _payload(reply: Reply) -> Any:
        if reply.error is not None:
            raise ReplyError(
                str(reply.error.get("code")), str(reply.error.get("message")), reply.room
            )
        return reply.payload

    # -- the protocol ------------------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """Send one raw frame (to test what the server does with a malformed one, say)."""
        self.session.send_text(json.dumps(frame))

    def join(self, room: str, payload: Any = None, *, since: str | None = None) -> Any:
        """Join ``room``; the reply payload (:class:`ReplyError` when the join is refused).

        The join resumes from ``since`` (``"epoch:offset"``) when given, else from the last
        position this session saw in the room.
        """
        ref, frame = self.state.join_frame(room, payload, since)
        if since is not None:
            frame["since"] = since  # as given, even when it is no position
        self.send(frame)
        reply = self._reply(ref)
        if reply.error is not None:
            self.state.rooms.pop(room, None)
        return self._payload(reply)

    def push(self, room: str, event: str, payload: Any = None) -> Any:
        """Push ``event`` and wait for its reply; the reply payload (or :class:`ReplyError`)."""
        ref, frame = self.state.push_frame(room, event, payload)
        self.send(frame)
        assert ref is not None
        return self._payload(self._reply(ref))

    def leave(self, room: str) -> None:
        """Leave ``room`` and wait for the answer."""
        ref, frame = self.state.leave_frame(room)
        self.send(frame)
        self._payload(self._reply(ref))
        self.events.pop(room, None)

    def receive_event(self, room: str, event: str | None = None) -> Event:
        """The next message of ``room`` (of ``event`` when given, skipping others)."""

        def pick() -> Event | None:
            queue = self.events.get(room)
            while queue:
                item = queue.popleft()
                if event is None or item.event == event:
                    return item
            return None

        found: Event = self._wait(pick)
        return found

    def assert_broadcast(self, room: str, event: str, payload: Any = ANY) -> Event:
        """The next message of ``room`` is ``event`` with ``payload`` (``ANY``: whatever)."""
        got = self.receive_event(room)
        assert (got.event, got.payload) == (event, payload), (
            f"expected {event!r} {payload!r} in {room!r}, got {got.event!r} {got.payload!r}"
        )
        return got

    def sync(self) -> None:
        """Wait until every frame the server queued for this connection so far has been read.

        A ping answered with a pong: the pong is queued behind everything before it.
        """
        self.session.send_text('{"type":"ping"}')
        count = len(self.notices)
        self._wait(lambda: any(n.kind == "pong" for n in self.notices[count:]) or None)

    def assert_no_broadcast(self, room: str | None = None) -> None:
        """Nothing (in ``room``, or in any room) is waiting to be read."""
        self.sync()
        rooms = [room] if room is not None else list(self.events)
        pending = [e for r in rooms for e in self.events.get(r, ())]
        assert not pending, f"unexpected messages: {pending}"

    def presence(self, room: str) -> dict[str, list[dict[str, Any]]]:
        """``user -> [{"connection", "meta"}]`` of ``room`` as this client knows it (sync'ed)."""
        self.sync()
        state = self.state.rooms.get(room)
        return {} if state is None else state.presence_list()

    def position(self, room: str) -> str | None:
        """The last position seen in ``room`` (``"epoch:offset"``)."""
        state = self.state.rooms.get(room)
        return None if state is None else state.since

    def close(self, code: int = 1000) -> None:
        """Close the connection from the client side."""
        self.session.close(code)


@contextmanager
def connect_channels(
    client: TestClient, path: str = "/ws", **kwargs: Any
) -> Iterator[ChannelTestSession]:
    """Open ``path`` with the TestClient (``kwargs`` go to ``websocket_connect``) and speak the
    channel protocol on it."""
    subprotocols = kwargs.pop("subprotocols", None) or ["brillo.channels.v1"]
    with client.websocket_connect(path, subprotocols=subprotocols, **kwargs) as session:
        yield ChannelTestSession(session)
