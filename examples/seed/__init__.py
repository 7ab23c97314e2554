"""Small, self-contained WebSocket apps: the classics, written for brillo.

Each module has an ``app`` (run it with ``uvicorn examples.seed.echo:app``):

* :mod:`~examples.seed.echo`: echo text and bytes back.
* :mod:`~examples.seed.json_ping`: JSON ping/pong, message echo, errors for bad input.
* :mod:`~examples.seed.path_params`: typed path parameters on function and endpoint routes.
* :mod:`~examples.seed.auth`: token auth by query string or ``Authorization: Bearer``.
* :mod:`~examples.seed.chat`: a ConnectionManager chat with rooms and join/leave notices.
* :mod:`~examples.seed.subprotocols`: subprotocol negotiation.
* :mod:`~examples.seed.graceful_shutdown`: close every socket with 1001 on shutdown.
* :mod:`~examples.seed.live_updates`: the server pushes a counter periodically.
* :mod:`~examples.seed.document`: a shared text document that clients edit together.
"""
