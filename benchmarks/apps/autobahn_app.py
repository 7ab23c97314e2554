"""The app the server matrix runs Autobahn against: brillo's echo (text as text, bytes as
bytes) on every path, since the fuzzing client asks for paths like ``/runCase?case=1``."""

from __future__ import annotations

from brillo.applications import Brillo
from brillo.routing import WebSocketRoute
from examples.seed.echo import echo

app = Brillo(routes=[WebSocketRoute("/{path:path}", echo)])
