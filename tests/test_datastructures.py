from __future__ import annotations

import copy
import io
import pickle
import threading
from tempfile import SpooledTemporaryFile
from typing import Any

import pytest

from brillo.datastructures import (
    URL,
    Address,
    CommaSeparatedStrings,
    FormData,
    Headers,
    ImmutableMultiDict,
    MultiDict,
    MutableHeaders,
    QueryParams,
    Secret,
    State,
    UploadFile,
    URLPath,
)

# --------------------------------------------------------------------------------------- URL


def test_url_components() -> None:
    url = URL("https://user:pw@Example.com:8443/a/b?x=1&y=2#frag")
    assert url.scheme == "https"
    assert url.netloc == "user:pw@Example.com:8443"
    assert url.path == "/a/b"
    assert url.query == "x=1&y=2"
    assert url.fragment == "frag"
    assert url.username == "user"
    assert url.password == "pw"
    assert url.hostname == "example.com"
    assert url.port == 8443
    assert url.is_secure


@pytest.mark.parametrize(
    ("url", "secure"),
    [("http://a", False), ("https://a", True), ("ws://a", False), ("wss://a", True), ("/x", False)],
)
def test_url_is_secure(url: str, secure: bool) -> None:
    assert URL(url).is_secure is secure


def test_url_relative_and_empty() -> None:
    url = URL("/path?q=1")
    assert url.scheme == ""
    assert url.hostname is None
    assert url.port is None
    assert url.path == "/path"
    assert str(URL()) == ""


def test_url_replace() -> None:
    url = URL("https://example.org:123/path/to/somewhere?abc=123#anchor")
    assert url.replace(scheme="http") == "http://example.org:123/path/to/somewhere?abc=123#anchor"
    assert url.replace(path="/x") == "https://example.org:123/x?abc=123#anchor"
    assert url.replace(query="") == "https://example.org:123/path/to/somewhere#anchor"
    assert url.replace(fragment="f") == "https://example.org:123/path/to/somewhere?abc=123#f"
    assert url.replace(netloc="a.b") == "https://a.b/path/to/somewhere?abc=123#anchor"
    assert url.replace(port=None) == "https://example.org/path/to/somewhere?abc=123#anchor"
    assert url.replace(port=88) == "https://example.org:88/path/to/somewhere?abc=123#anchor"
    assert url.replace(hostname="h") == "https://h:123/path/to/somewhere?abc=123#anchor"
    assert url.replace(username="u") == "https://u@example.org:123/path/to/somewhere?abc=123#anchor"
    assert (
        url.replace(username="u", password="p")
        == "https://u:p@example.org:123/path/to/somewhere?abc=123#anchor"
    )


def test_url_replace_keeps_userinfo_and_ipv6() -> None:
    url = URL("http://u:p@host:80/")
    assert url.replace(port=81) == "http://u:p@host:81/"
    assert url.replace(hostname="other") == "http://u:p@other:80/"
    ipv6 = URL("http://[::1]/x")
    assert ipv6.replace(port=8000) == "http://[::1]:8000/x"
    assert URL("http://[::1]:9/x").replace(port=10) == "http://[::1]:10/x"


def test_url_replace_brackets_a_bare_ipv6_hostname() -> None:
    url = URL("https://[2001:db8::7]:8443/p")
    assert url.hostname == "2001:db8::7"
    assert url.replace(hostname=url.hostname) == url
    assert url.replace(hostname="::1") == "https://[::1]:8443/p"
    assert url.replace(hostname="[::1]") == "https://[::1]:8443/p"
    # One colon is a host with a port, not an IPv6 address.
    assert url.replace(hostname="h:1", port=None) == "https://h:1/p"


def test_url_query_param_helpers() -> None:
    url = URL("https://e.com/p?a=1&b=2&a=3&empty=")
    assert url.include_query_params(a="x", c=3) == "https://e.com/p?b=2&empty=&a=x&c=3"
    assert url.replace_query_params(z="1 2") == "https://e.com/p?z=1+2"
    assert url.remove_query_params("a") == "https://e.com/p?b=2&empty="
    assert url.remove_query_params(["a", "b", "missing"]) == "https://e.com/p?empty="
    # the original is untouched
    assert str(url) == "https://e.com/p?a=1&b=2&a=3&empty="


