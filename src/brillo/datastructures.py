"""Request/response data structures: URLs, headers, query strings, multidicts, forms and friends.

Everything here is plain Python over the raw ASGI values; nothing does I/O except
:class:`UploadFile`, whose async methods only reach for a worker thread once the spooled
file has rolled over to disk.
"""

from __future__ import annotations

import shlex
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeVar, cast, overload
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

import anyio.to_thread

from brillo._utils import scope_url

__all__ = [
    "URL",
    "Address",
    "CommaSeparatedStrings",
    "FormData",
    "Headers",
    "ImmutableMultiDict",
    "MultiDict",
    "MutableHeaders",
    "QueryParams",
    "Secret",
    "State",
    "URLPath",
    "UploadFile",
]

_KeyType = TypeVar("_KeyType")
_CovariantValueType = TypeVar("_CovariantValueType", covariant=True)
_T = TypeVar("_T")

_SECURE_SCHEMES = frozenset(("https", "wss"))


class Address(NamedTuple):
    """A network peer: ``(host, port)``, as found in ``scope["client"]``/``scope["server"]``."""

    host: str
    port: int


def _lenient_split(url: str) -> SplitResult:
    """Split a URL that :func:`urllib.parse.urlsplit` rejects, without validating the netloc."""
    rest, _, fragment = url.partition("#")
    rest, _, query = rest.partition("?")
    scheme = netloc = ""
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        netloc, slash, path = rest.partition("/")
        rest = slash + path
    elif rest.startswith("//"):
        netloc, slash, path = rest[2:].partition("/")
        rest = slash + path
    return SplitResult(scheme.lower(), netloc, rest, query, fragment)


class URL:
    """An immutable URL with easy access to its components.

    Build it from a string (``URL("https://example.com/a?b=c")``), from an ASGI connection
    scope (``URL(scope=scope)``), or from components
    (``URL(scheme="https", netloc="example.com", path="/")``).
    Components are parsed lazily on first access.
    """

    __slots__ = ("_components", "_url")

    def __init__(self, url: str = "", scope: Mapping[str, Any] | None = None, **components: Any):
        if scope is not None:
            assert not url, 'Cannot set both "url" and "scope".'
            assert not components, 'Cannot set both "scope" and "**components".'
            url = self._from_scope(scope)
        elif components:
            assert not url, 'Cannot set both "url" and "**components".'
            url = URL("").replace(**components).components.geturl()
        self._url = url
        self._components: SplitResult | None = None

    @staticmethod
    def _from_scope(scope: Mapping[str, Any]) -> str:
        # The Host header is used only when well-formed (else scope["server"]), and the path
        # is escaped so that it cannot leak into the authority, query or fragment.
        return scope_url(scope)

    @property
    def components(self) -> SplitResult:
        """The parsed URL as a :class:`urllib.parse.SplitResult`."""
        if self._components is None:
            try:
                self._components = urlsplit(self._url)
            except ValueError:  # e.g. an unbalanced "[" from a hostile Host header
                self._components = _lenient_split(self._url)
        return self._components

    @property
    def scheme(self) -> str:
        """The scheme, e.g. ``"https"`` (empty for a relative URL)."""
        return self.components.scheme

    @property
    def netloc(self) -> str:
        """The network location: ``[user[:password]@]host[:port]``."""
        return self.components.netloc

    @property
    def path(self) -> str:
        """The path component."""
        return self.components.path

    @property
    def query(self) -> str:
        """The raw (still percent-encoded) query string, without the ``?``."""
        return self.components.query

    @property
    def fragment(self) -> str:
        """The fragment, without the ``#``."""
        return self.components.fragment

    @property
    def username(self) -> str | None:
        """The user name from the netloc, or None."""
        return self.components.username

    @property
    def password(self) -> str | None:
        """The password from the netloc, or None."""
        return self.components.password

    @property
    def hostname(self) -> str | None:
        """The host name (lower-cased), or None."""
        return self.components.hostname

    @property
    def port(self) -> int | None:
        """The explicit port, or None when the URL has none (or it is not a valid port)."""
        try:
            return self.components.port
        except ValueError:
            return None

    @property
    def is_secure(self) -> bool:
        """True for ``https`` and ``wss`` URLs."""
        return self.scheme in _SECURE_SCHEMES

    def replace(self, **kwargs: Any) -> URL:
        """A copy with some components replaced.

        Accepts the :class:`~urllib.parse.SplitResult` fields (``scheme``, ``netloc``, ``path``,
        ``query``, ``fragment``) and also ``username``, ``password``, ``hostname`` and ``port``,
        which are recombined into the netloc.
        """
        if {"username", "password", "hostname", "port"} & kwargs.keys():
            hostname = kwargs.pop("hostname", None)
            port = kwargs.pop("port", self.port)
            username = kwargs.pop("username", self.username)
            password = kwargs.pop("password", self.password)
            if hostname is None:
                hostname = self.netloc.rpartition("@")[2]
                if not hostname.endswith("]"):
                    # Strip any port; an IPv6 literal without port ends with "]".
                    hostname = hostname.rsplit(":", 1)[0]
            elif hostname.count(":") > 1 and not hostname.startswith("["):
                # A bare IPv6 address (as .hostname returns it) goes back in brackets.
                hostname = f"[{hostname}]"
            netloc = hostname
            if port is not None:
                netloc += f":{port}"
            if username is not None:
                userinfo = username if password is None else f"{username}:{password}"
                netloc = f"{userinfo}@{netloc}"
            kwargs["netloc"] = netloc
        return self.__class__(self.components._replace(**kwargs).geturl())

    def include_query_params(self, **kwargs: Any) -> URL:
        """A copy with the given query parameters set (replacing existing values of those keys)."""
        params = MultiDict(parse_qsl(self.query, keep_blank_values=True))
        params.update({str(key): str(value) for key, value in kwargs.items()})
        return self.replace(query=urlencode(params.multi_items()))

    def replace_query_params(self, **kwargs: Any) -> URL:
        """A copy whose query string holds exactly the given parameters."""
        query = urlencode([(str(key), str(value)) for key, value in kwargs.items()])
        return self.replace(query=query)

    def remove_query_params(self, keys: str | Sequence[str]) -> URL:
        """A copy without the given query parameter key(s)."""
        if isinstance(keys, str):
            keys = [keys]
        params = MultiDict(parse_qsl(self.query, keep_blank_values=True))
        for key in keys:
            params.pop(key, None)
        return self.replace(query=urlencode(params.multi_items()))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._url)

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        url = str(self)
        if self.password:
            url = str(self.replace(password="********"))
        return f"{self.__class__.__name__}({url!r})"


