"""``python -m examples.echo``: serve the echo example on $HOST:$PORT (127.0.0.1:8000)."""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Read HOST/PORT, print the URL and run uvicorn until interrupted."""
    import uvicorn

    host = os.environ.get("HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("PORT", "8000"))
    except ValueError:
        print(f"PORT must be a number, got {os.environ['PORT']!r}", file=sys.stderr)
        return 2
    shown = f"[{host}]" if ":" in host else host
    print(f"brillo echo example: http://{shown}:{port}/  (/ws/echo, /ws/json)", flush=True)
    uvicorn.run("examples.echo.app:app", host=host, port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
