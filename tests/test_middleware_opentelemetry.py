from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from brillo.middleware.opentelemetry import OpenTelemetryMiddleware
from brillo.requests import Request
from brillo.responses import PlainTextResponse, Response
from brillo.routing import Mount, Route, Router, WebSocketRoute
from brillo.websockets import WebSocket
from tests.support.asgi import call_http, call_ws, http_scope, ws_scope


async def item(request: Request) -> Response:
    return PlainTextResponse(f"item {request.path_params['id']}")


async def echo(request: Request) -> Response:
    return PlainTextResponse(await request.body())


async def fail(request: Request) -> Response:
    raise ValueError("kaboom")


async def five_hundred(request: Request) -> Response:
    return PlainTextResponse("nope", status_code=503)


async def chat(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat")
    while True:
        text = await websocket.receive_text()
        if text == "bye":
            await websocket.close(code=4000, reason="done")
            return
        await websocket.send_text(text.upper())
        await websocket.send_text(text.lower())


async def deny(websocket: WebSocket) -> None:
    await websocket.close(code=1008)


async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    raise RuntimeError("ws crash")


router = Router(
    routes=[
        Route("/items/{id:int}", item),
        Route("/fail", fail),
        Route("/echo", echo, methods=["POST"]),
        Route("/503", five_hundred),
        Mount("/api/{version}", routes=[Route("/things/{id}", item)]),
        WebSocketRoute("/ws/{room}", chat),
        WebSocketRoute("/deny", deny),
        WebSocketRoute("/crash", crash),
    ]
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def app(exporter: InMemorySpanExporter) -> OpenTelemetryMiddleware:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryMiddleware(
        router, tracer_provider=provider, excluded_urls="/health$", trace_websockets=True
    )


def make_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


@pytest.mark.anyio
async def test_http_span(app: Any, exporter: InMemorySpanExporter) -> None:
    headers = [("user-agent", "pytest"), ("host", "example.com:8080")]
    result = await call_http(app, http_scope("/items/42", headers=headers, query=b"a=1"))
    assert result.body == b"item 42"
    span = only_span(exporter)
    assert span.name == "GET /items/{id:int}"
    assert span.kind is SpanKind.SERVER
    attrs = dict(span.attributes or {})
    assert attrs == {
        "http.request.method": "GET",
        "url.path": "/items/42",
        "url.scheme": "http",
        "url.query": "a=1",
        "server.address": "example.com",
        "server.port": 8080,
        "network.protocol.version": "1.1",
        "client.address": "127.0.0.1",
        "user_agent.original": "pytest",
        "http.response.status_code": 200,
        "http.route": "/items/{id:int}",
    }
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "address", "port"),
    [
        ("example.com:8080", "example.com", 8080),
        ("[::1]:9000", "[::1]", 9000),
        ("example.com", "example.com", 80),  # no port in the header: the server's
        # Malformed Host headers are never reported as the server's address.
        ("evil.com/x.example.com", "testserver", 80),
        ("example.com:000080x", "testserver", 80),
        ("[:::]", "testserver", 80),
    ],
)
async def test_server_address_from_a_well_formed_host_only(
    app: Any, exporter: InMemorySpanExporter, host: str, address: str, port: int
) -> None:
    await call_http(app, http_scope("/items/1", headers=[("host", host)]))
    attrs = dict(only_span(exporter).attributes or {})
    assert (attrs["server.address"], attrs["server.port"]) == (address, port)


@pytest.mark.anyio
async def test_http_route_under_mount(app: Any, exporter: InMemorySpanExporter) -> None:
    await call_http(app, http_scope("/api/v1/things/7"))
    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/v1/things/{id}"


@pytest.mark.anyio
async def test_http_exception_marks_error(app: Any, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError, match="kaboom"):
        await call_http(app, http_scope("/fail"))
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]


@pytest.mark.anyio
async def test_http_5xx_marks_error(app: Any, exporter: InMemorySpanExporter) -> None:
    await call_http(app, http_scope("/503"))
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "503"