class URLPath(str):
    """A URL path produced by ``url_path_for``, remembering its protocol and optional host.

    ``protocol`` is ``"http"``, ``"websocket"`` or ``""`` (unknown: reuse the base URL scheme).
    """

    protocol: str
    host: str

    def __new__(cls, path: str, protocol: str = "", host: str = "") -> URLPath:
        assert protocol in ("http", "websocket", ""), f"Invalid protocol {protocol!r}"
        return str.__new__(cls, path)

    def __init__(self, path: str, protocol: str = "", host: str = "") -> None:
        self.protocol = protocol
        self.host = host

    def make_absolute_url(self, base_url: str | URL) -> URL:
        """Join this path onto ``base_url``.

        The scheme follows the path's protocol and the base URL's security: ``ws``/``wss`` for
        websocket paths, ``http``/``https`` for http paths.
        """
        if isinstance(base_url, str):
            base_url = URL(base_url)
        if self.protocol == "websocket":
            scheme = "wss" if base_url.is_secure else "ws"
        elif self.protocol == "http":
            scheme = "https" if base_url.is_secure else "http"
        else:
            scheme = base_url.scheme
        netloc = self.host or base_url.netloc
        path = base_url.path.rstrip("/") + str(self)
        return URL(scheme=scheme, netloc=netloc, path=path)