def test_url_str_repr_eq_hash() -> None:
    url = URL("https://u:secret@e.com/")
    assert str(url) == "https://u:secret@e.com/"
    assert repr(url) == "URL('https://u:********@e.com/')"
    assert repr(URL("http://e.com")) == "URL('http://e.com')"
    assert url == "https://u:secret@e.com/"
    assert url == URL("https://u:secret@e.com/")
    assert url != URL("https://e.com/")
    assert {url: 1}[URL("https://u:secret@e.com/")] == 1


def test_url_from_components() -> None:
    url = URL(scheme="wss", netloc="e.com:1", path="/ws", query="a=1")
    assert str(url) == "wss://e.com:1/ws?a=1"
    with pytest.raises(AssertionError):
        URL("http://x", scheme="https")


def _scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": "http",
        "server": ("example.com", 80),
        "path": "/path",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    scope.update(overrides)
    return scope


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "http://example.com/path"),
        ({"server": ("example.com", 8000)}, "http://example.com:8000/path"),
        ({"scheme": "https", "server": ("e.com", 443)}, "https://e.com/path"),
        ({"scheme": "https", "server": ("e.com", 80)}, "https://e.com:80/path"),
        ({"scheme": "ws", "server": ("e.com", 80)}, "ws://e.com/path"),
        ({"scheme": "wss", "server": ("e.com", 443)}, "wss://e.com/path"),
        ({"scheme": "wss", "server": ("e.com", 8443)}, "wss://e.com:8443/path"),
        ({"server": None}, "/path"),
        ({"query_string": b"a=1&b=2"}, "http://example.com/path?a=1&b=2"),
        ({"headers": [(b"host", b"h.example:81")]}, "http://h.example:81/path"),
        (
            {"headers": [(b"accept", b"*/*"), (b"host", b"first"), (b"host", b"second")]},
            "http://first/path",
        ),
        ({"root_path": "/root", "path": "/root/path"}, "http://example.com/root/path"),
        ({"root_path": "/root", "path": "/path"}, "http://example.com/root/path"),
    ],
)
def test_url_from_scope(overrides: dict[str, Any], expected: str) -> None:
    assert URL(scope=_scope(**overrides)) == expected


def test_url_from_scope_tolerates_bad_bytes() -> None:
    # A non-ASCII Host header is no host name: the server address is used instead.
    scope = _scope(query_string=b"a=\xff\xfe", headers=[(b"host", b"h\xe9")])
    url = URL(scope=scope)
    assert url.query == "a=ÿþ"
    assert url.netloc == "example.com"
    utf8 = URL(scope=_scope(query_string="q=é".encode()))
    assert utf8.query == "q=é"


@pytest.mark.parametrize(
    "host",
    [
        "[bad",
        "[::1",
        "h:abc",
        "h:99999",
        "h:",
        "evil.com/x.example.com",
        "evil.com?x.example.com",
        "evil.com#x.example.com",
        "user:pw@evil.com",
        "evil.com\\x",
        "evil.com x",
        "evil.com\r\nx",
        "",
        "h:00000000080",
        "[::1]x",
        "[fe80::1%eth0]",
        "[V1.x]",
        "999.1.1.1",
        "1.2.3",
        "2130706433",
        "ex%zzample.com",
        "example.com%",
        "h:" + "0" * 5000 + "80",
    ],
)
def test_url_from_scope_ignores_malformed_host_header(host: str) -> None:
    url = URL(scope=_scope(headers=[(b"host", host.encode())], query_string=b"a=1"))
    assert str(url) == "http://example.com/path?a=1"
    assert url.hostname == "example.com"
    assert url.path == "/path"
    assert url.query == "a=1"


@pytest.mark.parametrize(
    ("host", "hostname", "port"),
    [
        ("example.org", "example.org", None),
        ("Example.ORG:8080", "example.org", 8080),
        ("h:000080", "h", 80),
        ("h:0", "h", 0),
        ("h:65535", "h", 65535),
        ("api_service", "api_service", None),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", None),
        ("example.com.", "example.com.", None),
        ("127.0.0.1:9", "127.0.0.1", 9),
        ("[::1]", "::1", None),
        ("[::1]:8000", "::1", 8000),
        ("[::ffff:192.0.2.1]", "::ffff:192.0.2.1", None),
        ("[v1.foo]", "v1.foo", None),
        ("%65xample.com", "%65xample.com", None),
    ],
)
def test_url_from_scope_keeps_well_formed_host_header(
    host: str, hostname: str, port: int | None
) -> None:
    url = URL(scope=_scope(headers=[(b"host", host.encode())]))
    assert url.netloc == host
    assert url.hostname == hostname
    assert url.port == port


