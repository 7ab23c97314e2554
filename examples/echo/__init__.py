"""A small example: a WebSocket echo and JSON app with a small page to try them.

Run it with ``python -m examples.echo``; ``HOST`` and ``PORT`` default to
127.0.0.1 and 8000. The ASGI app is :data:`examples.echo.app.app`.
"""
