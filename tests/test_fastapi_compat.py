"""FastAPI runs on brillo: its application class, routing, dependency injection and handlers.

``tests/_fastapi_on_brillo.py`` builds a FastAPI app with every ``starlette[.X]`` import served
by ``brillo[.X]``. That import hook is process-wide, so the app runs in a subprocess and reports
what it saw as JSON; this session never imports FastAPI or starlette. (The same app under real
uvicorn: tests/integration/test_fastapi_live.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_fastapi(*args: str) -> dict[str, Any]:
    """Run ``python -m tests._fastapi_on_brillo ARGS`` and return the JSON it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests._fastapi_on_brillo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"the FastAPI app failed:\n{proc.stderr}"
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def ok(body: Any, status: int = 200) -> dict[str, Any]:
    return {"status": status, "body": body, "middleware": "ran"}


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def seen(request: pytest.FixtureRequest) -> dict[str, Any]:
    return run_fastapi(request.param)


def test_the_real_starlette_is_never_imported(seen: dict[str, Any]) -> None:
    # Every fastapi module imports: brillo has each starlette name FastAPI uses ...
    assert seen["fastapi_import_failures"] == {}
    # ... and, all of them imported, no module under the starlette name is the real one.
    modules = seen["modules"]
    assert modules["foreign"] == []
    assert modules["starlette"] == "brillo"
    assert modules["routing"] == "brillo.routing"
    # FastAPI subclasses brillo's application class (and skips its __init__).
    assert modules["fastapi_base"] == ["brillo.applications"]


def test_path_query_header_params_and_dependencies(seen: dict[str, Any]) -> None:
    assert seen["item"] == ok(
        {
            "item_id": 3,
            "q": "hi",
            "page": {"offset": 0, "limit": 5},
            "resource": "resource",
            "x_token": "t0k",
        }
    )
    assert seen["item_bad_path"]["status"] == 422
    assert seen["item_bad_path"]["body"]["detail"][0]["loc"] == ["path", "item_id"]
    assert seen["item_bad_query"]["status"] == 422
    assert seen["item_bad_query"]["body"]["detail"][0]["loc"] == ["query", "limit"]
    assert seen["user"] == ok({"user_id": "ada"})  # an APIRouter with a prefix
    assert seen["sync"] == ok("sync abc")  # a sync endpoint, run in the thread pool


def test_route_body_limit(seen: dict[str, Any]) -> None:
    # FastAPI's per-route max_body_size runs brillo's RequestBodyLimitMiddleware: 413 whether
    # the body is announced by Content-Length or streamed past the limit.
    assert seen["limited_small"] == ok({"name": "a"})
    assert seen["limited_large"]["status"] == 413
    assert seen["limited_streamed"]["status"] == 413


def test_request_body_response_model_and_background_task(seen: dict[str, Any]) -> None:
    # response_model drops "tags"; the background task runs after the response.
    assert seen["create"] == ok({"name": "lamp", "price": 9.5}, status=201)
    assert seen["create_invalid"]["status"] == 422
    assert seen["create_invalid"]["body"]["detail"][0]["loc"] == ["body", "price"]
    events = seen["events"]
    assert events.index("created lamp") == events.index("asgi-mw http /items") + 1


def test_dependency_with_yield_is_cleaned_up_per_request(seen: dict[str, Any]) -> None:
    events = seen["events"]
    assert events.count("resource open") == events.count("resource closed") == 3
    first = events.index("resource open")
    assert events[first : first + 2] == ["resource open", "resource closed"]


def test_exception_handlers(seen: dict[str, Any]) -> None:
    assert seen["missing"] == {**ok({"detail": "no such thing"}, 404), "x-error": "missing"}
    assert seen["teapot"] == ok({"teapot": "brillo", "path": "/teapot"}, 418)
    assert seen["not_found"] == ok({"detail": "Not Found"}, 404)
    assert seen["method_not_allowed"] == ok({"detail": "Method Not Allowed"}, 405)
    # The same exception instance raised by every request: handled each time, and it keeps no
    # traceback (which would otherwise grow and pin every request's frames).
    assert seen["shared_error"] == [ok({"detail": "shared"}, 409)] * 2
    assert seen["shared_error_traceback_cleared"] is True


def test_lifespan_state_url_for_and_openapi(seen: dict[str, Any]) -> None:
    assert seen["state"] == ok({"greeting": "hello from the lifespan", "app_state": True})
    assert seen["url_for"] == ok({"item": "http://testserver/items/7"})
    assert "/items/{item_id}" in seen["openapi_paths"]
    assert "/users/{user_id}" in seen["openapi_paths"]
    assert seen["events"][0] == "startup"
    assert seen["events"][-1] == "shutdown"


def test_middleware_sees_every_connection(seen: dict[str, Any]) -> None:
    # The @app.middleware("http") header is on every response checked above; the pure ASGI
    # middleware saw WebSockets too.
    assert "asgi-mw websocket /ws/lobby" in seen["events"]
    assert "asgi-mw http /teapot" in seen["events"]


def test_websockets(seen: dict[str, Any]) -> None:
    assert seen["ws_echo"] == {
        "first": {"room": "lobby", "nick": "ada", "echo": {"n": 1}},
        "close": {"type": "websocket.close", "code": 1000, "reason": ""},
    }
    assert seen["ws_refused"] == {"refused": True, "code": 1008, "reason": "go away"}
    # A missing required query parameter: FastAPI's validation handler closes with 1008.
    assert seen["ws_invalid"]["refused"] is True
    assert seen["ws_invalid"]["code"] == 1008
