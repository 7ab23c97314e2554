"""A FastAPI application running on brillo instead of Starlette.

Importing this module installs an import hook that answers every ``import starlette`` /
``import starlette.X`` with ``brillo`` / ``brillo.X`` (the very same module objects), then
imports FastAPI and builds ``app``. The hook is process-wide: import this module only in a fresh
interpreter (a subprocess, or ``python -m uvicorn tests._fastapi_on_brillo:app``), never in the
pytest session itself.

The real ``starlette`` package (installed as FastAPI's dependency) must never be imported here:
the hook refuses to fall back to it, and :func:`foreign_starlette_modules` lists any module under
the ``starlette`` name that is not brillo's (``GET /modules`` returns that list).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_ALIAS = "starlette"
_TARGET = "brillo"


class _ExistingModuleLoader(importlib.abc.Loader):
    """Hands out an already imported module under a second name."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        # importlib overwrote __spec__ with the alias spec; the module keeps its real one.
        module.__spec__ = self.spec


class StarletteIsBrillo(importlib.abc.MetaPathFinder):
    """Serve ``starlette[.X]`` from ``brillo[.X]``; never from the real starlette package."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real = _TARGET + fullname[len(_ALIAS) :]
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as exc:
            if exc.name != real:
                raise
            # No fallback to the real starlette: a missing brillo module is an error.
            raise ModuleNotFoundError(
                f"{fullname!r} is served by brillo, which has no {real!r}", name=fullname
            ) from None
        is_package = hasattr(module, "__path__")
        spec = importlib.machinery.ModuleSpec(
            fullname, _ExistingModuleLoader(module), is_package=is_package
        )
        if is_package:
            spec.submodule_search_locations = list(module.__path__)
        return spec


def install() -> None:
    """Put the hook first on ``sys.meta_path`` (before anything imported starlette)."""
    already = sorted(name for name in sys.modules if name.split(".")[0] == _ALIAS)
    if already:
        raise RuntimeError(f"starlette was imported before the brillo alias: {already}")
    if not any(isinstance(finder, StarletteIsBrillo) for finder in sys.meta_path):
        sys.meta_path.insert(0, StarletteIsBrillo())


def foreign_starlette_modules() -> list[str]:
    """Modules imported under the ``starlette`` name that are not brillo's (should be none)."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == _ALIAS and getattr(module, "__name__", "").split(".")[0] != _TARGET
    )


install()

# From here on, ``starlette`` is brillo. -------------------------------------------------------

import contextlib  # noqa: E402
import logging  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from typing import Annotated  # noqa: E402

from fastapi import (  # noqa: E402
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
    status,
)
from fastapi.middleware.gzip import GZipMiddleware  # noqa: E402
from fastapi.responses import JSONResponse, PlainTextResponse  # noqa: E402
from pydantic import BaseModel  # noqa: E402

#: What happened outside the responses (dependency cleanups, background tasks), in order.
EVENTS: list[str] = []
#: ERROR records logged by the server (uvicorn's "Exception in ASGI application" ...).
SERVER_ERRORS: list[str] = []