class Secret:
    """A string that keeps its value out of reprs and tracebacks; ``str()`` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}('**********')"

    def __str__(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)


class CommaSeparatedStrings(Sequence[str]):
    """A sequence of strings parsed from ``"a, b, 'c, d'"`` (shell-style quoting honoured)."""

    def __init__(self, value: str | Sequence[str]):
        if isinstance(value, str):
            lexer = shlex.shlex(value, posix=True)
            lexer.whitespace = ","
            lexer.whitespace_split = True
            self._items = [item.strip() for item in lexer]
        else:
            self._items = list(value)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._items[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._items!r})"

    def __str__(self) -> str:
        return ", ".join(repr(item) for item in self._items)


class ImmutableMultiDict(Mapping[_KeyType, _CovariantValueType]):
    """An immutable mapping that may hold several values per key, in insertion order.

    ``d[key]`` gives the last value for ``key``; :meth:`getlist` gives all of them and
    :meth:`multi_items` every ``(key, value)`` pair.
    """

    _list: list[tuple[Any, Any]]
    _dict: dict[Any, Any]

    def __init__(
        self,
        *args: ImmutableMultiDict[_KeyType, _CovariantValueType]
        | Mapping[_KeyType, _CovariantValueType]
        | Iterable[tuple[_KeyType, _CovariantValueType]],
        **kwargs: Any,
    ) -> None:
        assert len(args) < 2, "Too many arguments."
        value: Any = args[0] if args else []
        if kwargs:
            value = ImmutableMultiDict(value).multi_items() + list(kwargs.items())

        items: list[tuple[Any, Any]]
        if not value:
            items = []
        elif hasattr(value, "multi_items"):
            items = list(value.multi_items())
        elif hasattr(value, "items"):
            items = list(value.items())
        else:
            items = list(value)
        self._list = items
        self._dict = dict(items)

    def getlist(self, key: Any) -> list[_CovariantValueType]:
        """Every value stored for ``key``, in order (empty list when absent)."""
        return [item_value for item_key, item_value in self._list if item_key == key]

    @overload
    def get(self, key: _KeyType) -> _CovariantValueType | None: ...
    @overload
    def get(self, key: _KeyType, default: _T) -> _CovariantValueType | _T: ...
    def get(self, key: Any, default: Any = None) -> Any:
        """The last value for ``key``, or ``default``."""
        return self._dict.get(key, default)

    def keys(self) -> KeysView[_KeyType]:
        """The distinct keys, in first-seen order."""
        return self._dict.keys()

    def values(self) -> ValuesView[_CovariantValueType]:
        """The last value of each key."""
        return self._dict.values()

    def items(self) -> ItemsView[_KeyType, _CovariantValueType]:
        """``(key, last value)`` for each distinct key."""
        return self._dict.items()

    def multi_items(self) -> list[tuple[_KeyType, _CovariantValueType]]:
        """Every ``(key, value)`` pair, duplicates included, in insertion order."""
        return list(self._list)

    def __getitem__(self, key: _KeyType) -> _CovariantValueType:
        value: _CovariantValueType = self._dict[key]
        return value

    def __contains__(self, key: Any) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[_KeyType]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        # Equal when every key has the same values in the same order; the order of different
        # keys does not matter. Values are only compared with ==, never ordered (UploadFile).
        if not isinstance(other, self.__class__):
            return False
        if len(self._list) != len(other._list):
            return False
        return _grouped(self._list) == _grouped(other._list)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.multi_items()!r})"


def _grouped(items: list[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for key, value in items:
        values = groups.get(key)
        if values is None:
            groups[key] = [value]
        else:
            values.append(value)
    return groups


class MultiDict(ImmutableMultiDict[Any, Any]):
    """A mutable :class:`ImmutableMultiDict`."""

    def __setitem__(self, key: Any, value: Any) -> None:
        self.setlist(key, [value])

    def __delitem__(self, key: Any) -> None:
        del self._dict[key]
        self._list = [(k, v) for k, v in self._list if k != key]

    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove every value of ``key``; return its last value, or ``default`` when absent."""
        self._list = [(k, v) for k, v in self._list if k != key]
        return self._dict.pop(key, default)

    def popitem(self) -> tuple[Any, Any]:
        """Remove the most recently added key; return ``(key, last value)``."""
        key, value = self._dict.popitem()
        self._list = [(k, v) for k, v in self._list if k != key]
        return key, value

    def poplist(self, key: Any) -> list[Any]:
        """Remove ``key`` and return all of its values."""
        values = [v for k, v in self._list if k == key]
        self.pop(key)
        return values

    def clear(self) -> None:
        """Remove everything."""
        self._dict.clear()
        self._list.clear()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return ``self[key]``, first storing ``default`` if ``key`` is absent."""
        if key not in self._dict:
            self._dict[key] = default
            self._list.append((key, default))
        return self._dict[key]

    def setlist(self, key: Any, values: list[Any]) -> None:
        """Replace all values of ``key`` with ``values`` (an empty list removes the key)."""
        if not values:
            self.pop(key, None)
            return
        self._list = [(k, v) for k, v in self._list if k != key]
        self._list.extend((key, value) for value in values)
        self._dict[key] = values[-1]

    def append(self, key: Any, value: Any) -> None:
        """Add one more value for ``key``."""
        self._list.append((key, value))
        self._dict[key] = value

    def update(
        self,
        *args: MultiDict | Mapping[Any, Any] | list[tuple[Any, Any]],
        **kwargs: Any,
    ) -> None:
        """Replace the values of every key present in the argument(s) with the new ones."""
        other = MultiDict(*args, **kwargs)
        new_keys = other._dict.keys()
        self._list = [(k, v) for k, v in self._list if k not in new_keys]
        self._list.extend(other._list)
        self._dict.update(other._dict)


class QueryParams(ImmutableMultiDict[str, str]):
    """An immutable multidict of query-string parameters.

    Built from a query string (``str`` or raw ``bytes``), a list of pairs, a mapping or another
    multidict. A string is parsed lazily, on first access, so creating one per request is cheap.
    Malformed percent-escapes are kept literally rather than raising. ``str()`` re-encodes.
    """

    __raw: str | None

    def __init__(
        self,
        *args: ImmutableMultiDict[Any, Any]
        | Mapping[Any, Any]
        | list[tuple[Any, Any]]
        | str
        | bytes,
        **kwargs: Any,
    ) -> None:
        assert len(args) < 2, "Too many arguments."
        value = args[0] if args else []
        kind = type(value)
        if (kind is bytes or kind is str) and not kwargs:
            if not value:
                self._list = []
                self._dict = {}
                return
            # Parsed on first use, see __getattr__.
            self.__raw = cast(bytes, value).decode("latin-1") if kind is bytes else cast(str, value)
            return
        self.__raw = None
        if isinstance(value, str):
            value = parse_qsl(value, keep_blank_values=True)
        elif isinstance(value, bytes):
            value = parse_qsl(value.decode("latin-1"), keep_blank_values=True)
        super().__init__(value, **kwargs)
        self._list = [(str(k), str(v)) for k, v in self._list]
        self._dict = {str(k): str(v) for k, v in self._dict.items()}

    def _parse(self) -> None:
        raw = self.__raw
        assert raw is not None
        self.__raw = None
        items = parse_qsl(raw, keep_blank_values=True)
        self._list = items
        self._dict = dict(items)

    if not TYPE_CHECKING:  # keep attribute typos visible to type checkers

        def __getattr__(self, name: str) -> Any:
            # Reached only while _list/_dict are unset: parse the pending query string now.
            if name in ("_list", "_dict") and self.__dict__.get("_QueryParams__raw") is not None:
                self._parse()
                return self.__dict__[name]
            raise AttributeError(f"'{self.__class__.__name__}' object has no attribute '{name}'")

    def __str__(self) -> str:
        return urlencode(self._list)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"


class UploadFile:
    """An uploaded file: a binary file object plus its name, size and part headers.

    The async methods run the underlying file operation in a worker thread only when the file
    is not held in memory (a :class:`~tempfile.SpooledTemporaryFile` that has rolled to disk,
    or any other real file).
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.filename = filename
        self.file = file
        self.size = size
        self.headers = headers or Headers()

    @property
    def content_type(self) -> str | None:
        """The part's ``Content-Type`` header, or None."""
        return self.headers.get("content-type", None)

    @property
    def _in_memory(self) -> bool:
        # A SpooledTemporaryFile flags rollover with ``_rolled``; assume disk for anything else.
        return not getattr(self.file, "_rolled", True)

    def _write_stays_in_memory(self, size: int) -> bool:
        """Whether writing ``size`` bytes keeps a spooled file in memory (no rollover to disk)."""
        if not self._in_memory:
            return False
        max_size: int = getattr(self.file, "_max_size", 0)
        return not max_size or self.file.tell() + size <= max_size

    async def write(self, data: bytes) -> None:
        """Append ``data`` to the file (and add its length to ``size`` when known).

        A write that makes a spooled file roll over to disk runs in a worker thread, like every
        write after it.
        """
        if self.size is not None:
            self.size += len(data)
        if self._write_stays_in_memory(len(data)):
            self.file.write(data)
        else:
            await anyio.to_thread.run_sync(self.file.write, data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining bytes by default)."""
        if self._in_memory:
            return self.file.read(size)
        return await anyio.to_thread.run_sync(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move to absolute position ``offset``."""
        if self._in_memory:
            self.file.seek(offset)
        else:
            await anyio.to_thread.run_sync(self.file.seek, offset)

    async def close(self) -> None:
        """Close the underlying file."""
        if self._in_memory:
            self.file.close()
        else:
            await anyio.to_thread.run_sync(self.file.close)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(filename={self.filename!r}, "
            f"size={self.size!r}, headers={self.headers!r})"
        )


