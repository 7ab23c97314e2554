"""Jinja2 template rendering into HTML responses."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, overload

from brillo.background import BackgroundTask
from brillo.datastructures import URL
from brillo.requests import Request
from brillo.responses import HTMLResponse
from brillo.types import Receive, Scope, Send

try:
    import jinja2
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "jinja2 must be installed to use Jinja2Templates (pip install jinja2)"
    ) from _exc

__all__ = ["Jinja2Templates"]

ContextProcessor = Callable[[Request], dict[str, Any]]


class _TemplatesConfigError(ValueError, AssertionError):
    """Jinja2Templates got both or neither of ``directory`` and ``env``."""


class _TemplateResponse(HTMLResponse):
    """An HTML response rendered from ``template`` with ``context``; both stay inspectable.

    If the server advertises the ``http.response.debug`` extension (the test client does), an
    ``http.response.debug`` message carrying the template and context is sent first.
    """

    def __init__(
        self,
        template: Any,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.template = template
        self.context = context
        super().__init__(template.render(context), status_code, headers, media_type, background)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the debug message when supported, then the response."""
        request = self.context.get("request")
        extensions = request.get("extensions", {}) if request is not None else {}
        if "http.response.debug" in extensions:
            await send(
                {
                    "type": "http.response.debug",
                    "info": {"template": self.template, "context": self.context},
                }
            )
        await super().__call__(scope, receive, send)


class Jinja2Templates:
    """Render Jinja2 templates from ``directory`` (one path or several) or a ready ``env``.

    Templates get ``request`` and a ``url_for(name, **path_params)`` global (which calls
    :meth:`Request.url_for`); each context processor's dict is merged into every context.
    """

    @overload
    def __init__(
        self,
        directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        context_processors: list[ContextProcessor] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        env: jinja2.Environment,
        context_processors: list[ContextProcessor] | None = None,
    ) -> None: ...

    def __init__(
        self,
        directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        context_processors: list[ContextProcessor] | None = None,
        env: jinja2.Environment | None = None,
    ) -> None:
        if (directory is None) == (env is None):
            raise _TemplatesConfigError(
                "Jinja2Templates: either 'directory' or 'env' arguments must be passed, "
                f"exactly one of them (got {'neither' if env is None else 'both'})"
            )
        self.context_processors: list[ContextProcessor] = list(context_processors or [])
        if directory is not None:
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory), autoescape=True)
        assert env is not None
        self.env = env
        self._setup_env_defaults(env)

    def _setup_env_defaults(self, env: jinja2.Environment) -> None:
        @jinja2.pass_context
        def url_for(context: Mapping[str, Any], name: str, /, **path_params: Any) -> URL:
            request: Request = context["request"]
            return request.url_for(name, **path_params)

        env.globals.setdefault("url_for", url_for)

    def get_template(self, name: str) -> jinja2.Template:
        """Load template ``name`` from the environment."""
        return self.env.get_template(name)

    def TemplateResponse(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> _TemplateResponse:
        """Render template ``name`` with ``context`` (plus ``request``) into an HTML response."""
        if not isinstance(name, str):
            raise TypeError(
                "TemplateResponse(request, name, context=...) takes the template name as its "
                f"second argument, not {type(name).__name__}"
            )
        context = {} if context is None else context
        context.setdefault("request", request)
        for processor in self.context_processors:
            context.update(processor(request))
        return _TemplateResponse(
            self.get_template(name),
            context,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            background=background,
        )
