"""Prototypes measured by the benchmarks, kept as evidence for changes proposed elsewhere.

Nothing here is used by the default run; ``scripts/bench --brillo-app MODULE:app`` benchmarks one
in place of ``benchmarks.apps.brillo_app``.
"""
