"""brillo: a small, fast ASGI toolkit with first-class WebSocket support."""

__version__ = "0.1.0"
