"""The application class: a router wrapped in error handling and user middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from brillo._exception_handler import (
    HANDLERS_KEY,
    ResponseTracker,
    answer_http_error,
    websocket_error,
)
from brillo.datastructures import State, URLPath
from brillo.middleware import Middleware, _MiddlewareFactory
from brillo.middleware.body_limit import RequestBodyLimitMiddleware
from brillo.middleware.errors import ServerErrorMiddleware
from brillo.middleware.exceptions import ExceptionMiddleware
from brillo.requests import Request, _http_request
from brillo.responses import _PLAIN_CALL, Response, _send_plain
from brillo.routing import _ENDPOINT_ATTR, BaseRoute, Router, _EndpointCall
from brillo.types import ASGIApp, ExceptionHandler, Lifespan, Receive, Scope, Send
from brillo.websockets import WebSocket

__all__ = ["Brillo", "Starlette"]

AppType = TypeVar("AppType", bound="Brillo")
P = ParamSpec("P")


_Plan = tuple[ServerErrorMiddleware, tuple[Any, Any], Router]


def _inline_plan(stack: ASGIApp) -> _Plan | None:
    """What ``Brillo.__call__`` needs to run ``stack`` inline, if it is the default stack.

    That is ServerErrorMiddleware around ExceptionMiddleware around a router without router
    middleware, each of exactly those classes (a subclass may change any behaviour).
    """
    if type(stack) is ServerErrorMiddleware:
        inner = stack.app
        if type(inner) is ExceptionMiddleware:
            router = inner.app
            if type(router) is Router and router._direct:
                return stack, inner._tables, router
    return None


class Brillo:
    """A brillo application (``Starlette`` is an alias).

    * ``debug``: render tracebacks for unhandled HTTP errors (never in production).
    * ``routes``: the route table (:class:`~brillo.routing.Route`, ``WebSocketRoute``,
      ``Mount``, ``Host``).
    * ``middleware``: :class:`~brillo.middleware.Middleware` entries, outermost first; they
      run inside ServerErrorMiddleware and outside ExceptionMiddleware.
    * ``exception_handlers``: by status code or exception class; a handler for ``500`` or
      ``Exception`` becomes the ServerErrorMiddleware handler.
    * ``lifespan``: an async context manager factory called with the app; a mapping it yields
      becomes the lifespan state copied into each request's ``scope["state"]``.
    * ``max_body_size``: default request body limit in bytes (413 beyond it), applied outside
      the user middleware; a router, mount or route (or a nested
      :class:`~brillo.middleware.body_limit.RequestBodyLimitMiddleware`) may set its own, and
      the innermost limit wins.

    Subclasses that set themselves up without calling ``Brillo.__init__`` (FastAPI's ``FastAPI``
    does) must set ``router``, ``state``, ``exception_handlers``, ``user_middleware`` and
    ``middleware_stack``; everything else has a class-level default or is derived on first use.
    """

    # Class-level defaults for what a subclass that skips ``__init__`` may never set.
    _debug = False
    max_body_size: int | None = None
    middleware_stack: ASGIApp | None = None
    # The inline plan of ``middleware_stack`` (see ``__call__``): derived, never set up front.
    _inlined_for: ASGIApp | None = None
    _inlined: _Plan | None = None

    def __init__(
        self: AppType,
        debug: bool = False,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[Any, ExceptionHandler] | None = None,
        lifespan: Lifespan[AppType] | None = None,
        *,
        max_body_size: int | None = None,
    ) -> None:
        self.debug = debug
        self.state = State()
        self.router = Router(routes, lifespan=lifespan)
        self.exception_handlers: dict[Any, Callable[..., Any]] = (
            {} if exception_handlers is None else dict(exception_handlers)
        )
        self.user_middleware: list[Middleware] = [] if middleware is None else list(middleware)
        self.max_body_size = max_body_size
        self.middleware_stack = None

    @property
    def debug(self) -> bool:
        """Whether unhandled errors render a traceback page."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = value
        self.middleware_stack = None

    def build_middleware_stack(self) -> ASGIApp:
        """Assemble the stack around the router, outermost first.

        ServerErrorMiddleware, the body size limit (with ``max_body_size``), the user middleware,
        ExceptionMiddleware, then the router.
        """
        debug = self.debug
        error_handler = None
        exception_handlers: dict[Any, Callable[..., Any]] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                exception_handlers[key] = value

        middleware = [Middleware(ServerErrorMiddleware, handler=error_handler, debug=debug)]
        if self.max_body_size is not None:
            middleware.append(
                Middleware(RequestBodyLimitMiddleware, max_body_size=self.max_body_size)
            )
        middleware += [
            *self.user_middleware,
            Middleware(ExceptionMiddleware, handlers=exception_handlers, debug=debug),
        ]
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app

    @property
    def routes(self) -> list[BaseRoute]:
        """The router's route table."""
        return self.router.routes

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called ``name`` (see :meth:`Router.url_path_for`)."""
        return self.router.url_path_for(name, **path_params)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: builds the middleware stack on first use.

        With the default stack (no user middleware, no ``max_body_size``) the request runs in
        this one frame: the layers' own steps, in their order, calling the same helpers they do
        (``ServerErrorMiddleware._answer``, ``answer_http_error`` / ``websocket_error``, the
        router's ``_resolve``, and for a function endpoint what ``request_response`` does, with
        the plain-response sender ``_send_plain``). ``tests/test_inline_stack.py`` compares the
        two stacks' ASGI messages over randomized apps and requests.
        """
        scope["app"] = self
        plan = self._inlined
        if plan is None or plan[0] is not self.middleware_stack:
            stack = self.middleware_stack
            if stack is None:
                stack = self.middleware_stack = self.build_middleware_stack()
            if self._inlined_for is not stack:
                self._inlined = _inline_plan(stack)
                self._inlined_for = stack
            plan = self._inlined
            if plan is None:
                await stack(scope, receive, send)
                return
        router = plan[2]
        scope_type = scope["type"]
        if scope_type == "http":
            # ExceptionMiddleware's handler tables go into the scope once something may look them
            # up (another kind of app or response, or an error), and a response tracker is made
            # only then: a plain response goes straight to the server, ``started`` noted here.
            tracker: ResponseTracker | None = None
            started = False
            try:  # ServerErrorMiddleware
                try:  # ExceptionMiddleware
                    target = router._resolve(scope)
                    call: _EndpointCall | None = getattr(target, _ENDPOINT_ATTR, None)
                    if call is None:
                        scope[HANDLERS_KEY] = plan[1]
                        tracker = ResponseTracker.of(send)
                        await target(scope, receive, tracker)
                        return
                    # request_response (the route has no middleware of its own):
                    request = _http_request(scope, receive, send)
                    try:
                        response = await call(request)
                        if type(response).__call__ is _PLAIN_CALL:
                            started = True
                            await _send_plain(response, send)
                        else:
                            scope[HANDLERS_KEY] = plan[1]
                            tracker = ResponseTracker.of(send)
                            await response(scope, receive, tracker)
                    except Exception as exc:
                        scope[HANDLERS_KEY] = plan[1]
                        tracker = tracker or ResponseTracker.of(send, started)
                        await answer_http_error(exc, request, scope, receive, tracker)
                except Exception as exc:
                    scope[HANDLERS_KEY] = plan[1]
                    tracker = tracker or ResponseTracker.of(send, started)
                    await answer_http_error(exc, None, scope, receive, tracker)
            except Exception as exc:
                started = started or (tracker is not None and tracker.started)
                await plan[0]._answer(exc, scope, receive, send, started=started)
                raise
        elif scope_type == "websocket":
            # ServerErrorMiddleware lets WebSockets through; ExceptionMiddleware's part:
            scope[HANDLERS_KEY] = plan[1]
            try:
                await router._resolve(scope)(scope, receive, send)
            except Exception as exc:
                scope[HANDLERS_KEY] = plan[1]
                if not await websocket_error(exc, None, scope, receive, send):
                    raise
        else:
            await plan[0].app(scope, receive, send)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        """Mount ``app`` under ``path``."""
        self.router.mount(path, app=app, name=name)

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        """Serve ``app`` for requests whose ``Host`` header matches ``host``."""
        self.router.host(host, app=app, name=name)

    def add_middleware(
        self, middleware_class: _MiddlewareFactory[P], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Add a middleware outside those already added (it runs first).

        ``middleware_class(app, *args, **kwargs)`` builds it; a type checker checks the
        arguments against its parameters. Raises RuntimeError once the application has started
        serving.
        """
        if self.middleware_stack is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self.user_middleware.insert(0, Middleware(middleware_class, *args, **kwargs))

    def add_exception_handler(
        self,
        exc_class_or_status_code: int | type[Exception],
        handler: ExceptionHandler,
    ) -> None:
        """Register a handler for a status code or an exception class.

        Handlers are read when the middleware stack is built: add them before serving.
        """
        self.exception_handlers[exc_class_or_status_code] = handler

    def add_route(
        self,
        path: str,
        route: Callable[[Request], Awaitable[Response] | Response],
        methods: list[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Add an HTTP route."""
        self.router.add_route(
            path, route, methods=methods, name=name, include_in_schema=include_in_schema
        )

    def add_websocket_route(
        self,
        path: str,
        route: Callable[[WebSocket], Awaitable[None]],
        name: str | None = None,
    ) -> None:
        """Add a WebSocket route."""
        self.router.add_websocket_route(path, route, name=name)


#: Starlette-compatible name of :class:`Brillo`.
Starlette = Brillo
