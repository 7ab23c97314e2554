"""Real-time examples built on :mod:`brillo.realtime`: a chat and a collaborative document."""
