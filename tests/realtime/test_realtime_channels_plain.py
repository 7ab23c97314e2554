"""Channels without the msgspec extra: plain JSON payloads, builtin checks, a clear error for
typed payloads (in a fresh interpreter where ``import msgspec`` fails)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.realtime.test_realtime_asyncapi import errors

HERE = Path(__file__).parent


def test_channels_work_without_msgspec() -> None:
    result = subprocess.run(
        [sys.executable, str(HERE / "_plain_json_app.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE.parents[1],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["msgspec_loaded"] is False
    assert out["typed"] == (
        "the payload type Point needs msgspec to be validated: pip install 'brillo[msgspec]' "
        "(or declare the payload as Any / dict for plain JSON)"
    )
    assert out["echo"] == {"a": [1, "b"]}
    assert out["count"] == 42
    assert out["point"] == {"x": 3}
    assert out["bad"] == ["invalid_payload", "Expected an integer, got a string"]
    assert errors(out["asyncapi"]) == []
    payload = out["asyncapi"]["components"]["messages"]["room.count"]["payload"]
    assert payload["properties"]["payload"] == {"type": "integer"}