class FormData(ImmutableMultiDict[str, "UploadFile | str"]):
    """An immutable multidict of submitted form fields: strings and :class:`UploadFile` values."""

    def __init__(
        self,
        *args: FormData | Mapping[str, str | UploadFile] | list[tuple[str, str | UploadFile]],
        **kwargs: str | UploadFile,
    ) -> None:
        super().__init__(*args, **kwargs)

    async def close(self) -> None:
        """Close every uploaded file in the form."""
        for _, value in self._list:
            if isinstance(value, UploadFile):
                await value.close()


class Headers(Mapping[str, str]):
    """An immutable, case-insensitive multidict of HTTP headers.

    Built from a ``headers=`` mapping, a ``raw=`` list of ``(bytes, bytes)`` pairs (names already
    lower-cased, as ASGI delivers them) or a connection ``scope=``, whose header list is used
    in place, not copied. Values are decoded as latin-1, so any byte sequence is accepted.
    """

    __slots__ = ("_list",)

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: list[tuple[bytes, bytes]] | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        self._list: list[tuple[bytes, bytes]]
        if headers is not None:
            assert raw is None, 'Cannot set both "headers" and "raw".'
            assert scope is None, 'Cannot set both "headers" and "scope".'
            self._list = [
                (key.lower().encode("latin-1"), value.encode("latin-1"))
                for key, value in headers.items()
            ]
        elif raw is not None:
            assert scope is None, 'Cannot set both "raw" and "scope".'
            self._list = raw
        elif scope is not None:
            scope_headers = scope["headers"]
            if type(scope_headers) is not list:
                # Servers may hand over a tuple or other iterable; store a list back in the
                # scope so that MutableHeaders(scope=...) edits are visible to everyone.
                scope_headers = list(scope_headers)
                cast(Any, scope)["headers"] = scope_headers
            self._list = scope_headers
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The underlying list of ``(name, value)`` byte pairs."""
        return self._list

    def keys(self) -> list[str]:  # type: ignore[override]
        """Every header name (lower-case), duplicates included."""
        return [key.decode("latin-1") for key, _ in self._list]

    def values(self) -> list[str]:  # type: ignore[override]
        """Every header value, duplicates included."""
        return [value.decode("latin-1") for _, value in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Every ``(name, value)`` pair, duplicates included."""
        return [(key.decode("latin-1"), value.decode("latin-1")) for key, value in self._list]

    def getlist(self, key: str) -> list[str]:
        """All values of header ``key`` (case-insensitive), in order."""
        try:
            wanted = key.lower().encode("latin-1")
        except UnicodeEncodeError:
            return []
        return [value.decode("latin-1") for name, value in self._list if name == wanted]

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: _T) -> str | _T: ...
    def get(self, key: str, default: Any = None) -> Any:
        """The first value of header ``key`` (case-insensitive), or ``default``."""
        try:
            wanted = key.lower().encode("latin-1")
        except UnicodeEncodeError:
            return default
        for name, value in self._list:
            if name == wanted:
                return value.decode("latin-1")
        return default

    def mutablecopy(self) -> MutableHeaders:
        """A :class:`MutableHeaders` holding a copy of these headers."""
        return MutableHeaders(raw=self._list[:])

    def __getitem__(self, key: str) -> str:
        try:
            wanted = key.lower().encode("latin-1")
        except UnicodeEncodeError:
            raise KeyError(key) from None
        for name, value in self._list:
            if name == wanted:
                return value.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        if not isinstance(key, str):
            return False
        try:
            wanted = key.lower().encode("latin-1")
        except UnicodeEncodeError:
            return False
        return any(name == wanted for name, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._list)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return False
        return sorted(self._list) == sorted(other._list)

    def __repr__(self) -> str:
        as_dict = dict(self.items())
        if len(as_dict) == len(self):
            return f"{self.__class__.__name__}({as_dict!r})"
        return f"{self.__class__.__name__}(raw={self.raw!r})"