@pytest.mark.anyio
async def test_unmatched_route_keeps_method_name(app: Any, exporter: InMemorySpanExporter) -> None:
    result = await call_http(app, http_scope("/missing"))
    assert result.status == 404
    span = only_span(exporter)
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes


@pytest.mark.anyio
async def test_excluded_urls(app: Any, exporter: InMemorySpanExporter) -> None:
    await call_http(app, http_scope("/health"))
    assert exporter.get_finished_spans() == ()


@pytest.mark.anyio
async def test_trace_context_extracted(app: Any, exporter: InMemorySpanExporter) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await call_http(app, http_scope("/items/1", headers=[("traceparent", parent)]))
    span = only_span(exporter)
    assert span.context is not None
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent is not None
    assert span.parent.span_id == 0xB7AD6B7169203331


@pytest.mark.anyio
async def test_nested_instances_trace_once(exporter: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inner = OpenTelemetryMiddleware(router, tracer_provider=provider)
    outer = OpenTelemetryMiddleware(inner, tracer_provider=provider)
    await call_http(outer, http_scope("/items/1"))
    assert len(exporter.get_finished_spans()) == 1


@pytest.mark.anyio
async def test_websocket_span(app: Any, exporter: InMemorySpanExporter) -> None:
    incoming = [
        {"type": "websocket.receive", "text": "Hi"},
        {"type": "websocket.receive", "text": "There"},
        {"type": "websocket.receive", "text": "bye"},
    ]
    sent = await call_ws(app, ws_scope("/ws/lobby"), incoming)
    assert [m["type"] for m in sent].count("websocket.send") == 4
    span = only_span(exporter)
    assert span.name == "WEBSOCKET /ws/{room}"
    assert span.kind is SpanKind.SERVER
    attrs = dict(span.attributes or {})
    assert attrs["websocket.messages.sent"] == 4
    assert attrs["websocket.messages.received"] == 3
    assert attrs["http.route"] == "/ws/{room}"
    assert attrs["url.scheme"] == "ws"
    assert attrs["network.protocol.name"] == "websocket"
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert events == [
        ("websocket.accept", {"websocket.subprotocol": "chat"}),
        (
            "websocket.close",
            {
                "websocket.close.code": 4000,
                "websocket.close.reason": "done",
                "websocket.close.initiator": "server",
            },
        ),
    ]


@pytest.mark.anyio
async def test_websocket_client_close(app: Any, exporter: InMemorySpanExporter) -> None:
    await call_ws(app, ws_scope("/ws/lobby"), [{"type": "websocket.receive", "text": "x"}])
    span = only_span(exporter)
    close = [e for e in span.events if e.name == "websocket.close"]
    assert [dict(e.attributes or {}) for e in close] == [
        {
            "websocket.close.code": 1000,
            "websocket.close.reason": "",
            "websocket.close.initiator": "client",
        }
    ]


@pytest.mark.anyio
async def test_websocket_refused_before_accept(app: Any, exporter: InMemorySpanExporter) -> None:
    await call_ws(app, ws_scope("/deny"))
    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 403
    assert [e.name for e in span.events] == ["websocket.close"]


@pytest.mark.anyio
async def test_websocket_crash(app: Any, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError, match="ws crash"):
        await call_ws(app, ws_scope("/crash"))
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "RuntimeError"


@pytest.mark.anyio
async def test_websockets_untraced_by_default(exporter: InMemorySpanExporter) -> None:
    app = OpenTelemetryMiddleware(router, tracer_provider=make_provider(exporter))
    sent = await call_ws(app, ws_scope("/ws/lobby"), [{"type": "websocket.receive", "text": "x"}])
    assert sent[0]["type"] == "websocket.accept"
    assert exporter.get_finished_spans() == ()


@pytest.mark.anyio
async def test_exclusion_holds_for_nested_instances(exporter: InMemorySpanExporter) -> None:
    provider = make_provider(exporter)
    inner = OpenTelemetryMiddleware(router, tracer_provider=provider)
    outer = OpenTelemetryMiddleware(
        Router([Mount("/sub", app=inner)]), tracer_provider=provider, excluded_urls="/sub/items/"
    )
    assert (await call_http(outer, http_scope("/sub/items/1"))).body == b"item 1"
    assert exporter.get_finished_spans() == ()
    # Not excluded: traced once, by the outer instance.
    await call_http(outer, http_scope("/sub/503"))
    assert only_span(exporter).name == "GET /sub/503"


@pytest.mark.anyio
async def test_global_provider_configured_after_the_app_is_built(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace

    # The process-wide provider can be set only once, so the lookup is redirected instead.
    current: list[trace.TracerProvider] = [trace.ProxyTracerProvider()]
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: current[0])
    app = OpenTelemetryMiddleware(router)
    await call_http(app, http_scope("/items/1"))  # not configured yet: nothing recorded
    current[0] = make_provider(exporter)
    await call_http(app, http_scope("/items/2"))
    assert only_span(exporter).name == "GET /items/{id:int}"
    current[0] = trace.ProxyTracerProvider()  # once configured, the tracer is kept
    await call_http(app, http_scope("/items/3"))
    assert len(exporter.get_finished_spans()) == 2


async def plain_app(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("raw")(scope, receive, send)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("routes", "path", "template"),
    [
        ([Mount("/api", app=plain_app)], "/api/x/y", "/api"),
        ([Mount("/api", routes=[Route("/known", item)])], "/api/missing", "/api"),
        ([Mount("/org/{org}", app=plain_app)], "/org/acme/x", "/org/{org}"),
        ([Mount("/v1", routes=[Mount("/files", app=plain_app)])], "/v1/files/a", "/v1/files"),
    ],
)
async def test_span_named_after_mount_when_it_matched_last(
    exporter: InMemorySpanExporter, routes: list[Any], path: str, template: str
) -> None:
    app = OpenTelemetryMiddleware(Router(routes), tracer_provider=make_provider(exporter))
    await call_http(app, http_scope(path))
    span = only_span(exporter)
    assert span.name == f"GET {template}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == template


@pytest.mark.anyio
async def test_lifespan_untouched(app: Any, exporter: InMemorySpanExporter) -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await OpenTelemetryMiddleware(inner)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert exporter.get_finished_spans() == ()


def collect(reader: Any) -> dict[str, list[Any]]:
    """Metric name -> its data points, from an InMemoryMetricReader."""
    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


@pytest.mark.anyio
async def test_http_metrics() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    app = OpenTelemetryMiddleware(
        router,
        meter_provider=MeterProvider(metric_readers=[reader]),
        tracer_provider=TracerProvider(),
        record_active_requests=True,
        record_body_sizes=True,
    )
    await call_http(app, http_scope("/echo", "POST", [("content-length", "3")]), b"abc")
    await call_http(app, http_scope("/items/6"))
    await call_http(app, {**http_scope("/items/6"), "method": "BREW"})
    with pytest.raises(ValueError, match="kaboom"):
        await call_http(app, http_scope("/fail"))
    points = collect(reader)

    durations = {
        tuple(sorted(p.attributes.items())): p.count for p in points["http.server.request.duration"]
    }
    ok = (
        ("http.request.method", "GET"),
        ("http.response.status_code", 200),
        ("http.route", "/items/{id:int}"),
        ("network.protocol.version", "1.1"),
        ("url.scheme", "http"),
    )
    assert durations[ok] == 1
    other = [k for k in durations if ("http.request.method", "_OTHER") in k]
    assert len(other) == 1
    failed = [k for k in durations if ("error.type", "ValueError") in k]
    assert len(failed) == 1
    assert ("http.route", "/fail") in failed[0]

    (active,) = [
        p
        for p in points["http.server.active_requests"]
        if p.attributes["http.request.method"] == "GET"
    ]
    assert active.value == 0
    request_sizes = {
        p.attributes["http.request.method"]: p.sum for p in points["http.server.request.body.size"]
    }
    assert request_sizes["POST"] == 3
    response_sizes = [p.sum for p in points["http.server.response.body.size"]]
    assert sum(response_sizes) >= len(b"abc") + len(b"item 6")
    unread = {
        p.attributes.get("http.route"): p.sum for p in points["http.server.request.body.size"]
    }
    assert unread["/items/{id:int}"] == 0  # unread bodies are not drained or counted