class _RecordErrors(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        SERVER_ERRORS.append(f"{record.name}: {record.getMessage()}")


logging.getLogger("uvicorn.error").addHandler(_RecordErrors(logging.ERROR))


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class ItemOut(BaseModel):
    name: str
    price: float


class TeapotError(Exception):
    def __init__(self, who: str) -> None:
        self.who = who


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    EVENTS.append("startup")
    yield {"greeting": "hello from the lifespan"}
    EVENTS.append("shutdown")


app = FastAPI(title="brillo-compat", lifespan=lifespan)


@app.middleware("http")
async def add_header(request: Request, call_next: Any) -> Any:
    response = await call_next(request)
    response.headers["X-Middleware"] = "ran"
    return response


class PathLogMiddleware:
    """A pure ASGI middleware: records the scope type and path of every connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            EVENTS.append(f"asgi-mw {scope['type']} {scope['path']}")
        await self.app(scope, receive, send)


app.add_middleware(PathLogMiddleware)
app.add_middleware(GZipMiddleware, minimum_size=1000)


@app.exception_handler(TeapotError)
async def teapot_handler(request: Request, exc: TeapotError) -> JSONResponse:
    return JSONResponse({"teapot": exc.who, "path": request.url.path}, status_code=418)


def pagination(offset: int = 0, limit: Annotated[int, Query(le=100)] = 10) -> dict[str, int]:
    return {"offset": offset, "limit": limit}


def tracked_resource() -> Iterator[str]:
    EVENTS.append("resource open")
    try:
        yield "resource"
    finally:
        EVENTS.append("resource closed")


@app.get("/items/{item_id}")
async def read_item(
    item_id: int,
    page: Annotated[dict[str, int], Depends(pagination)],
    resource: Annotated[str, Depends(tracked_resource)],
    q: str | None = None,
    x_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "page": page, "resource": resource, "x_token": x_token}


@app.post("/items", status_code=201, response_model=ItemOut)
async def create_item(item: Item, background: BackgroundTasks) -> Item:
    background.add_task(EVENTS.append, f"created {item.name}")
    return item


@app.get("/sync/{name}")
def sync_endpoint(name: str) -> PlainTextResponse:
    return PlainTextResponse(f"sync {name}")


@app.get("/missing")
async def missing() -> None:
    raise HTTPException(status_code=404, detail="no such thing", headers={"X-Error": "missing"})


@app.get("/teapot")
async def teapot() -> None:
    raise TeapotError("brillo")


@app.get("/state")
async def lifespan_state(request: Request) -> dict[str, Any]:
    return {"greeting": request.state.greeting, "app_state": request.app.state.ready}


@app.get("/events")
async def events() -> dict[str, list[str]]:
    return {"events": EVENTS, "server_errors": SERVER_ERRORS}


@app.get("/modules")
async def modules() -> dict[str, Any]:
    import fastapi

    return {
        "foreign": foreign_starlette_modules(),
        "starlette": sys.modules["starlette"].__name__,
        "routing": sys.modules["starlette.routing"].__name__,
        "fastapi_base": [cls.__module__ for cls in type(app).__mro__[1:2]],
        "fastapi": fastapi.__version__,
    }


@app.get("/url-for")
async def url_for(request: Request) -> dict[str, str]:
    return {"item": str(request.url_for("read_item", item_id=7))}


router = APIRouter(prefix="/users", tags=["users"])


@router.get("/{user_id}")
async def read_user(user_id: str) -> dict[str, str]:
    return {"user_id": user_id}


app.include_router(router)


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, nick: str = "anon") -> None:
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_json()
            if data.get("close"):
                await websocket.close(code=status.WS_1000_NORMAL_CLOSURE)
                return
            await websocket.send_json({"room": room, "nick": nick, "echo": data})
    except WebSocketDisconnect:
        EVENTS.append(f"ws {room} disconnected")


@app.websocket("/ws-refused")
async def refused(websocket: WebSocket) -> None:
    raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason="go away")


@app.websocket("/ws-needs-token")
async def needs_token(websocket: WebSocket, token: str) -> None:
    await websocket.accept()
    await websocket.send_text(token)
    await websocket.close()


@app.post("/limited", max_body_size=32)
async def limited(item: Item) -> dict[str, str]:
    return {"name": item.name}


app.state.ready = True


#: Raised by every request to ``/shared-error``: a handled exception must not keep a traceback.
SHARED_ERROR = HTTPException(status_code=409, detail="shared")


@app.get("/shared-error")
async def shared_error() -> None:
    raise SHARED_ERROR


def observe(backend: str) -> dict[str, Any]:
    """Drive ``app`` through brillo's TestClient on ``backend``; return what was seen."""
    from fastapi.testclient import TestClient

    seen: dict[str, Any] = {}

    def http(response: Any) -> dict[str, Any]:
        return {
            "status": response.status_code,
            "body": response.json()
            if response.headers.get("content-type") == "application/json"
            else response.text,
            "middleware": response.headers.get("x-middleware"),
        }

    with TestClient(app, backend=backend) as client:  # type: ignore[arg-type]
        seen["item"] = http(client.get("/items/3?q=hi&limit=5", headers={"X-Token": "t0k"}))
        seen["item_bad_path"] = http(client.get("/items/three"))
        seen["item_bad_query"] = http(client.get("/items/3?limit=1000"))
        seen["create"] = http(
            client.post("/items", json={"name": "lamp", "price": 9.5, "tags": ["x"]})
        )
        seen["create_invalid"] = http(client.post("/items", json={"name": "lamp"}))
        seen["sync"] = http(client.get("/sync/abc"))
        seen["limited_small"] = http(client.post("/limited", json={"name": "a", "price": 1}))
        seen["limited_large"] = http(client.post("/limited", json={"name": "a" * 64, "price": 1}))
        seen["limited_streamed"] = http(
            client.post("/limited", content=iter([b'{"name": "', b"a" * 64, b'", "price": 1}']))
        )
        missing = client.get("/missing")
        seen["missing"] = {**http(missing), "x-error": missing.headers.get("x-error")}
        seen["teapot"] = http(client.get("/teapot"))
        seen["state"] = http(client.get("/state"))
        seen["url_for"] = http(client.get("/url-for"))
        seen["user"] = http(client.get("/users/ada"))
        seen["not_found"] = http(client.get("/nowhere"))
        seen["method_not_allowed"] = http(client.delete("/users/ada"))
        seen["shared_error"] = [http(client.get("/shared-error")) for _ in range(2)]
        seen["shared_error_traceback_cleared"] = SHARED_ERROR.__traceback__ is None
        openapi = client.get("/openapi.json").json()
        seen["openapi_paths"] = sorted(openapi["paths"])
        with client.websocket_connect("/ws/lobby?nick=ada") as ws:
            ws.send_json({"n": 1})
            first = ws.receive_json()
            ws.send_json({"close": True})
            seen["ws_echo"] = {"first": first, "close": ws.receive()}
        seen["ws_refused"] = _refusal(client, "/ws-refused")
        seen["ws_invalid"] = _refusal(client, "/ws-needs-token")
        seen["fastapi_import_failures"] = import_every_fastapi_module()
        seen["modules"] = client.get("/modules").json()
    seen["events"] = list(EVENTS)
    return seen


def import_every_fastapi_module() -> dict[str, str]:
    """Import every module of the fastapi package; return ``{module: error}`` for failures.

    Between them they import every ``starlette`` name FastAPI uses (brillo must have them all).
    ``fastapi.__main__`` and ``fastapi.cli`` are left out: they need the separate fastapi-cli.
    """
    import importlib
    import pkgutil

    import fastapi

    failures: dict[str, str] = {}
    for info in pkgutil.walk_packages(fastapi.__path__, "fastapi."):
        if info.name in ("fastapi.__main__", "fastapi.cli"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failures[info.name] = f"{type(exc).__name__}: {exc}"
    return failures


def _refusal(client: Any, path: str) -> dict[str, Any]:
    try:
        with client.websocket_connect(path):
            return {"refused": False}
    except WebSocketDisconnect as exc:
        return {"refused": True, "code": exc.code, "reason": exc.reason}


if __name__ == "__main__":
    import json

    print(json.dumps(observe(sys.argv[1])))
