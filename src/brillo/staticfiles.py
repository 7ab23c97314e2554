"""Serve files from directories (and package data) over HTTP."""

from __future__ import annotations

import errno
import importlib.util
import os
import re
import stat
from email.utils import parsedate_to_datetime
from typing import Union

import anyio
import anyio.to_thread

from brillo._utils import get_route_path
from brillo.datastructures import URL, Headers
from brillo.exceptions import HTTPException
from brillo.responses import FileResponse, RedirectResponse, Response
from brillo.types import Receive, Scope, Send

__all__ = ["NotModifiedResponse", "PathLike", "StaticFiles"]

PathLike = Union[str, "os.PathLike[str]"]

# RFC 9110 8.8.3 entity-tag: optional weak prefix, then a quoted opaque tag (no inner quotes).
_ENTITY_TAG = re.compile(r'(?:W/)?"[^"]*"')


class _StaticFilesConfigError(RuntimeError, AssertionError):
    """A ``packages`` entry cannot be used as a static directory."""


class NotModifiedResponse(Response):
    """An empty ``304 Not Modified`` keeping only the headers RFC 9110 allows on it."""

    NOT_MODIFIED_HEADERS = (
        "cache-control",
        "content-location",
        "date",
        "etag",
        "expires",
        "vary",
    )

    def __init__(self, headers: Headers) -> None:
        kept = {k: v for k, v in headers.items() if k in self.NOT_MODIFIED_HEADERS}
        super().__init__(status_code=304, headers=kept)


