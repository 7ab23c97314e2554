"""A WebSocket client in its own process, for tests that stop it with SIGSTOP.

``python _stoppable_client.py URL``: connects (no protocol-level pings of its own), answers every
``{"type":"ping"}`` with ``{"type":"pong"}``, and prints ``ready`` once the server's first
message has arrived. Stopped, its kernel still acknowledges TCP, so nothing but an
application-level deadline can tell the server it is gone.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def main(url: str) -> None:
    async with connect(url, ping_interval=None, close_timeout=1) as client:
        first = True
        async for raw in client:
            if first:
                print("ready", flush=True)
                first = False
            message = json.loads(raw)
            if isinstance(message, dict) and message.get("type") == "ping":
                await client.send('{"type":"pong"}')


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