def test_url_from_scope_with_no_server_and_bad_host_is_relative() -> None:
    url = URL(scope=_scope(server=None, headers=[(b"host", b"evil.com/x")]))
    assert str(url) == "/path"
    assert url.netloc == ""


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (("::1", 80), "http://[::1]/path"),
        (("2001:db8::1", 8000), "http://[2001:db8::1]:8000/path"),
        (("/run/app.sock", None), "/path"),
    ],
)
def test_url_from_scope_server_address(server: tuple[str, int | None], expected: str) -> None:
    assert str(URL(scope=_scope(server=server))) == expected


@pytest.mark.parametrize(
    ("path", "with_host", "expected"),
    [
        ("@evil.com", True, "http://example.com/@evil.com"),
        ("@evil.com", False, "http://example.com/@evil.com"),
        ("u:p@evil.com/x", True, "http://example.com/u:p@evil.com/x"),
        ("http://evil.com/x", True, "http://example.com/http://evil.com/x"),
        ("//evil.com/x", True, "http://example.com//evil.com/x"),
        ("/a?b#c", True, "http://example.com/a%3Fb%23c"),
        ("/\\evil.com", True, "http://example.com/%5Cevil.com"),
    ],
)
def test_url_from_scope_path_stays_a_path(path: str, with_host: bool, expected: str) -> None:
    headers = [(b"host", b"example.com")] if with_host else []
    url = URL(scope=_scope(path=path, headers=headers))
    assert str(url) == expected
    assert url.hostname == "example.com"
    assert url.query == ""
    assert url.fragment == ""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("//evil.com/x", "/%2Fevil.com/x"),
        ("/\\evil.com/x", "/%5Cevil.com/x"),
        ("@evil.com", "/@evil.com"),
        ("/a#b", "/a%23b"),
    ],
)
def test_url_from_scope_without_authority_is_never_protocol_relative(
    path: str, expected: str
) -> None:
    url = URL(scope=_scope(path=path, server=None))
    assert str(url) == expected
    assert url.netloc == ""
    assert url.path == expected


def test_url_from_scope_query_keeps_hash_out_of_fragment() -> None:
    url = URL(scope=_scope(query_string=b"a=1#b"))
    assert url.query == "a=1%23b"
    assert url.fragment == ""


def test_url_lenient_split_of_unparsable_urls() -> None:
    url = URL("wss://[oops/p/q?x=1#f")
    assert (url.scheme, url.netloc, url.path, url.query, url.fragment) == (
        "wss",
        "[oops",
        "/p/q",
        "x=1",
        "f",
    )
    assert url.is_secure
    rel = URL("//[x?y")
    assert (rel.netloc, rel.path, rel.query) == ("[x", "", "y")


def test_url_scope_and_url_exclusive() -> None:
    with pytest.raises(AssertionError):
        URL("http://x", scope=_scope())


# ----------------------------------------------------------------------------------- URLPath


def test_urlpath_is_str() -> None:
    path = URLPath("/a/b", protocol="http")
    assert path == "/a/b"
    assert isinstance(path, str)
    assert path.protocol == "http"
    assert path.host == ""
    with pytest.raises(AssertionError):
        URLPath("/x", protocol="ftp")


@pytest.mark.parametrize(
    ("protocol", "base", "expected"),
    [
        ("http", "http://e.com", "http://e.com/p"),
        ("http", "https://e.com", "https://e.com/p"),
        ("http", "ws://e.com", "http://e.com/p"),
        ("websocket", "http://e.com", "ws://e.com/p"),
        ("websocket", "https://e.com", "wss://e.com/p"),
        ("websocket", "wss://e.com/", "wss://e.com/p"),
        ("", "https://e.com/root/", "https://e.com/root/p"),
    ],
)
def test_urlpath_make_absolute_url(protocol: str, base: str, expected: str) -> None:
    assert URLPath("/p", protocol=protocol).make_absolute_url(base) == expected
    assert URLPath("/p", protocol=protocol).make_absolute_url(URL(base)) == expected