class MutableHeaders(Headers):
    """Headers that can be changed in place (e.g. a response's headers).

    Names are stored lower-cased; values must be latin-1 encodable.
    """

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        """Set header ``key`` to the single value ``value``, keeping its first position."""
        name = key.lower().encode("latin-1")
        encoded = value.encode("latin-1")
        headers = self._list
        found = [index for index, (item_name, _) in enumerate(headers) if item_name == name]
        if not found:
            headers.append((name, encoded))
            return
        for index in reversed(found[1:]):
            del headers[index]
        headers[found[0]] = (name, encoded)

    def __delitem__(self, key: str) -> None:
        """Remove every value of header ``key`` (no error when absent)."""
        name = key.lower().encode("latin-1")
        self._list[:] = [item for item in self._list if item[0] != name]

    def __ior__(self, other: Mapping[str, str]) -> MutableHeaders:
        if not isinstance(other, Mapping):
            raise TypeError(f"Expected a mapping but got {other.__class__.__name__}")
        self.update(other)
        return self

    def __or__(self, other: Mapping[str, str]) -> MutableHeaders:
        if not isinstance(other, Mapping):
            raise TypeError(f"Expected a mapping but got {other.__class__.__name__}")
        new = self.mutablecopy()
        new.update(other)
        return new

    def setdefault(self, key: str, value: str) -> str:
        """Return the first value of ``key``, first appending ``value`` if the header is absent."""
        name = key.lower().encode("latin-1")
        for item_name, item_value in self._list:
            if item_name == name:
                return item_value.decode("latin-1")
        self._list.append((name, value.encode("latin-1")))
        return value

    def update(self, other: Mapping[str, str]) -> None:
        """Set each header in ``other`` (replacing existing values)."""
        for key, value in other.items():
            self[key] = value

    def append(self, key: str, value: str) -> None:
        """Add a header line without touching existing ones (e.g. ``set-cookie``)."""
        self._list.append((key.lower().encode("latin-1"), value.encode("latin-1")))

    def add_vary_header(self, vary: str) -> None:
        """Add ``vary`` to the ``Vary`` header, joining with any existing value."""
        existing = self.get("vary")
        if existing is not None:
            vary = f"{existing}, {vary}"
        self["vary"] = vary


class _MissingStateAttribute(AttributeError, KeyError):
    """``del state.x`` for a missing ``x``: an ``AttributeError``, and a ``KeyError`` as in
    Starlette, so code written for either keeps working."""


class State:
    """An attribute bag over a dict, e.g. ``app.state`` and ``request.state``.

    ``state.x`` and ``state["x"]`` reach the same entry; ``len()``, iteration (over the names)
    and ``in`` work as on the dict. A missing attribute raises ``AttributeError`` naming it, a
    missing item ``KeyError``.
    """

    _state: dict[str, Any]

    def __init__(self, state: dict[str, Any] | None = None):
        if state is None:
            state = {}
        object.__setattr__(self, "_state", state)

    def __setattr__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: str) -> Any:
        # Read _state through __dict__: during copy/unpickling it is not set yet, and going
        # through self._state would recurse back into __getattr__.
        state = self.__dict__.get("_state")
        if state is not None and key in state:
            return state[key]
        raise AttributeError(f"'{self.__class__.__name__}' object has no attribute '{key}'")

    def __delattr__(self, key: str) -> None:
        try:
            del self._state[key]
        except KeyError:
            raise _MissingStateAttribute(
                f"'{self.__class__.__name__}' object has no attribute '{key}'"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[key]

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)
