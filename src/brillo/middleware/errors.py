"""ServerErrorMiddleware: the outermost safety net that answers 500 for unhandled errors."""

from __future__ import annotations

import html
import inspect
import traceback
from collections.abc import Callable
from typing import Any

from brillo._exception_handler import ResponseTracker
from brillo._utils import is_async_callable
from brillo.concurrency import run_in_threadpool
from brillo.requests import Request
from brillo.responses import HTMLResponse, PlainTextResponse, Response
from brillo.types import ASGIApp, Receive, Scope, Send

__all__ = ["ServerErrorMiddleware"]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>brillo: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; color: #a00; }}
pre {{ background: #f6f6f6; border: 1px solid #ddd; padding: 1em; overflow-x: auto; }}
.frame {{ margin-bottom: 0.8em; border: 1px solid #ddd; }}
.frame summary {{ font-family: monospace; color: #555; padding: 0.3em 0.6em; cursor: pointer; }}
.source {{ background: #f6f6f6; padding: 0.4em 0; overflow-x: auto; }}
.line {{ font-family: monospace; white-space: pre; padding: 0 0.6em; }}
.line.current {{ background: #fdd; }}
.lineno {{ display: inline-block; min-width: 4em; color: #888; user-select: none; }}
</style>
</head>
<body>
<h1>500 Server Error</h1>
<h2>{title}</h2>
<p>Raised while handling <code>{method} {path}</code>. This page is shown because the application
runs with <code>debug=True</code>; never enable it in production.</p>
{frames}
<h3>Full traceback</h3>
<pre>{traceback}</pre>
</body>
</html>
"""

_FRAME = """<details class="frame"{open}>
<summary>{filename}, line {lineno}, in {name}</summary>
<div class="source">{source}</div>
</details>
"""

_LINE = '<div class="line{current}"><span class="lineno">{lineno}</span>{code}</div>'


class ServerErrorMiddleware:
    """Answer ``500`` when an HTTP request raises an exception nobody handled, then re-raise it.

    The response is ``handler(request, exc)`` when a handler is given (sync handlers run in the
    thread pool), a traceback page when ``debug`` is true (HTML if the client accepts
    ``text/html``, plain text otherwise; rendered in a worker thread, since reading the source
    files blocks), else a plain ``Internal Server Error``. The exception is always re-raised so
    that the server logs it. If the response had already started (say a background task
    failed), nothing more is sent, but the handler still runs so that it can report the error;
    its response is discarded. WebSocket and lifespan scopes pass straight through: WebSocket
    errors are handled by the route and ExceptionMiddleware (close code 1011).
    """

    def __init__(
        self,
        app: ASGIApp,
        handler: Callable[[Request, Exception], Any] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.handler = handler
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an unhandled HTTP error send a 500 response and re-raise."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        sender = ResponseTracker.of(send)
        try:
            await self.app(scope, receive, sender)
        except Exception as exc:
            await self._answer(exc, scope, receive, send, started=sender.started)
            raise

    async def _answer(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send, *, started: bool = False
    ) -> None:
        """Send the 500 response for ``exc``; once the response ``started``, only run the handler.

        (The application's inlined default stack calls this too.)
        """
        request = Request(scope, receive, send)
        handler = self.handler
        if started:
            if handler is not None:
                await _call_handler(handler, request, exc)
            return
        if self.debug:
            response = await run_in_threadpool(self.debug_response, request, exc)
        elif handler is None:
            response = self.error_response(request, exc)
        else:
            response = await _call_handler(handler, request, exc)
        if response is not None:
            await response(scope, receive, send)

    def format_line(self, index: int, line: str, frame_lineno: int, frame_index: int) -> str:
        """One line of a frame's source as HTML.

        ``line`` is entry ``index`` of the frame's code context, in which entry ``frame_index``
        is the line being executed (number ``frame_lineno`` in the file); that line is
        highlighted. The code is HTML-escaped.
        """
        return _LINE.format(
            current=" current" if index == frame_index else "",
            lineno=frame_lineno - frame_index + index,
            code=html.escape(line.rstrip("\r\n")),
        )

    def generate_frame_html(self, frame: inspect.FrameInfo, is_collapsed: bool) -> str:
        """One traceback frame as HTML: where it is, and the source around the current line.

        A collapsed frame shows only its location until the reader expands it.
        """
        frame_index = frame.index or 0
        source = "".join(
            self.format_line(index, line, frame.lineno, frame_index)
            for index, line in enumerate(frame.code_context or ())
        )
        return _FRAME.format(
            open="" if is_collapsed else " open",
            filename=html.escape(frame.filename),
            lineno=frame.lineno,
            name=html.escape(frame.function),
            source=source,
        )

    def generate_html(
        self, exc: Exception, limit: int = 7, *, method: str = "", path: str = ""
    ) -> str:
        """An HTML page showing the exception and its traceback, innermost frame first.

        Each frame shows ``limit`` lines of source around the line being executed (as in
        Starlette); only the innermost frame starts expanded. ``method`` and ``path`` name the
        request on the page.
        """
        frames = ""
        if exc.__traceback__ is not None:
            collapsed = False
            for frame in reversed(inspect.getinnerframes(exc.__traceback__, limit)):
                frames += self.generate_frame_html(frame, collapsed)
                collapsed = True
        title = f"{type(exc).__name__}: {exc}"
        return _PAGE.format(
            title=html.escape(title),
            method=html.escape(method),
            path=html.escape(path),
            frames=frames,
            traceback=html.escape(self.generate_plain_text(exc)),
        )

    def generate_plain_text(self, exc: Exception) -> str:
        """The full traceback of ``exc`` as text."""
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def debug_response(self, request: Request, exc: Exception) -> Response:
        """The debug traceback page: HTML when the client accepts it, plain text otherwise."""
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            page = self.generate_html(exc, method=request.method, path=request.url.path)
            return HTMLResponse(page, status_code=500)
        return PlainTextResponse(self.generate_plain_text(exc), status_code=500)

    def error_response(self, request: Request, exc: Exception) -> Response:
        """The production answer: a bare ``500 Internal Server Error``."""
        return PlainTextResponse("Internal Server Error", status_code=500)


async def _call_handler(
    handler: Callable[[Request, Exception], Any], request: Request, exc: Exception
) -> Any:
    """``handler(request, exc)``; a sync handler runs in the thread pool."""
    if is_async_callable(handler):
        return await handler(request, exc)
    return await run_in_threadpool(handler, request, exc)