def test_urlpath_host_overrides_base_netloc() -> None:
    url = URLPath("/p", protocol="websocket", host="api.e.com").make_absolute_url("https://e.com")
    assert isinstance(url, URL)
    assert url == "wss://api.e.com/p"


# ----------------------------------------------------------------------------------- Headers


def test_headers_mapping() -> None:
    headers = Headers({"Content-Type": "text/plain", "X-A": "1"})
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert "x-a" in headers
    assert "X-A" in headers
    assert "nope" not in headers
    assert object() not in headers
    assert headers.get("nope") is None
    assert len(headers) == 2
    assert list(headers) == ["content-type", "x-a"]
    assert headers.raw == [(b"content-type", b"text/plain"), (b"x-a", b"1")]
    with pytest.raises(KeyError):
        headers["nope"]


def test_headers_get() -> None:
    headers = Headers(raw=[(b"a", b"1"), (b"a", b"2")])
    assert headers.get("A") == "1"
    assert headers.get("b") is None
    assert headers.get("b", "dflt") == "dflt"
    assert headers.get("ключ", "dflt") == "dflt"
    assert MultiDict([("a", 1)]).get("b", 0) == 0


def test_headers_multi_values() -> None:
    raw = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
    headers = Headers(raw=raw)
    assert headers["a"] == "1"
    assert headers.getlist("A") == ["1", "3"]
    assert headers.getlist("missing") == []
    assert headers.keys() == ["a", "b", "a"]
    assert headers.values() == ["1", "2", "3"]
    assert headers.items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert len(headers) == 3
    assert repr(headers) == f"Headers(raw={raw!r})"
    assert repr(Headers({"a": "1"})) == "Headers({'a': '1'})"


def test_headers_latin1_and_non_latin1_keys() -> None:
    headers = Headers(raw=[(b"x", b"caf\xe9\xff\x00")])
    assert headers["x"] == "café\xff\x00"
    # keys that cannot be latin-1 encoded are simply absent, not a crash
    assert "ключ" not in headers
    assert headers.getlist("ключ") == []
    with pytest.raises(KeyError):
        headers["ключ"]


def test_headers_from_scope_shares_list() -> None:
    raw = [(b"host", b"e.com")]
    scope = {"headers": raw}
    headers = Headers(scope=scope)
    assert headers.raw is raw
    mutable = MutableHeaders(scope=scope)
    mutable["x-new"] = "1"
    assert scope["headers"] == [(b"host", b"e.com"), (b"x-new", b"1")]


def test_headers_from_scope_tuple_is_stored_back_as_list() -> None:
    scope: dict[str, Any] = {"headers": ((b"a", b"1"),)}
    mutable = MutableHeaders(scope=scope)
    mutable.append("b", "2")
    assert scope["headers"] == [(b"a", b"1"), (b"b", b"2")]


def test_headers_argument_exclusivity() -> None:
    with pytest.raises(AssertionError):
        Headers({"a": "b"}, raw=[])
    with pytest.raises(AssertionError):
        Headers({"a": "b"}, scope={"headers": []})
    with pytest.raises(AssertionError):
        Headers(raw=[], scope={"headers": []})
    assert len(Headers()) == 0


def test_headers_eq() -> None:
    assert Headers(raw=[(b"a", b"1"), (b"b", b"2")]) == Headers(raw=[(b"b", b"2"), (b"a", b"1")])
    assert Headers({"a": "1"}) != Headers({"a": "2"})
    assert Headers({"a": "1"}) != {"a": "1"}
    assert Headers({"a": "1"}) == MutableHeaders({"a": "1"})


def test_headers_mutablecopy_is_independent() -> None:
    headers = Headers({"a": "1"})
    copy = headers.mutablecopy()
    assert isinstance(copy, MutableHeaders)
    copy["a"] = "2"
    assert headers["a"] == "1"
    assert copy["a"] == "2"


