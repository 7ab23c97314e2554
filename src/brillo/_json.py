"""Private: compact JSON encoders built once, for the per-message and per-response paths."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

__all__ = ["compact_encoder"]


def compact_encoder(*, allow_nan: bool) -> Callable[[Any], str]:
    """A compact (``","``/``":"``), non-ASCII-preserving ``obj -> str`` JSON encoder.

    ``JSONEncoder.encode`` builds a fresh C encoder on every call; this builds it once, without
    the shared circular-reference table (so it is safe from any thread; circular data raises
    :class:`RecursionError`), which halves the cost of encoding small objects. With
    ``allow_nan=False`` NaN and infinities raise :class:`ValueError`. Falls back to
    ``JSONEncoder.encode`` where the C accelerator is missing.
    """
    base = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is not None:
        try:
            c_encode = make_encoder(
                None, base.default, json.encoder.encode_basestring, None, ":", ",",
                False, False, allow_nan,
            )  # fmt: skip
            join = "".join

            def encode(obj: Any) -> str:
                return join(c_encode(obj, 0))

            if encode({"k": [1, "\u00e9", None]}) == '{"k":[1,"\u00e9",null]}':
                return encode
        except Exception:  # pragma: no cover - a Python without the usual accelerator
            pass
    return base.encode  # pragma: no cover
