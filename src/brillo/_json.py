"""Private: compact JSON encoders built once, for the per-message and per-response paths."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["compact_chunks", "compact_encoder"]


def compact_chunks(*, allow_nan: bool) -> Callable[[Any, int], Iterable[str]]:
    """A compact (``","``/``":"``), non-ASCII-preserving JSON encoder yielding string chunks.

    Called as ``chunks(obj, 0)``; ``"".join`` of the result is the JSON text.
    ``JSONEncoder.encode`` builds a fresh C encoder on every call; this builds it once, without
    the shared circular-reference table (so it is safe from any thread; circular data raises
    :class:`RecursionError`), which halves the cost of encoding small objects. With
    ``allow_nan=False`` NaN and infinities raise :class:`ValueError`. Falls back to
    ``JSONEncoder.iterencode`` where the C accelerator is missing.
    """
    base = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is not None:
        try:
            c_encode: Callable[[Any, int], Iterable[str]] = make_encoder(
                None, base.default, json.encoder.encode_basestring, None, ":", ",",
                False, False, allow_nan,
            )  # fmt: skip
            if "".join(c_encode({"k": [1, "\u00e9", None]}, 0)) == '{"k":[1,"\u00e9",null]}':
                return c_encode
        except Exception:  # pragma: no cover - a Python without the usual accelerator
            pass

    def iterencode(obj: Any, _level: int) -> Iterable[str]:  # pragma: no cover
        return base.iterencode(obj)

    return iterencode  # pragma: no cover


def compact_encoder(*, allow_nan: bool) -> Callable[[Any], str]:
    """``obj -> str`` over :func:`compact_chunks` (same output, same errors)."""
    chunks = compact_chunks(allow_nan=allow_nan)
    join = "".join

    def encode(obj: Any) -> str:
        return join(chunks(obj, 0))

    return encode