def test_mutable_headers_set_and_delete() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
    headers["A"] = "x"
    assert headers.raw == [(b"a", b"x"), (b"b", b"2")]
    headers["c"] = "y"
    assert headers.raw[-1] == (b"c", b"y")
    del headers["B"]
    assert "b" not in headers
    del headers["missing"]  # no error, like Starlette
    headers.append("set-cookie", "a=1")
    headers.append("Set-Cookie", "b=2")
    assert headers.getlist("set-cookie") == ["a=1", "b=2"]
    del headers["set-cookie"]
    assert headers.getlist("set-cookie") == []


def test_mutable_headers_setdefault_update() -> None:
    headers = MutableHeaders()
    assert headers.setdefault("a", "1") == "1"
    assert headers.setdefault("A", "2") == "1"
    assert headers["a"] == "1"
    headers.update({"a": "3", "b": "4"})
    assert headers.items() == [("a", "3"), ("b", "4")]


def test_mutable_headers_vary() -> None:
    headers = MutableHeaders()
    headers.add_vary_header("Origin")
    assert headers["vary"] == "Origin"
    headers.add_vary_header("Accept-Encoding")
    assert headers["vary"] == "Origin, Accept-Encoding"


def test_mutable_headers_or() -> None:
    headers = MutableHeaders({"a": "1"})
    merged = headers | {"b": "2", "a": "3"}
    assert isinstance(merged, MutableHeaders)
    assert merged.items() == [("a", "3"), ("b", "2")]
    assert headers.items() == [("a", "1")]
    headers |= Headers({"c": "5"})
    assert headers.items() == [("a", "1"), ("c", "5")]
    with pytest.raises(TypeError, match="Expected a mapping but got list"):
        headers |= [("d", "6")]  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        headers | "x"  # type: ignore[operator]


def test_mutable_headers_reject_non_latin1_values() -> None:
    headers = MutableHeaders()
    with pytest.raises(UnicodeEncodeError):
        headers["x"] = "ключ"


# ------------------------------------------------------------------------------- multidicts


def test_immutable_multidict() -> None:
    d = ImmutableMultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert d["a"] == "3"
    assert d.get("a") == "3"
    assert d.get("z") is None
    assert d.getlist("a") == ["1", "3"]
    assert d.getlist("z") == []
    assert list(d.keys()) == ["a", "b"]
    assert list(d.values()) == ["3", "2"]
    assert list(d.items()) == [("a", "3"), ("b", "2")]
    assert d.multi_items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert len(d) == 2
    assert list(d) == ["a", "b"]
    assert "a" in d
    assert "z" not in d
    assert repr(d) == "ImmutableMultiDict([('a', '1'), ('b', '2'), ('a', '3')])"
    with pytest.raises(KeyError):
        d["z"]


def test_immutable_multidict_construction() -> None:
    assert ImmutableMultiDict().multi_items() == []
    assert ImmutableMultiDict({"a": 1}).multi_items() == [("a", 1)]
    source = ImmutableMultiDict([("a", 1), ("a", 2)])
    assert ImmutableMultiDict(source).multi_items() == [("a", 1), ("a", 2)]
    assert ImmutableMultiDict([("a", 1)], b=2).multi_items() == [("a", 1), ("b", 2)]
    with pytest.raises(AssertionError):
        ImmutableMultiDict([], [])
    # multi_items returns a copy
    items = source.multi_items()
    items.append(("x", 0))
    assert "x" not in source


def test_immutable_multidict_eq() -> None:
    a = ImmutableMultiDict([("a", "1"), ("b", "2")])
    assert a == ImmutableMultiDict([("b", "2"), ("a", "1")])
    assert a != ImmutableMultiDict([("a", "1")])
    assert a != ImmutableMultiDict([("a", "1"), ("b", "3")])
    assert a != {"a": "1", "b": "2"}
    assert a != MultiDict([("a", "1"), ("b", "2")])


def test_multidict_mutation() -> None:
    d = MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    d["a"] = "x"
    assert d.multi_items() == [("b", "2"), ("a", "x")]
    d.append("a", "y")
    assert d.getlist("a") == ["x", "y"]
    assert d["a"] == "y"
    d.setlist("c", ["1", "2"])
    assert d.getlist("c") == ["1", "2"]
    d.setlist("c", [])
    assert "c" not in d
    assert d.setdefault("a", "z") == "y"
    assert d.setdefault("n", "z") == "z"
    assert d.multi_items()[-1] == ("n", "z")
    del d["n"]
    assert "n" not in d
    with pytest.raises(KeyError):
        del d["n"]


