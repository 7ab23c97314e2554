"""Hypercorn settings for ``benchmarks.exposure``'s hardened hypercorn row (``--config python:``)."""

websocket_max_message_size = 1 << 20
read_timeout = 10
websocket_ping_interval = 20.0
