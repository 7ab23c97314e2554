"""Streaming parsers for form bodies: ``application/x-www-form-urlencoded`` and
``multipart/form-data``.

Both take the request :class:`~brillo.datastructures.Headers` and an async iterator of body
chunks, and ``await parser.parse()`` returns a :class:`~brillo.datastructures.FormData`.
Multipart parsing needs the ``python-multipart`` package.
"""

from __future__ import annotations

import enum
import re
import warnings
from collections.abc import AsyncIterator
from importlib import import_module
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import unquote_plus, unquote_to_bytes

import anyio

from brillo.datastructures import FormData, Headers, UploadFile
from brillo.exceptions import BrilloDeprecationWarning

if TYPE_CHECKING:
    import python_multipart as multipart
    from python_multipart.exceptions import FormParserError
else:
    try:
        import python_multipart as multipart
    except ModuleNotFoundError:
        try:  # older python-multipart releases ship the package as ``multipart``
            import multipart
        except ModuleNotFoundError:  # pragma: no cover - depends on the environment
            multipart = None
        else:  # pragma: no cover - depends on the environment
            if not hasattr(multipart, "QuerystringParser"):  # an unrelated "multipart"
                multipart = None
    if multipart is not None:
        FormParserError = import_module(multipart.__name__ + ".exceptions").FormParserError
    else:  # pragma: no cover - depends on the environment
        FormParserError = ()

# Parser state after the closing boundary (None if this python-multipart cannot tell).
_END_STATE: object = (
    getattr(
        getattr(import_module(multipart.__name__ + ".multipart"), "MultipartState", None),
        "END",
        None,
    )
    if multipart is not None
    else None
)

__all__ = ["FormParser", "MultiPartException", "MultiPartParser"]

_MISSING_MULTIPART = (
    "The `python-multipart` package is required to parse form data: "
    "install it with `pip install python-multipart`."
)


class MultiPartException(Exception):
    """A form body could not be parsed, or broke a limit. ``message`` says why.

    The message is what the client gets in the ``400`` response, in Starlette's words; when
    python-multipart rejected the body, its own error (with the details) is the ``__cause__``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_INVALID_MULTIPART = "Invalid multipart data."


def _size_text(size: int) -> str:
    """A size limit as Starlette words it (``1024KB``), or in bytes if not whole kibibytes."""
    return f"{size // 1024}KB" if size % 1024 == 0 else f"{size} bytes"


def _resolve_charset(charset: str) -> str:
    """``charset`` if Python has a text codec for it, else ``utf-8`` (looked up once)."""
    try:
        "".encode(charset)
    except LookupError:  # unknown, or not a text encoding (base64, rot13, ...)
        return "utf-8"
    return charset


class _DeprecatedEnumType(enum.EnumMeta):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"`{cls.__name__}` is deprecated and will be removed in a future version; "
            "brillo's form parsers do not use it.",
            BrilloDeprecationWarning,
            stacklevel=2,
        )
        return super().__call__(*args, **kwargs)


class FormMessage(enum.Enum, metaclass=_DeprecatedEnumType):
    """Deprecated (as in Starlette 1.10): event kinds of an old urlencoded parser, unused.

    Looking a member up by value (``FormMessage(1)``) emits ``BrilloDeprecationWarning``.
    """

    FIELD_START = 1
    FIELD_NAME = 2
    FIELD_DATA = 3
    FIELD_END = 4
    END = 5


# ``; name="value"`` or ``; name=token`` parameters of a header such as Content-Disposition.
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``"form-data; name=\\"a\\"; filename*=UTF-8''b"`` into the main value and its
    parameters (keys lower-cased, quotes and backslash escapes removed, order kept).

    Malformed parameters are skipped rather than rejected.
    """
    main, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    if sep:
        for match in _PARAM.finditer(";" + rest):
            key = match.group(1).lower()
            raw = match.group(2).strip()
            if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
                raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
            params[key] = raw
    return main.strip().lower(), params


def _decode(raw: str, charset: str) -> str:
    """Re-decode a latin-1 decoded header string with ``charset``, falling back to latin-1."""
    data = raw.encode("latin-1", errors="replace")
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return raw


def _decode_ext_value(value: str) -> str | None:
    """Decode an RFC 5987 ext-value (``charset'lang'percent-encoded``); None if malformed."""
    parts = value.split("'", 2)
    if len(parts) != 3:
        return None
    charset, _, encoded = parts
    try:
        return unquote_to_bytes(encoded).decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return None