def test_multidict_pop_family() -> None:
    d = MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert d.pop("a") == "3"
    assert d.multi_items() == [("b", "2")]
    assert d.pop("missing") is None
    assert d.pop("missing", "dflt") == "dflt"
    d = MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert d.poplist("a") == ["1", "3"]
    assert d.poplist("missing") == []
    assert d.popitem() == ("b", "2")
    assert len(d) == 0
    with pytest.raises(KeyError):
        d.popitem()


def test_multidict_update_and_clear() -> None:
    d = MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    d.update([("a", "4"), ("a", "5"), ("c", "6")])
    assert d.multi_items() == [("b", "2"), ("a", "4"), ("a", "5"), ("c", "6")]
    d.update({"b": "7"}, d="8")
    assert d.multi_items() == [("a", "4"), ("a", "5"), ("c", "6"), ("b", "7"), ("d", "8")]
    d.update(MultiDict([("c", "x")]))
    assert d["c"] == "x"
    d.clear()
    assert d.multi_items() == []
    assert len(d) == 0


def test_multidict_empty_and_duplicate_keys() -> None:
    d = MultiDict([("", "1"), ("", "2")])
    assert d[""] == "2"
    assert d.getlist("") == ["1", "2"]


# ------------------------------------------------------------------------------- QueryParams


def test_query_params_from_string() -> None:
    q = QueryParams("a=123&a=456&b=789")
    assert "a" in q
    assert "A" not in q
    assert q["a"] == "456"
    assert q.getlist("a") == ["123", "456"]
    assert list(q.keys()) == ["a", "b"]
    assert list(q.values()) == ["456", "789"]
    assert list(q.items()) == [("a", "456"), ("b", "789")]
    assert q.multi_items() == [("a", "123"), ("a", "456"), ("b", "789")]
    assert len(q) == 2
    assert str(q) == "a=123&a=456&b=789"
    assert repr(q) == "QueryParams('a=123&a=456&b=789')"
    assert q == QueryParams([("a", "123"), ("b", "789"), ("a", "456")])
    assert q != QueryParams("a=123")


@pytest.mark.parametrize(
    "source",
    [
        "a=1&b=2",
        b"a=1&b=2",
        [("a", "1"), ("b", "2")],
        {"a": "1", "b": "2"},
        ImmutableMultiDict([("a", "1"), ("b", "2")]),
        QueryParams("a=1&b=2"),
    ],
)
def test_query_params_sources(source: Any) -> None:
    q = QueryParams(source)
    assert q.multi_items() == [("a", "1"), ("b", "2")]
    assert str(q) == "a=1&b=2"


def test_query_params_kwargs_and_non_str_values() -> None:
    q = QueryParams("a=1", b=2)
    assert q.multi_items() == [("a", "1"), ("b", "2")]
    q = QueryParams([("n", 5), (1, True)])
    assert q.multi_items() == [("n", "5"), ("1", "True")]
    assert q["n"] == "5"


@pytest.mark.parametrize(
    ("raw", "items"),
    [
        ("", []),
        (b"", []),
        ("a", [("a", "")]),
        ("a=", [("a", "")]),
        ("=v", [("", "v")]),
        ("&&a=1&&", [("a", "1")]),
        ("a=%zz&b=%", [("a", "%zz"), ("b", "%")]),
        ("a=%E2%9C%93", [("a", "✓")]),
        ("a=%ff", [("a", "\ufffd")]),
        ("a+b=c+d", [("a b", "c d")]),
        ("a=1;b=2", [("a", "1;b=2")]),
        ("x=1&x=2&x=", [("x", "1"), ("x", "2"), ("x", "")]),
    ],
)
def test_query_params_malformed(raw: str | bytes, items: list[tuple[str, str]]) -> None:
    assert QueryParams(raw).multi_items() == items


def test_query_params_bytes_are_latin1() -> None:
    q = QueryParams(b"a=\xe9")
    assert q["a"] == "é"


def test_query_params_str_reencodes() -> None:
    q = QueryParams([("a b", "c&d"), ("é", "=")])
    assert str(q) == "a+b=c%26d&%C3%A9=%3D"
    assert QueryParams(str(q)) == q


