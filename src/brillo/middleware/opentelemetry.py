"""OpenTelemetry tracing: a server span per HTTP request and per WebSocket connection.

Needs the optional ``opentelemetry-api`` package (``pip install brillo[otel]``); the
application configures the SDK and exporters. brillo itself never imports this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

try:
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "brillo.middleware.opentelemetry needs the 'opentelemetry-api' package: "
        "pip install opentelemetry-api (or brillo[otel])."
    ) from exc

from brillo import __version__
from brillo._utils import header_host, port_number, scope_url
from brillo.routing import Mount
from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["OpenTelemetryMiddleware"]

# Set in the scope while an instance handles (traces or deliberately skips) a connection, so
# nested instances (in mounted apps) neither trace it again nor trace what was excluded.
_ACTIVE_KEY = "brillo.opentelemetry"
_KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")
)
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def _route_template(scope: Scope, root_path_before: str) -> str | None:
    """The matched route's path template, prefixed with any mount path matched below us."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    root_path: str = scope.get("root_path", "")
    prefix = root_path[len(root_path_before) :] if root_path.startswith(root_path_before) else ""
    if isinstance(route, Mount) and path:
        # The mount matched last (its app resolved no route of its own): the prefix ends with
        # the mount's own matched segments, which its template replaces.
        for _ in range(path.count("/")):
            prefix = prefix[: prefix.rfind("/")] if "/" in prefix else ""
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
    host = header_host(scope)  # None when absent or malformed: the server address then
    server = scope.get("server")
    if host is not None:
        name, port = host
        attributes["server.address"] = name
        number = port_number(port) if port else None
        if number is not None:
            attributes["server.port"] = number
        elif server is not None and server[1] is not None:
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
    """Trace requests (and, with ``trace_websockets``, WebSocket connections) with server spans.

    **HTTP**: one ``SERVER`` span per request, named ``"{METHOD} {route}"`` once the route is
    known (``"{METHOD}"`` otherwise), with ``http.request.method``, ``url.path``, ``url.scheme``,
    ``url.query``, ``server.address``/``server.port``, ``client.address``,
    ``user_agent.original``, ``http.route`` (the matched route template, from
    ``scope["route"]``) and ``http.response.status_code``. Status 5xx and exceptions mark the
    span as an error (``error.type``). Trace context is extracted from the request headers.

    **WebSocket** (opt-in with ``trace_websockets=True``, beyond Starlette; otherwise WebSocket
    connections pass through untraced): one span per connection, named ``"WEBSOCKET {route}"``,
    with events ``websocket.accept`` and ``websocket.close`` (``websocket.close.code``,
    ``websocket.close.reason`` and ``websocket.close.initiator``: ``"server"`` or ``"client"``),
    and ``websocket.messages.sent`` / ``websocket.messages.received`` counts. A refused
    handshake records ``http.response.status_code`` (403 for a close before accept).

    **Metrics** (HTTP): ``http.server.request.duration`` (seconds, histogram, including the
    response's background tasks) with ``http.request.method`` (``_OTHER`` for unknown methods),
    ``url.scheme``, ``http.route``, ``http.response.status_code`` and ``error.type``. With
    ``record_active_requests``: ``http.server.active_requests``; with ``record_body_sizes``:
    ``http.server.request.body.size`` and ``http.server.response.body.size`` (bytes).

    ``excluded_urls`` are regular expressions (a sequence, or one comma-separated string)
    searched in the full URL; matching connections are not traced, by this instance nor by
    instances nested below it. ``tracer_provider`` and ``meter_provider`` default to the global
    providers, which may be configured after the app is built (the tracer is looked up on each
    request until a configured provider answers). Nested instances trace a connection once.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        excluded_urls: str | Sequence[str] = (),
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        record_active_requests: bool = False,
        record_body_sizes: bool = False,
        trace_websockets: bool = False,
    ) -> None:
        self.app = app
        if isinstance(excluded_urls, str):
            excluded_urls = [p.strip() for p in excluded_urls.split(",") if p.strip()]
        self._excluded = tuple(re.compile(pattern) for pattern in excluded_urls)
        self._traced_types = ("http", "websocket") if trace_websockets else ("http",)
        self._tracer_provider = tracer_provider
        self._tracer: trace.Tracer | None = None
        meter = metrics.get_meter("brillo", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._active: metrics.UpDownCounter | None = None
        if record_active_requests:
            self._active = meter.create_up_down_counter(
                "http.server.active_requests",
                unit="{request}",
                description="Number of active HTTP server requests.",
            )
        self._request_size: metrics.Histogram | None = None
        self._response_size: metrics.Histogram | None = None
        if record_body_sizes:
            self._request_size = meter.create_histogram(
                "http.server.request.body.size", unit="By", description="Size of request bodies."
            )
            self._response_size = meter.create_histogram(
                "http.server.response.body.size",
                unit="By",
                description="Size of response bodies.",
            )

    @property
    def tracer(self) -> trace.Tracer:
        """The tracer spans come from, resolved on first use.

        Without an explicit ``tracer_provider`` the global one is asked; while it is not yet
        configured (it hands out proxy tracers) it is asked again on the next request, so an
        SDK set up after the app was built is picked up.
        """
        tracer = self._tracer
        if tracer is None:
            provider = self._tracer_provider
            if provider is None:
                provider = trace.get_tracer_provider()
            tracer = provider.get_tracer("brillo", __version__)
            if not isinstance(tracer, trace.ProxyTracer):
                self._tracer = tracer
        return tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Trace HTTP (and opted-in WebSocket) scopes; pass anything else through."""
        scope_type = scope["type"]
        if scope_type not in self._traced_types or scope.get(_ACTIVE_KEY):
            await self.app(scope, receive, send)
            return
        scope[_ACTIVE_KEY] = True
        try:
            if self._excluded:
                url = scope_url(scope)
                if any(pattern.search(url) for pattern in self._excluded):
                    await self.app(scope, receive, send)
                    return
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
        metric_attributes: dict[str, Any] = {
            "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
            "url.scheme": attributes["url.scheme"],
        }
        active = self._active
        if active is not None:
            active.add(1, metric_attributes)
        sizes = self._request_size is not None
        request_bytes = response_bytes = 0
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            method,
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:

            async def traced_receive() -> Message:
                nonlocal request_bytes
                message = await receive()
                if message["type"] == "http.request":
                    request_bytes += len(message.get("body", b""))
                return message

            async def traced_send(message: Message) -> None:
                nonlocal response_bytes
                kind = message["type"]
                if kind == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    metric_attributes["http.response.status_code"] = status
                    if status >= 500:
                        span.set_attribute("error.type", str(status))
                        metric_attributes["error.type"] = str(status)
                        span.set_status(Status(StatusCode.ERROR))
                elif kind == "http.response.body" and sizes:
                    response_bytes += len(message.get("body", b""))
                await send(message)

            try:
                await self.app(scope, traced_receive if sizes else receive, traced_send)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                metric_attributes["error.type"] = type(exc).__qualname__
                raise
            finally:
                template = _route_template(scope, root_path)
                if template is not None:
                    span.set_attribute("http.route", template)
                    span.update_name(f"{method} {template}")
                    metric_attributes["http.route"] = template
                if scope.get("http_version"):
                    metric_attributes["network.protocol.version"] = scope["http_version"]
                self._duration.record(time.perf_counter() - started, metric_attributes)
                if self._request_size is not None and self._response_size is not None:
                    self._request_size.record(request_bytes, metric_attributes)
                    self._response_size.record(response_bytes, metric_attributes)
                if active is not None:
                    active.add(
                        -1,
                        {
                            "http.request.method": metric_attributes["http.request.method"],
                            "url.scheme": metric_attributes["url.scheme"],
                        },
                    )

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
