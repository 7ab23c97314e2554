"""Run the demo under uvicorn: ``python -m examples.demo`` (HOST, PORT, BRILLO_HUB_URL)."""

from __future__ import annotations

import os

import uvicorn

from examples.demo.app import create_app


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    hub_url = os.environ.get("BRILLO_HUB_URL", "memory://")
    print(f"brillo demo on http://{host}:{port}/  (realtime backend: {hub_url})", flush=True)
    uvicorn.run(create_app(hub_url), host=host, port=port, log_level="info", ws_max_size=1 << 20)


if __name__ == "__main__":
    main()
