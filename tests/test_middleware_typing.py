"""``Middleware(cls, ...)`` and ``add_middleware(cls, ...)`` are type-checked against ``cls``.

Both capture the middleware's parameters after ``app`` with a ParamSpec (as Starlette 1.10 does),
so mypy reports a misspelt keyword or a wrong type where the middleware is declared, not when the
stack is built. This runs mypy (strict) on a small program and reads its report.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

PROGRAM = textwrap.dedent(
    """
    from collections.abc import Awaitable, Callable
    from typing import Any

    from brillo.applications import Brillo
    from brillo.middleware import Middleware
    from brillo.middleware.cors import CORSMiddleware
    from brillo.middleware.gzip import GZipMiddleware
    from brillo.middleware.trustedhost import TrustedHostMiddleware
    from brillo.types import ASGIApp, Receive, Scope, Send

    # A middleware typed with another ASGI vocabulary (plain dicts, as asgiref users write).
    class Foreign:
        def __init__(
            self, app: Callable[[dict[str, Any], Any, Any], Awaitable[None]], *, level: int
        ) -> None:
            self.app = app
            self.level = level

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)

    def factory(app: ASGIApp, prefix: str) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            await app(scope, receive, send)

        return wrapped

    app = Brillo(
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True),
            Middleware(TrustedHostMiddleware, ["example.com"]),
            Middleware(Foreign, level=3),
            Middleware(factory, "/api"),
        ]
    )
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(Foreign, level=1)

    Middleware(CORSMiddleware, allow_origin=["*"])  # error: a misspelt keyword
    app.add_middleware(GZipMiddleware, minimum_size="500")  # error: a wrong type
    Middleware(Foreign)  # error: the keyword-only argument is missing
    app.add_middleware(factory, "/api", "extra")  # error: one argument too many
    """
)


def test_mypy_checks_middleware_arguments(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    report, errors, status = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(program)]
    )
    assert errors == ""
    lines = sorted({int(line.split(":")[1]) for line in report.splitlines() if ": error:" in line})
    expected = [n for n, line in enumerate(PROGRAM.splitlines(), 1) if "# error:" in line]
    assert len(expected) == 4
    assert lines == expected, report
    assert 'Unexpected keyword argument "allow_origin"' in report
    assert 'incompatible type "str"; expected "int"' in report
    assert status == 1
