"""The brillo demo: a WebSocket echo and JSON app with a small page to try them.

Run it with ``python -m examples.demo`` (or ``scripts/demo``); ``HOST`` and ``PORT`` default to
127.0.0.1 and 8000. The ASGI app is :data:`examples.demo.app.app`.
"""
