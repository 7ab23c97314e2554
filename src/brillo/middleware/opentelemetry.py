"""OpenTelemetry tracing: a server span per HTTP request and per WebSocket connection.

Needs the optional ``opentelemetry-api`` package (``pip install brillo[otel]``); the
application configures the SDK and exporters. brillo itself never imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "brillo.middleware.opentelemetry needs the 'opentelemetry-api' package: "
        "pip install opentelemetry-api (or brillo[otel])."
    ) from exc

from brillo import __version__
from brillo._middleware_asgi import request_url
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["OpenTelemetryMiddleware"]

_ACTIVE_KEY = "brillo.opentelemetry"


def _route_template(scope: Scope, root_path_before: str) -> str | None:
    """The matched route's path template, prefixed with any mount path matched below us."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    root_path: str = scope.get("root_path", "")
    prefix = root_path[len(root_path_before) :] if root_path.startswith(root_path_before) else ""
    template = prefix + path
    return template or "/"


def _base_attributes(scope: Scope) -> tuple[dict[str, Any], dict[str, list[str]]]:
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        headers.setdefault(raw_name.decode("latin-1").lower(), []).append(
            raw_value.decode("latin-1")
        )
    attributes: dict[str, Any] = {
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
    }
    query: bytes = scope.get("query_string", b"")
    if query:
        attributes["url.query"] = query.decode("latin-1")
    host = headers.get("host", [None])[0]
    server = scope.get("server")
    if host:
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if name and port.isdigit():
            attributes["server.address"] = name
            attributes["server.port"] = int(port)
        else:
            attributes["server.address"] = host
            if server is not None and server[1] is not None:
                attributes["server.port"] = int(server[1])
    elif server is not None:
        attributes["server.address"] = str(server[0])
        if server[1] is not None:
            attributes["server.port"] = int(server[1])
    if scope.get("http_version"):
        attributes["network.protocol.version"] = scope["http_version"]
    client = scope.get("client")
    if client:
        attributes["client.address"] = str(client[0])
    agent = headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent[0]
    return attributes, headers


class OpenTelemetryMiddleware:
    """Trace requests and WebSocket connections with OpenTelemetry server spans.

    **HTTP**: one ``SERVER`` span per request, named ``"{METHOD} {route}"`` once the route is
    known (``"{METHOD}"`` otherwise), with ``http.request.method``, ``url.path``, ``url.scheme``,
    ``url.query``, ``server.address``/``server.port``, ``client.address``,
    ``user_agent.original``, ``http.route`` (the matched route template, from
    ``scope["route"]``) and ``http.response.status_code``. Status 5xx and exceptions mark the
    span as an error (``error.type``). Trace context is extracted from the request headers.

    **WebSocket** (beyond Starlette): one span per connection, named ``"WEBSOCKET {route}"``,
    with events ``websocket.accept`` and ``websocket.close`` (``websocket.close.code``,
    ``websocket.close.reason`` and ``websocket.close.initiator``: ``"server"`` or ``"client"``),
    and ``websocket.messages.sent`` / ``websocket.messages.received`` counts. A refused
    handshake records ``http.response.status_code`` (403 for a close before accept).

    ``excluded_urls`` are regular expressions (a sequence, or one comma-separated string)
    searched in the full URL; matching connections are not traced. ``tracer_provider`` defaults
    to the global provider, which may be configured after the app is built. Nested instances
    trace a connection once.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        excluded_urls: str | Sequence[str] = (),
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.app = app
        if isinstance(excluded_urls, str):
            excluded_urls = [p.strip() for p in excluded_urls.split(",") if p.strip()]
        self._excluded = tuple(re.compile(pattern) for pattern in excluded_urls)
        self.tracer = trace.get_tracer("brillo", __version__, tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Trace HTTP and WebSocket scopes; pass anything else through."""
        scope_type = scope["type"]
        if scope_type not in ("http", "websocket") or scope.get(_ACTIVE_KEY):
            await self.app(scope, receive, send)
            return
        if self._excluded:
            url = request_url(scope)
            if any(pattern.search(url) for pattern in self._excluded):
                await self.app(scope, receive, send)
                return
        scope[_ACTIVE_KEY] = True
        try:
            if scope_type == "http":
                await self._http(scope, receive, send)
            else:
                await self._websocket(scope, receive, send)
        finally:
            scope.pop(_ACTIVE_KEY, None)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        attributes, headers = _base_attributes(scope)
        original = scope.get("method", "")
        method = original.upper()
        attributes["http.request.method"] = method
        if original != method:
            attributes["http.request.method_original"] = original
        root_path = scope.get("root_path", "")
        with self.tracer.start_as_current_span(
            method,
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_attribute("error.type", str(status))
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, traced_send)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
            finally:
                template = _route_template(scope, root_path)
                if template is not None:
                    span.set_attribute("http.route", template)
                    span.update_name(f"{method} {template}")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        attributes, headers = _base_attributes(scope)
        attributes["network.protocol.name"] = "websocket"
        root_path = scope.get("root_path", "")
        with self.tracer.start_as_current_span(
            "WEBSOCKET",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            tracker = _WebSocketTracker(span, receive, send)
            try:
                await self.app(scope, tracker.receive, tracker.send)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
            finally:
                span.set_attribute("websocket.messages.sent", tracker.sent)
                span.set_attribute("websocket.messages.received", tracker.received)
                template = _route_template(scope, root_path)
                if template is not None:
                    span.set_attribute("http.route", template)
                    span.update_name(f"WEBSOCKET {template}")


class _WebSocketTracker:
    """Counts messages and records accept/close events for one connection's span."""

    __slots__ = ("_receive", "_send", "accepted", "received", "sent", "span")

    def __init__(self, span: Span, receive: Receive, send: Send) -> None:
        self.span = span
        self._receive = receive
        self._send = send
        self.sent = 0
        self.received = 0
        self.accepted = False

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            self.received += 1
        elif kind == "websocket.disconnect":
            code = int(message.get("code", 1005))
            self.span.add_event(
                "websocket.close",
                {
                    "websocket.close.code": code,
                    "websocket.close.reason": str(message.get("reason") or ""),
                    "websocket.close.initiator": "client",
                },
            )
            if code == 1011:
                self.span.set_status(Status(StatusCode.ERROR))
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            self.sent += 1
        elif kind == "websocket.accept":
            self.accepted = True
            subprotocol = message.get("subprotocol")
            self.span.add_event(
                "websocket.accept",
                {"websocket.subprotocol": subprotocol} if subprotocol else None,
            )
        elif kind == "websocket.close":
            code = int(message.get("code", 1000))
            self.span.add_event(
                "websocket.close",
                {
                    "websocket.close.code": code,
                    "websocket.close.reason": str(message.get("reason") or ""),
                    "websocket.close.initiator": "server",
                },
            )
            if not self.accepted:
                self.span.set_attribute("http.response.status_code", 403)
            elif code == 1011:
                self.span.set_attribute("error.type", "1011")
                self.span.set_status(Status(StatusCode.ERROR))
        elif kind == "websocket.http.response.start":
            status = int(message["status"])
            self.span.set_attribute("http.response.status_code", status)
            if status >= 500:
                self.span.set_status(Status(StatusCode.ERROR))
        await self._send(message)