def test_query_params_lazy_parse_is_transparent() -> None:
    q = QueryParams("b=2&a=1")
    # equality, iteration and repr all force the parse on first use
    assert q == QueryParams([("b", "2"), ("a", "1")])
    q2 = QueryParams("b=2&a=1")
    assert list(q2) == ["b", "a"]
    q3 = QueryParams("b=2&a=1")
    assert repr(q3) == "QueryParams('b=2&a=1')"
    with pytest.raises(AttributeError, match="'QueryParams' object has no attribute 'nope'"):
        q3.nope  # type: ignore[attr-defined]  # noqa: B018


# --------------------------------------------------------------------- small value classes


def test_state() -> None:
    state = State()
    state.a = 1
    assert state.a == 1
    del state.a
    with pytest.raises(AttributeError, match="'State' object has no attribute 'a'"):
        state.a  # noqa: B018
    with pytest.raises(AttributeError, match="'State' object has no attribute 'missing'"):
        del state.missing
    with pytest.raises(KeyError):  # what Starlette raises here
        del state.missing
    backing = {"x": 1}
    shared = State(backing)
    shared.y = 2
    assert backing == {"x": 1, "y": 2}
    assert shared.x == 1
    assert getattr(shared, "nope", "default") == "default"


def test_state_item_access_shares_the_attributes() -> None:
    backing: dict[str, Any] = {"old": 0}
    state = State(backing)
    state["a"] = 1
    assert state.a == 1
    state.b = 2
    assert state["b"] == 2
    assert "b" in state
    assert "nope" not in state
    assert sorted(state) == ["a", "b", "old"]
    assert len(state) == 3
    del state["a"]
    assert backing == {"old": 0, "b": 2}
    with pytest.raises(KeyError):
        state["a"]
    with pytest.raises(KeyError):
        del state["a"]
    with pytest.raises(AttributeError):
        state.a  # noqa: B018


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))]
)
def test_values_survive_copy_and_pickle(clone: Any) -> None:
    state = clone(State({"a": 1}))
    assert state.a == 1
    for value in (
        QueryParams("a=1&b=2"),
        QueryParams(""),
        Headers({"a": "b"}),
        MutableHeaders({"a": "b"}),
        MultiDict([("a", 1), ("a", 2)]),
        FormData([("a", "1")]),
        URL("http://x/y?z=1"),
        Address("h", 1),
    ):
        assert clone(value) == value
    path = clone(URLPath("/p", "websocket", "h"))
    assert (path, path.protocol, path.host) == ("/p", "websocket", "h")
    assert str(clone(Secret("s"))) == "s"


def test_address() -> None:
    address = Address("127.0.0.1", 8000)
    host, port = address
    assert (host, port) == ("127.0.0.1", 8000)
    assert address.host == "127.0.0.1"
    assert address.port == 8000
    assert address == ("127.0.0.1", 8000)


def test_secret() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == "Secret('**********')"
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in f"{[secret]}"
    assert str(secret) == "hunter2"
    assert bool(secret)
    assert not Secret("")


def test_comma_separated_strings() -> None:
    csv = CommaSeparatedStrings("'localhost', 127.0.0.1, \"a, b\" ,x")
    assert list(csv) == ["localhost", "127.0.0.1", "a, b", "x"]
    assert len(csv) == 4
    assert csv[0] == "localhost"
    assert csv[1:3] == ["127.0.0.1", "a, b"]
    assert repr(csv) == "CommaSeparatedStrings(['localhost', '127.0.0.1', 'a, b', 'x'])"
    assert str(csv) == "'localhost', '127.0.0.1', 'a, b', 'x'"
    assert list(CommaSeparatedStrings(["a", "b"])) == ["a", "b"]
    assert list(CommaSeparatedStrings("")) == []


# ----------------------------------------------------------------------- UploadFile/FormData


@pytest.mark.anyio
async def test_upload_file_in_memory() -> None:
    with SpooledTemporaryFile(max_size=1024) as spooled:
        await _check_in_memory(spooled)


async def _check_in_memory(spooled: Any) -> None:
    upload = UploadFile(
        spooled,
        size=0,
        filename="a.txt",
        headers=Headers({"content-type": "text/plain"}),
    )
    assert upload.content_type == "text/plain"
    assert upload._in_memory
    await upload.write(b"hello ")
    await upload.write(b"world")
    assert upload.size == 11
    await upload.seek(0)
    assert await upload.read(5) == b"hello"
    assert await upload.read() == b" world"
    assert upload._in_memory
    await upload.close()
    assert spooled.closed


