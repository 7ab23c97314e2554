"""Hypercorn settings for the hardened hypercorn row of ``benchmarks.exposure`` (``--config``)."""

websocket_max_message_size = 1 << 20
read_timeout = 10
websocket_ping_interval = 20.0