async def _close_stream(stream: AsyncIterator[bytes]) -> None:
    """Finalise an abandoned body stream (an async generator) so it is not left to the GC."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


class FormParser:
    """Parse an ``application/x-www-form-urlencoded`` body.

    At most ``max_fields`` fields (default 1000) and ``max_part_size`` bytes per name or value
    (default 1 MiB) are accepted, as in Starlette; breaking either raises
    :class:`MultiPartException`. Pass ``None`` (or ``float("inf")`` for ``max_fields``) to lift
    a limit.
    """

    def __init__(
        self,
        headers: Headers,
        stream: AsyncIterator[bytes],
        *,
        max_fields: int | float | None = 1000,
        max_part_size: int | None = 1024 * 1024,
    ) -> None:
        if multipart is None:  # pragma: no cover - depends on the environment
            raise RuntimeError(_MISSING_MULTIPART)
        self.headers = headers
        self.stream = stream
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self._items: list[tuple[str, str | UploadFile]] = []
        self._name = bytearray()
        self._value = bytearray()

    def _append(self, buffer: bytearray, data: bytes, start: int, end: int) -> None:
        # Checked before copying: a whole oversized body in one chunk is never buffered twice.
        if self.max_part_size is not None and len(buffer) + (end - start) > self.max_part_size:
            raise MultiPartException(
                f"Field exceeded maximum size of {_size_text(self.max_part_size)}."
            )
        buffer += data[start:end]

    def on_field_start(self) -> None:
        """Parser callback: a new ``name=value`` pair begins."""
        if self.max_fields is not None and len(self._items) >= self.max_fields:
            raise MultiPartException(
                f"Too many fields. Maximum number of fields is {self.max_fields}."
            )

    def on_field_name(self, data: bytes, start: int, end: int) -> None:
        """Parser callback: a chunk of the current field name."""
        self._append(self._name, data, start, end)

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        """Parser callback: a chunk of the current field value."""
        self._append(self._value, data, start, end)

    def on_field_end(self) -> None:
        """Parser callback: the current pair is complete."""
        name = unquote_plus(self._name.decode("latin-1"))
        value = unquote_plus(self._value.decode("latin-1"))
        self._items.append((name, value))
        self._name.clear()
        self._value.clear()

    def on_end(self) -> None:
        """Parser callback: the body ended."""

    async def parse(self) -> FormData:
        """Consume the stream and return the parsed fields, in body order."""
        callbacks: Any = {
            "on_field_start": self.on_field_start,
            "on_field_name": self.on_field_name,
            "on_field_data": self.on_field_data,
            "on_field_end": self.on_field_end,
            "on_end": self.on_end,
        }
        parser = multipart.QuerystringParser(callbacks)
        try:
            async for chunk in self.stream:
                if chunk:
                    parser.write(chunk)
            parser.finalize()
        except FormParserError as exc:
            await _close_stream(self.stream)
            raise MultiPartException(f"Malformed form body: {exc}") from exc
        except BaseException:
            await _close_stream(self.stream)
            raise
        return FormData(self._items)


class _Part:
    """State of the multipart part being parsed."""

    __slots__ = ("data", "file", "header_field", "header_value", "headers", "name")

    def __init__(self) -> None:
        self.name = ""
        self.data = bytearray()
        self.file: UploadFile | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_field = bytearray()
        self.header_value = bytearray()


class MultiPartParser:
    """Parse a ``multipart/form-data`` body into strings and spooled :class:`UploadFile` s.

    Limits: at most ``max_files`` file parts, ``max_fields`` non-file parts, and
    ``max_part_size`` bytes per non-file part (file parts are not limited; they spool to disk
    past :attr:`spool_max_size`). Breaking one, or a malformed body, raises
    :class:`MultiPartException` and closes every file created so far. File names come from
    the ``filename*`` (RFC 5987) or ``filename`` parameter of Content-Disposition.
    """

    #: In-memory size of each uploaded file before it rolls over to a temporary file on disk.
    spool_max_size = 1024 * 1024
    #: Default limit for a non-file part, in bytes.
    max_part_size = 1024 * 1024

    def __init__(
        self,
        headers: Headers,
        stream: AsyncIterator[bytes],
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> None:
        if multipart is None:  # pragma: no cover - depends on the environment
            raise RuntimeError(_MISSING_MULTIPART)
        self.headers = headers
        self.stream = stream
        self.max_files = max_files
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self._charset = "utf-8"
        self._items: list[tuple[str, str | UploadFile]] = []
        self._part = _Part()
        self._file_count = 0
        self._field_count = 0
        # Chunks of file data received during one parser.write(), written right after it.
        self._pending_writes: list[tuple[UploadFile, bytes]] = []
        # Every file created, so all of them can be closed if parsing fails.
        self._files: list[UploadFile] = []

    # -- parser callbacks (synchronous; file writes are queued and awaited after write()) --

    def on_part_begin(self) -> None:
        """Parser callback: a new part begins."""
        self._part = _Part()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        """Parser callback: a chunk of the current part's body."""
        part = self._part
        if part.file is None:
            if len(part.data) + (end - start) > self.max_part_size:
                raise MultiPartException(
                    f"Part exceeded maximum size of {_size_text(self.max_part_size)}."
                )
            part.data += data[start:end]
        else:
            self._pending_writes.append((part.file, data[start:end]))

    def on_part_end(self) -> None:
        """Parser callback: the current part is complete."""
        part = self._part
        if part.file is None:
            value = bytes(part.data)
            try:
                text = value.decode(self._charset)
            except (UnicodeDecodeError, LookupError):
                text = value.decode("latin-1")
            self._items.append((part.name, text))
        else:
            self._items.append((part.name, part.file))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        """Parser callback: a chunk of a part header's name."""
        self._part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        """Parser callback: a chunk of a part header's value."""
        self._part.header_value += data[start:end]

    def on_header_end(self) -> None:
        """Parser callback: one part header is complete."""
        part = self._part
        part.headers.append((bytes(part.header_field).lower(), bytes(part.header_value).strip()))
        part.header_field.clear()
        part.header_value.clear()

    def on_headers_finished(self) -> None:
        """Parser callback: the part headers are complete; decide between field and file."""
        part = self._part
        disposition = None
        for key, value in part.headers:
            if key == b"content-disposition":
                disposition = value.decode("latin-1")
                break
        if disposition is None:
            raise MultiPartException("A multipart part has no Content-Disposition header.")
        _, params = parse_header_params(disposition)
        if "name" not in params:
            raise MultiPartException(
                'The Content-Disposition header field "name" must be provided.'
            )
        part.name = _decode(params["name"], self._charset)

        filename: str | None = None
        if "filename*" in params:
            filename = _decode_ext_value(params["filename*"])
        if filename is None and "filename" in params:
            filename = _decode(params["filename"], self._charset)

        if filename is None:
            self._field_count += 1
            if self._field_count > self.max_fields:
                raise MultiPartException(
                    f"Too many fields. Maximum number of fields is {self.max_fields}."
                )
            return
        self._file_count += 1
        if self._file_count > self.max_files:
            raise MultiPartException(
                f"Too many files. Maximum number of files is {self.max_files}."
            )
        spooled = SpooledTemporaryFile(max_size=self.spool_max_size)  # noqa: SIM115
        upload = UploadFile(
            file=cast(BinaryIO, spooled),
            size=0,
            filename=filename,
            headers=Headers(raw=part.headers),
        )
        self._files.append(upload)
        part.file = upload

    def on_end(self) -> None:
        """Parser callback: the closing boundary was seen."""

    async def parse(self) -> FormData:
        """Consume the stream and return the form; files are rewound to their start."""
        content_type, params = parse_header_params(self.headers.get("content-type", ""))
        if content_type != "multipart/form-data":
            raise MultiPartException(
                f"Expected a multipart/form-data Content-Type, got {content_type!r}."
            )
        # An unknown charset falls back to utf-8 (then latin-1 for bytes utf-8 rejects), as
        # for browsers that send none; it is looked up once, not once per part.
        self._charset = _resolve_charset(params.get("charset", "utf-8"))
        boundary = params.get("boundary")
        if not boundary:
            raise MultiPartException("Missing boundary in multipart.")

        callbacks: Any = {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }
        received = False
        try:
            try:
                parser = multipart.MultipartParser(boundary.encode("latin-1"), callbacks)
            except (FormParserError, UnicodeEncodeError) as exc:  # e.g. longer than 256
                raise MultiPartException(_INVALID_MULTIPART) from exc
            async for chunk in self.stream:
                if not chunk:
                    continue
                received = True
                try:
                    parser.write(chunk)
                except FormParserError as exc:  # malformed, too many part headers, ...
                    raise MultiPartException(_INVALID_MULTIPART) from exc
                pending = self._pending_writes
                if pending:
                    self._pending_writes = []
                    for upload, data in pending:
                        await upload.write(data)
            parser.finalize()
            if received and _END_STATE is not None and parser.state != _END_STATE:
                raise MultiPartException(
                    "Incomplete multipart body: the closing boundary is missing."
                )
            for upload in self._files:
                await upload.seek(0)
        except BaseException:
            self._pending_writes = []
            for upload in self._files:
                upload.file.close()
            await _close_stream(self.stream)
            raise
        return FormData(self._items)