@pytest.mark.anyio
async def test_upload_file_rolled_to_disk() -> None:
    with SpooledTemporaryFile(max_size=8) as spooled:
        await _check_rolled(spooled)


async def _check_rolled(spooled: Any) -> None:
    upload = UploadFile(spooled, filename="big.bin")
    assert upload.size is None
    await upload.write(b"0123456789abcdef")
    assert not upload._in_memory
    assert upload.size is None
    await upload.seek(0)
    assert await upload.read() == b"0123456789abcdef"
    await upload.close()
    assert spooled.closed


@pytest.mark.anyio
async def test_upload_file_plain_file_uses_thread(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    with open(path, "rb") as handle:
        upload = UploadFile(handle)
        assert not upload._in_memory
        assert upload.content_type is None
        assert upload.filename is None
        assert await upload.read() == b"abc"
        await upload.seek(1)
        assert await upload.read() == b"bc"
        await upload.close()
        assert handle.closed


def test_upload_file_repr() -> None:
    upload = UploadFile(io.BytesIO(), size=3, filename="x", headers=Headers({"a": "b"}))
    assert repr(upload) == "UploadFile(filename='x', size=3, headers=Headers({'a': 'b'}))"


@pytest.mark.anyio
async def test_form_data_close_closes_files() -> None:
    f1, f2 = io.BytesIO(b"1"), io.BytesIO(b"2")
    form = FormData([("a", UploadFile(f1, filename="1")), ("b", "text"), ("a", UploadFile(f2))])
    assert form["b"] == "text"
    assert len(form.getlist("a")) == 2
    assert form == FormData(form.multi_items())
    await form.close()
    assert f1.closed
    assert f2.closed


def test_multidict_equality_is_per_key_and_ordered_within_a_key() -> None:
    with io.BytesIO(b"1") as f1, io.BytesIO(b"2") as f2:
        first, second = UploadFile(f1, filename="1"), UploadFile(f2, filename="2")
        form = FormData([("f", first), ("f", second), ("n", "x")])
        assert form == FormData([("n", "x"), ("f", first), ("f", second)])
        assert form != FormData([("f", second), ("f", first), ("n", "x")])
        assert form != FormData([("f", first), ("n", "x")])
        assert form != FormData([("f", first), ("f", first), ("n", "x")])
    assert QueryParams("a=1&b=2") == QueryParams("b=2&a=1")
    assert QueryParams("a=1&a=2") != QueryParams("a=2&a=1")
    assert MultiDict([("a", 1), ("a", 2)]) != MultiDict([("a", 2), ("a", 1)])
    assert MultiDict([("a", 1)]) != MultiDict([("b", 1)])


class _ThreadRecordingSpool(SpooledTemporaryFile):  # type: ignore[type-arg]
    """A real spooled file that notes which thread each write ran in."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size=max_size)
        self.write_threads: list[int] = []

    def write(self, data: Any) -> int:
        self.write_threads.append(threading.get_ident())
        return super().write(data)


@pytest.mark.anyio
async def test_upload_file_write_that_rolls_over_runs_in_a_thread() -> None:
    loop_thread = threading.get_ident()
    with _ThreadRecordingSpool(max_size=8) as spooled:
        upload = UploadFile(spooled, size=0)  # type: ignore[arg-type]
        await upload.write(b"1234")  # stays in memory: written on the event loop
        await upload.write(b"5678")  # exactly max_size: still in memory
        assert upload._in_memory
        await upload.write(b"9")  # rolls the file over to disk: a worker thread
        assert not upload._in_memory
        await upload.write(b"0")  # on disk: a worker thread
        assert spooled.write_threads[:2] == [loop_thread, loop_thread]
        assert loop_thread not in spooled.write_threads[2:]
        assert len(spooled.write_threads) == 4
        await upload.seek(0)
        assert await upload.read() == b"1234567890"
        assert upload.size == 10
        await upload.close()


def test_form_data_construction() -> None:
    form = FormData({"a": "1"}, b="2")
    assert form.multi_items() == [("a", "1"), ("b", "2")]
    assert repr(FormData()) == "FormData([])"