class StaticFiles:
    """An ASGI app serving the files under ``directory`` and/or ``packages``.

    ``packages`` entries are a package name (serving its ``statics`` folder) or a
    ``(package, folder)`` pair. With ``html=True`` a directory serves its ``index.html``
    (redirecting ``/dir`` to ``/dir/``) and a top-level ``404.html`` is used for missing files.
    Only GET and HEAD are allowed (else 405). Paths escaping the directory (``..``, absolute
    paths, NUL bytes) are 404s, as are symlinks pointing outside it unless
    ``follow_symlink=True``. Misses raise :class:`~brillo.exceptions.HTTPException` so the
    application's exception handlers render them.
    """

    def __init__(
        self,
        *,
        directory: PathLike | None = None,
        packages: list[str | tuple[str, str]] | None = None,
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        self.directory = directory
        self.packages = packages
        self.all_directories = self.get_directories(directory, packages)
        self.html = html
        self.config_checked = False
        self.follow_symlink = follow_symlink
        if check_dir and directory is not None and not os.path.isdir(directory):
            raise RuntimeError(f"Directory '{directory}' does not exist")

    def get_directories(
        self,
        directory: PathLike | None = None,
        packages: list[str | tuple[str, str]] | None = None,
    ) -> list[PathLike]:
        """The directories to search, in order: ``directory`` first, then each package's."""
        directories: list[PathLike] = []
        if directory is not None:
            directories.append(directory)
        for package in packages or []:
            if isinstance(package, tuple):
                package, folder = package
            else:
                folder = "statics"
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                raise _StaticFilesConfigError(f"Package {package!r} could not be found.")
            package_dir = os.path.normpath(os.path.join(spec.origin, "..", folder))
            if not os.path.isdir(package_dir):
                raise _StaticFilesConfigError(
                    f"Directory {folder!r} in package {package!r} could not be found."
                )
            directories.append(package_dir)
        return directories

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request's path; a WebSocket handshake here is refused (403)."""
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000, "reason": ""})
                return
            raise RuntimeError(f"StaticFiles only handles HTTP, not {scope['type']!r} scopes")
        if not self.config_checked:
            await self.check_config()
            self.config_checked = True
        path = self.get_path(scope)
        response = await self.get_response(path, scope)
        await response(scope, receive, send)

    def get_path(self, scope: Scope) -> str:
        """The request path relative to the served directory, normalised (may contain ``..``)."""
        route_path = get_route_path(scope)
        return os.path.normpath(os.path.join(*route_path.split("/")))

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The response for ``path``; raises ``HTTPException`` (404, 405, 401) when unservable."""
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})

        full_path, stat_result = await self._lookup(path)
        if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
            return self.file_response(full_path, stat_result, scope)

        if stat_result is not None and stat.S_ISDIR(stat_result.st_mode) and self.html:
            index_path, index_stat = await self._lookup(os.path.join(path, "index.html"))
            if index_stat is not None and stat.S_ISREG(index_stat.st_mode):
                if not scope["path"].endswith("/"):
                    url = URL(scope=scope)
                    return RedirectResponse(url=url.replace(path=url.path + "/"))
                return self.file_response(index_path, index_stat, scope)

        if self.html:
            page_path, page_stat = await self._lookup("404.html")
            if page_stat is not None and stat.S_ISREG(page_stat.st_mode):
                return FileResponse(page_path, stat_result=page_stat, status_code=404)
        raise HTTPException(status_code=404)

    async def _lookup(self, path: str) -> tuple[str, os.stat_result | None]:
        try:
            return await anyio.to_thread.run_sync(self.lookup_path, path)
        except PermissionError:
            raise HTTPException(status_code=401) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise HTTPException(status_code=404) from None
            raise
        except ValueError:  # characters the file system cannot take (NUL, lone surrogates)
            raise HTTPException(status_code=404) from None

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """Find ``path`` in the served directories: ``(full_path, stat)`` or ``("", None)``.

        A path that resolves outside a directory (after resolving symlinks, unless
        ``follow_symlink``) is skipped for that directory.
        """
        if "\x00" in path or os.path.isabs(path):
            return "", None
        for directory in self.all_directories:
            joined = os.path.join(directory, path)
            if self.follow_symlink:
                full_path = os.path.abspath(joined)
                root = os.path.abspath(directory)
            else:
                full_path = os.path.realpath(joined)
                root = os.path.realpath(directory)
            if os.path.commonpath([full_path, root]) != root:
                continue
            try:
                return full_path, os.stat(full_path)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return "", None

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """A ``FileResponse`` for the file, or a 304 when the client's copy is current."""
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        if self.is_not_modified(Headers(raw=response.raw_headers), Headers(scope=scope)):
            return NotModifiedResponse(Headers(raw=response.raw_headers))
        return response

    async def check_config(self) -> None:
        """Fail with ``RuntimeError`` unless ``directory`` (if given) exists and is a directory."""
        if self.directory is None:
            return
        try:
            stat_result = await anyio.to_thread.run_sync(os.stat, self.directory)
        except FileNotFoundError:
            raise RuntimeError(
                f"StaticFiles directory '{self.directory}' does not exist."
            ) from None
        if not stat.S_ISDIR(stat_result.st_mode):
            raise RuntimeError(f"StaticFiles path '{self.directory}' is not a directory.")

    def is_not_modified(self, response_headers: Headers, request_headers: Headers) -> bool:
        """True when ``If-None-Match`` / ``If-Modified-Since`` show the client is up to date.

        ``If-None-Match`` takes precedence: ``*`` (the whole value) or any listed entity tag
        equal to the ``ETag`` under weak comparison. Tags are quoted strings, so a comma or
        ``*`` inside quotes is part of a tag. A malformed ``If-Modified-Since`` is ignored.
        """
        if_none_match = request_headers.get("if-none-match")
        if if_none_match is not None:
            etag = response_headers.get("etag")
            if etag is None:
                return False
            if if_none_match.strip(" \t") == "*":
                return True
            opaque = etag.removeprefix("W/")
            return any(
                tag.removeprefix("W/") == opaque for tag in _ENTITY_TAG.findall(if_none_match)
            )

        if_modified_since = request_headers.get("if-modified-since")
        last_modified = response_headers.get("last-modified")
        if if_modified_since is None or last_modified is None:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
            modified = parsedate_to_datetime(last_modified)
            return since >= modified
        except (TypeError, ValueError, IndexError):
            return False
