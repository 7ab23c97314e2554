"""Prometheus text exposition (format 0.0.4) of :meth:`Hub.stats`.

``Route("/metrics", PrometheusEndpoint(hub))`` serves it; :func:`render` returns the text.
"""

from __future__ import annotations

from brillo.realtime.hub import Hub
from brillo.types import Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "PrometheusEndpoint", "render"]

#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TOTALS = (
    ("connections", "gauge", "WebSocket connections in at least one room."),
    ("users", "gauge", "Distinct users with a connection in this process."),
    ("queued", "gauge", "Messages waiting in outbound queues."),
    ("max_queued", "gauge", "Longest outbound queue of any connection."),
    ("dropped", "counter", "Messages dropped by backpressure."),
    ("published", "counter", "Messages published through this process."),
    ("delivered", "counter", "Messages written to connections."),
)
_ROOM = (
    ("members", "gauge", "Local members of a room."),
    ("queued", "gauge", "Messages of a room waiting in outbound queues."),
    ("dropped", "counter", "Messages of a room dropped by backpressure."),
    ("published", "counter", "Messages published to a room through this process."),
    ("delivered", "counter", "Messages of a room written to connections."),
)


_HEARTBEAT = (
    ("pings", "Heartbeat pings written to connections."),
    ("timeouts", "Connections closed for missing their heartbeat."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(hub: Hub, *, prefix: str = "brillo_realtime") -> str:
    """The hub's counters in the Prometheus text format."""
    stats = hub.stats()
    lines: list[str] = []
    for key, kind, help_text in _TOTALS:
        name = f"{prefix}_{key}_total" if kind == "counter" else f"{prefix}_{key}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {stats[key]}"]
    rooms = stats["rooms"]
    for key, kind, help_text in _ROOM:
        name = f"{prefix}_room_{key}" + ("_total" if kind == "counter" else "")
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for room, values in sorted(rooms.items()):
            lines.append(f'{name}{{room="{_label(room)}"}} {values[key]}')
    for key, help_text in _HEARTBEAT:
        name = f"{prefix}_heartbeat_{key}_total"
        lines += [
            f"# HELP {name} {help_text}",
            f"# TYPE {name} counter",
            f"{name} {stats['heartbeat'][key]}",
        ]
    name = f"{prefix}_refused_total"
    lines += [
        f"# HELP {name} WebSocket handshakes, connections and messages refused by brillo's "
        "protection, by reason.",
        f"# TYPE {name} counter",
    ]
    for reason, count in stats["refused"].items():
        lines.append(f'{name}{{reason="{_label(reason)}"}} {count}')
    return "\n".join(lines) + "\n"


class PrometheusEndpoint:
    """An ASGI app answering any HTTP request with :func:`render` of ``hub``."""

    def __init__(self, hub: Hub, *, prefix: str = "brillo_realtime") -> None:
        self.hub = hub
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the exposition (HEAD gets the headers only)."""
        if scope["type"] != "http":
            raise RuntimeError("PrometheusEndpoint serves HTTP requests only")
        body = render(self.hub, prefix=self.prefix).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body}
        )
