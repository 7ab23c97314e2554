"""Tests for brillo.templating.Jinja2Templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import jinja2
import pytest

from brillo.applications import Brillo
from brillo.background import BackgroundTask
from brillo.middleware.base import BaseHTTPMiddleware
from brillo.requests import Request
from brillo.responses import Response
from brillo.routing import Mount, Route
from brillo.staticfiles import StaticFiles
from brillo.templating import Jinja2Templates
from brillo.testclient import TestClient
from brillo.types import ASGIApp, Message, Receive, Scope, Send


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "index.html").write_text(
        "<p>{{ greeting }} at {{ request.url.path }}</p><i>{{ unsafe }}</i>"
    )
    (directory / "links.html").write_text(
        "{{ url_for('user', user_id=7) }}|{{ url_for('static', path='/app.css') }}"
    )
    (directory / "proc.html").write_text("{{ who }}/{{ method }}")
    return directory


templates_static_dir = Path(__file__).parent  # any existing directory works for url_for


def app_for(templates: Jinja2Templates, name: str, **kwargs: Any) -> Brillo:
    def page(request: Request) -> Response:
        return templates.TemplateResponse(request, name, **kwargs)

    def user(request: Request) -> Response:
        return Response("user")

    return Brillo(
        routes=[
            Route("/", page),
            Route("/page", page),
            Route("/users/{user_id:int}", user, name="user"),
            Mount("/static", StaticFiles(directory=str(templates_static_dir)), name="static"),
        ]
    )


def test_renders_with_request_and_context(template_dir: Path) -> None:
    templates = Jinja2Templates(directory=template_dir)
    context = {"greeting": "hi", "unsafe": "<script>"}
    app = app_for(templates, "index.html", context=context)
    with TestClient(app) as client:
        response: Any = client.get("/page")  # with TestClient's .template and .context
    assert response.status_code == 200
    assert response.text == "<p>hi at /page</p><i>&lt;script&gt;</i>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.template.name == "index.html"
    assert response.context["greeting"] == "hi"
    assert isinstance(response.context["request"], Request)


def test_url_for_in_templates(template_dir: Path) -> None:
    templates = Jinja2Templates(directory=str(template_dir))
    with TestClient(app_for(templates, "links.html")) as client:
        response = client.get("/")
    assert response.text == "http://testserver/users/7|http://testserver/static/app.css"


def test_context_processors(template_dir: Path) -> None:
    def who(request: Request) -> dict[str, Any]:
        return {"who": "processor"}

    def method(request: Request) -> dict[str, Any]:
        return {"method": request.method}

    templates = Jinja2Templates(directory=template_dir, context_processors=[who, method])
    with TestClient(app_for(templates, "proc.html")) as client:
        response: Any = client.get("/")
    assert response.text == "processor/GET"
    assert response.context["who"] == "processor"


def test_response_options_pass_through(template_dir: Path) -> None:
    ran: list[str] = []
    templates = Jinja2Templates(directory=template_dir)
    app = app_for(
        templates,
        "proc.html",
        context={"who": "x", "method": "y"},
        status_code=201,
        headers={"x-extra": "1"},
        media_type="text/plain",
        background=BackgroundTask(ran.append, "bg"),
    )
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 201
    assert response.headers["x-extra"] == "1"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert ran == ["bg"]


def test_multiple_directories(tmp_path: Path, template_dir: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "only_here.html").write_text("other dir")
    templates = Jinja2Templates(directory=[template_dir, other])
    assert templates.get_template("only_here.html").render() == "other dir"
    assert templates.get_template("proc.html").name == "proc.html"
    with pytest.raises(jinja2.TemplateNotFound):
        templates.get_template("missing.html")


def test_custom_env_keeps_its_own_url_for() -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader({"t.html": "{{ url_for('x') }}"}))
    env.globals["url_for"] = lambda name: f"custom:{name}"
    templates = Jinja2Templates(env=env)
    assert templates.env is env
    assert templates.get_template("t.html").render() == "custom:x"


def test_custom_env_gets_url_for(template_dir: Path) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir), autoescape=True)
    templates = Jinja2Templates(env=env)
    assert "url_for" in env.globals
    with TestClient(app_for(templates, "links.html")) as client:
        assert client.get("/").text.startswith("http://testserver/users/7")


def test_directory_or_env_required(template_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"exactly one of them \(got neither\)"):
        Jinja2Templates()  # type: ignore[call-overload]
    with pytest.raises(AssertionError, match=r"'directory' or 'env' .* \(got both\)"):
        Jinja2Templates(directory=template_dir, env=jinja2.Environment())  # type: ignore[call-overload]


def test_old_argument_order_is_a_clear_error(template_dir: Path) -> None:
    templates = Jinja2Templates(directory=template_dir)
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(TypeError, match="template name as its second argument"):
        templates.TemplateResponse("index.html", {"request": request})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_debug_message_only_when_the_server_supports_it(template_dir: Path) -> None:
    templates = Jinja2Templates(directory=template_dir)
    cases: list[tuple[dict[str, Any], bool]] = [({}, False), ({"http.response.debug": {}}, True)]
    for extensions, expect_debug in cases:
        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": "/x",
            "headers": [],
            "query_string": b"",
            "extensions": extensions,
        }
        request = Request(scope)
        response = templates.TemplateResponse(request, "proc.html", {"who": 1, "method": 2})
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message, sent: list[Message] = sent) -> None:
            sent.append(message)

        with anyio.fail_after(5):
            await response(scope, receive, send)
        kinds = [m["type"] for m in sent]
        if expect_debug:
            assert kinds[0] == "http.response.debug"
            assert sent[0]["info"]["template"] is response.template
            assert sent[0]["info"]["context"] is response.context
        else:
            assert kinds == ["http.response.start", "http.response.body"]
        assert sent[-1]["body"] == b"1/2"


@pytest.mark.parametrize("kind", ["base_http", "pure_asgi"])
def test_template_and_context_reach_the_test_behind_middleware(
    template_dir: Path, kind: str
) -> None:
    class Passthrough(BaseHTTPMiddleware):
        async def dispatch(
            self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            return await call_next(request)

    class PureASGI:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

    middleware_class: Any = Passthrough if kind == "base_http" else PureASGI
    templates = Jinja2Templates(directory=template_dir)
    app = app_for(templates, "proc.html", context={"who": "ann", "method": "get"})
    app.add_middleware(middleware_class)
    response = TestClient(app).get("/")
    assert response.text == "ann/get"
    assert response.template.name == "proc.html"  # type: ignore[attr-defined]
    assert response.context["who"] == "ann"  # type: ignore[attr-defined]
    assert response.extensions["http.response.debug"]["template"] is response.template  # type: ignore[attr-defined]
