"""Run the demo: ``python -m examples.demo`` (HOST, PORT, BRILLO_HUB_URL).

It runs under :func:`brillo.serve.serve`: uvicorn with brillo's hardened WebSocket settings and a
graceful drain, so on SIGTERM (a deploy) every chat member gets the hub's goodbye and a 1001
close, and reconnects to another process at once.
"""

from __future__ import annotations

import os

from brillo.serve import serve
from examples.demo.app import create_app


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    hub_url = os.environ.get("BRILLO_HUB_URL", "memory://")
    print(f"brillo demo on http://{host}:{port}/  (realtime backend: {hub_url})", flush=True)
    serve(create_app(hub_url), host=host, port=port, log_level="info")


if __name__ == "__main__":
    main()
