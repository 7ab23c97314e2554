"""Tests for brillo.staticfiles, driven at the ASGI level with hand-written receive/send."""

from __future__ import annotations

import importlib
import os
import sys
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import pytest

from brillo.exceptions import HTTPException
from brillo.staticfiles import NotModifiedResponse, StaticFiles
from brillo.types import Message


class Sent:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    @property
    def status(self) -> int:
        status: int = self.messages[0]["status"]
        return status

    def header(self, name: str) -> str | None:
        for key, value in self.messages[0]["headers"]:
            if key == name.encode():
                decoded: str = value.decode("latin-1")
                return decoded
        return None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


async def get(
    app: StaticFiles,
    path: str,
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    root_path: str = "",
    scope_type: str = "http",
) -> Sent:
    scope: dict[str, Any] = {
        "type": scope_type,
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "path": path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers or []],
    }
    sent = Sent()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.messages.append(message)

    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


async def status_of(app: StaticFiles, path: str, **kw: Any) -> int:
    try:
        return (await get(app, path, **kw)).status
    except HTTPException as exc:
        return exc.status_code


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/site holds the served files; tmp/secret.txt sits outside it."""
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "example.txt").write_text("hello static")
    (root / "sub" / "nested.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("top secret")
    return root


# --------------------------------------------------------------------------- basics


@pytest.mark.anyio
async def test_serves_a_file(site: Path) -> None:
    app = StaticFiles(directory=site)
    sent = await get(app, "/example.txt")
    assert sent.status == 200
    assert sent.body == b"hello static"
    assert sent.header("content-type") == "text/plain; charset=utf-8"
    assert sent.header("etag") is not None
    assert sent.header("last-modified") is not None
    assert (await get(app, "/sub/nested.css")).body == b"body{}"


@pytest.mark.anyio
async def test_head_sends_no_body(site: Path) -> None:
    sent = await get(StaticFiles(directory=str(site)), "/example.txt", method="HEAD")
    assert sent.status == 200
    assert sent.header("content-length") == "12"
    assert sent.body == b""


@pytest.mark.anyio
async def test_missing_file_and_directory_are_404(site: Path) -> None:
    app = StaticFiles(directory=site)
    with pytest.raises(HTTPException) as info:
        await get(app, "/missing.txt")
    assert info.value.status_code == 404
    assert await status_of(app, "/sub") == 404
    assert await status_of(app, "/") == 404
    assert await status_of(app, "/example.txt/more") == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.anyio
async def test_other_methods_are_405(site: Path, method: str) -> None:
    with pytest.raises(HTTPException) as info:
        await get(StaticFiles(directory=site), "/example.txt", method=method)
    assert info.value.status_code == 405
    assert info.value.headers == {"Allow": "GET, HEAD"}


@pytest.mark.anyio
async def test_mounted_path_uses_root_path(site: Path) -> None:
    app = StaticFiles(directory=site)
    sent = await get(app, "/static/example.txt", root_path="/static")
    assert sent.body == b"hello static"


@pytest.mark.anyio
async def test_range_requests_pass_through(site: Path) -> None:
    sent = await get(StaticFiles(directory=site), "/example.txt", headers=[("range", "bytes=0-4")])
    assert sent.status == 206
    assert sent.body == b"hello"


@pytest.mark.anyio
async def test_websocket_scope_is_refused(site: Path) -> None:
    sent = await get(StaticFiles(directory=site), "/example.txt", scope_type="websocket")
    assert sent.messages == [{"type": "websocket.close", "code": 1000, "reason": ""}]


@pytest.mark.anyio
async def test_lifespan_scope_is_an_error(site: Path) -> None:
    with pytest.raises(RuntimeError, match="only handles HTTP"):
        await get(StaticFiles(directory=site), "/", scope_type="lifespan")


# --------------------------------------------------------------------------- traversal


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/sub/../../site/../secret.txt",
        "/..",
        "/../",
        # what a percent-encoded /%2e%2e/secret.txt looks like once the server decoded it
        "/%2e%2e/secret.txt".replace("%2e", "."),
        "/./.././secret.txt",
        "//etc/passwd",
        "/\x00/etc/passwd",
        "/example.txt\x00.png",
        "/\ud800.txt",
    ],
)
@pytest.mark.anyio
async def test_traversal_attempts_are_404(site: Path, path: str) -> None:
    assert await status_of(StaticFiles(directory=site), path) == 404


@pytest.mark.anyio
async def test_absolute_path_segments_cannot_escape(site: Path, tmp_path: Path) -> None:
    app = StaticFiles(directory=site)
    assert await status_of(app, str(tmp_path / "secret.txt")) == 404
    assert app.lookup_path(str(tmp_path / "secret.txt")) == ("", None)


@pytest.mark.anyio
async def test_very_long_names_are_404(site: Path) -> None:
    assert await status_of(StaticFiles(directory=site), "/" + "a" * 5000) == 404


@pytest.mark.anyio
async def test_symlink_inside_the_directory_is_served(site: Path) -> None:
    (site / "alias.txt").symlink_to(site / "example.txt")
    (site / "subalias").symlink_to(site / "sub", target_is_directory=True)
    app = StaticFiles(directory=site)
    assert (await get(app, "/alias.txt")).body == b"hello static"
    assert (await get(app, "/subalias/nested.css")).body == b"body{}"


@pytest.mark.anyio
async def test_symlink_pointing_outside_is_refused_unless_followed(
    site: Path, tmp_path: Path
) -> None:
    (site / "leak.txt").symlink_to(tmp_path / "secret.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("outside")
    (site / "outdir").symlink_to(outside, target_is_directory=True)

    strict = StaticFiles(directory=site)
    assert await status_of(strict, "/leak.txt") == 404
    assert await status_of(strict, "/outdir/o.txt") == 404

    following = StaticFiles(directory=site, follow_symlink=True)
    assert (await get(following, "/leak.txt")).body == b"top secret"
    assert (await get(following, "/outdir/o.txt")).body == b"outside"
    # following symlinks still does not allow ".." out of the directory
    assert await status_of(following, "/../secret.txt") == 404


@pytest.mark.anyio
async def test_served_directory_may_itself_be_a_symlink(site: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-site"
    link.symlink_to(site, target_is_directory=True)
    app = StaticFiles(directory=link)
    assert (await get(app, "/example.txt")).body == b"hello static"
    assert await status_of(app, "/../secret.txt") == 404


# --------------------------------------------------------------------------- html mode


@pytest.fixture
def html_site(site: Path) -> Path:
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "sub" / "index.html").write_text("<h1>sub</h1>")
    (site / "404.html").write_text("<h1>not here</h1>")
    return site


@pytest.mark.anyio
async def test_html_mode_serves_index_files(html_site: Path) -> None:
    app = StaticFiles(directory=html_site, html=True)
    home = await get(app, "/")
    assert home.status == 200
    assert home.body == b"<h1>home</h1>"
    assert home.header("content-type") == "text/html; charset=utf-8"
    assert (await get(app, "/sub/")).body == b"<h1>sub</h1>"
    assert (await get(app, "/index.html")).body == b"<h1>home</h1>"


@pytest.mark.anyio
async def test_html_mode_redirects_directory_without_slash(html_site: Path) -> None:
    app = StaticFiles(directory=html_site, html=True)
    sent = await get(app, "/sub", headers=[("host", "example.org")])
    assert sent.status == 307
    assert sent.header("location") == "http://example.org/sub/"
    mounted = await get(app, "/static/sub", root_path="/static", headers=[("host", "h")])
    assert mounted.header("location") == "http://h/static/sub/"


@pytest.mark.anyio
async def test_html_mode_uses_404_page(html_site: Path) -> None:
    app = StaticFiles(directory=html_site, html=True)
    sent = await get(app, "/nothing/here")
    assert sent.status == 404
    assert sent.body == b"<h1>not here</h1>"
    assert sent.header("content-type") == "text/html; charset=utf-8"
    # a Range header must not turn the 404 page into a 206
    ranged = await get(app, "/nothing", headers=[("range", "bytes=0-1")])
    assert ranged.status == 404


@pytest.mark.anyio
async def test_html_mode_without_404_page_raises(site: Path) -> None:
    app = StaticFiles(directory=site, html=True)
    assert await status_of(app, "/nothing") == 404
    assert await status_of(app, "/sub/") == 404  # a directory without index.html


# --------------------------------------------------------------------------- conditional


@pytest.mark.anyio
async def test_if_none_match_gives_304(site: Path) -> None:
    app = StaticFiles(directory=site)
    first = await get(app, "/example.txt")
    etag = first.header("etag")
    assert etag is not None
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        sent = await get(app, "/example.txt", headers=[("if-none-match", value)])
        assert sent.status == 304, value
        assert sent.header("etag") == etag
        assert sent.header("content-length") is None
        assert sent.header("last-modified") is None
        assert sent.body == b""
    stale = await get(app, "/example.txt", headers=[("if-none-match", '"stale"')])
    assert stale.status == 200


@pytest.mark.parametrize("value", ['"*"', '"a,*,b"', '"x", "*"', 'W/"*"', '*, "x"'])
@pytest.mark.anyio
async def test_star_inside_an_entity_tag_is_not_the_wildcard(site: Path, value: str) -> None:
    # Only a bare "*" as the whole field means "any"; inside quotes it is part of a tag, and
    # commas inside quotes do not split the list.
    sent = await get(
        StaticFiles(directory=site), "/example.txt", headers=[("if-none-match", value)]
    )
    assert sent.status == 200, value
    assert sent.body == b"hello static"


@pytest.mark.parametrize("template", ["{etag}", " \t{etag} ", '"a,b",{etag}', '"x",\tW/{etag}'])
@pytest.mark.anyio
async def test_if_none_match_lists_with_quoted_commas(site: Path, template: str) -> None:
    app = StaticFiles(directory=site)
    etag = (await get(app, "/example.txt")).header("etag")
    assert etag is not None
    value = template.format(etag=etag)
    sent = await get(app, "/example.txt", headers=[("if-none-match", value)])
    assert sent.status == 304, value


@pytest.mark.parametrize("value", ["*", " \t*\t "])
@pytest.mark.anyio
async def test_bare_wildcard_matches(site: Path, value: str) -> None:
    sent = await get(
        StaticFiles(directory=site), "/example.txt", headers=[("if-none-match", value)]
    )
    assert sent.status == 304


@pytest.mark.anyio
async def test_if_modified_since(site: Path) -> None:
    app = StaticFiles(directory=site)
    mtime = os.stat(site / "example.txt").st_mtime
    same = formatdate(mtime, usegmt=True)
    later = formatdate(mtime + 3600, usegmt=True)
    earlier = formatdate(mtime - 3600, usegmt=True)
    assert (await get(app, "/example.txt", headers=[("if-modified-since", same)])).status == 304
    assert (await get(app, "/example.txt", headers=[("if-modified-since", later)])).status == 304
    assert (await get(app, "/example.txt", headers=[("if-modified-since", earlier)])).status == 200
    bad = await get(app, "/example.txt", headers=[("if-modified-since", "not a date")])
    assert bad.status == 200


@pytest.mark.anyio
async def test_if_none_match_takes_precedence_over_if_modified_since(site: Path) -> None:
    app = StaticFiles(directory=site)
    later = formatdate(os.stat(site / "example.txt").st_mtime + 3600, usegmt=True)
    sent = await get(
        app,
        "/example.txt",
        headers=[("if-none-match", '"stale"'), ("if-modified-since", later)],
    )
    assert sent.status == 200


def test_not_modified_response_keeps_only_allowed_headers() -> None:
    from brillo.datastructures import Headers

    response = NotModifiedResponse(
        Headers({"etag": '"x"', "cache-control": "max-age=1", "content-type": "text/plain"})
    )
    assert response.status_code == 304
    assert dict(response.headers) == {"etag": '"x"', "cache-control": "max-age=1"}


# --------------------------------------------------------------------------- configuration


def test_missing_directory_is_an_error_at_init(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        StaticFiles(directory=tmp_path / "nope")


@pytest.mark.anyio
async def test_unchecked_missing_directory_fails_on_first_request(tmp_path: Path) -> None:
    app = StaticFiles(directory=tmp_path / "nope", check_dir=False)
    with pytest.raises(RuntimeError, match="does not exist"):
        await get(app, "/x")


@pytest.mark.anyio
async def test_directory_that_is_a_file_fails_on_first_request(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    app = StaticFiles(directory=afile, check_dir=False)
    with pytest.raises(RuntimeError, match="is not a directory"):
        await get(app, "/x")


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pkg = tmp_path / "pkgs" / "brillo_test_static_pkg"
    (pkg / "statics").mkdir(parents=True)
    (pkg / "assets").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "statics" / "p.txt").write_text("from statics")
    (pkg / "assets" / "a.txt").write_text("from assets")
    # A fresh import each time: an earlier test may have imported it from another tmp_path.
    monkeypatch.delitem(sys.modules, "brillo_test_static_pkg", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))  # also invalidates import caches
    importlib.invalidate_caches()
    return "brillo_test_static_pkg"


@pytest.mark.anyio
async def test_packages(package: str, site: Path) -> None:
    app = StaticFiles(directory=site, packages=[package, (package, "assets")])
    assert (await get(app, "/p.txt")).body == b"from statics"
    assert (await get(app, "/a.txt")).body == b"from assets"
    assert (await get(app, "/example.txt")).body == b"hello static"
    assert len(app.all_directories) == 3


def test_bad_packages(package: str) -> None:
    with pytest.raises(AssertionError, match="could not be found"):
        StaticFiles(packages=["brillo_no_such_package_xyz"])
    with pytest.raises(RuntimeError, match="'missing' in package"):
        StaticFiles(packages=[(package, "missing")])
