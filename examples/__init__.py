"""Runnable brillo examples: ``examples.demo`` (run it as ``python -m examples.demo``) and
the small WebSocket apps in ``examples.seed``.
"""
