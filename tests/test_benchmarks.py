"""The benchmark apps answer alike, and the in-process driver runs them (no server, no timing)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import inprocess

pytestmark = pytest.mark.anyio


async def _messages(variant: str, endpoint: str) -> list[dict[str, Any]]:
    app = inprocess.load(variant)
    sent: list[dict[str, Any]] = []

    async def capture(message: Any) -> None:
        sent.append(dict(message))

    await inprocess.one_call(app, endpoint, capture)()
    return sent


@pytest.mark.parametrize("endpoint", ["plaintext", "json"])
async def test_http_endpoints_match_bare(endpoint: str) -> None:
    bare = await _messages("bare", endpoint)
    brillo = await _messages("brillo", endpoint)
    assert [m["type"] for m in brillo] == ["http.response.start", "http.response.body"]
    assert brillo[1]["body"] == bare[1]["body"]
    assert brillo[0]["status"] == bare[0]["status"] == 200
    assert sorted(brillo[0]["headers"]) == sorted(bare[0]["headers"])


async def test_websocket_echo_matches_bare() -> None:
    bare = await _messages("bare", "connect")
    brillo = await _messages("brillo", "connect")
    assert [m["type"] for m in bare] == ["websocket.accept", "websocket.send"]
    assert [m["type"] for m in brillo] == ["websocket.accept", "websocket.send"]
    assert brillo[1]["text"] == bare[1]["text"] == "hello"


def test_driver_makes_calls() -> None:
    # The driver runs its own asyncio loop (asyncio.run), as it does from the command line.
    for endpoint in inprocess.ENDPOINTS:
        inprocess.main(["--calls", "3", "brillo", endpoint])
