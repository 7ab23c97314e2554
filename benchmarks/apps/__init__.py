"""One ASGI app per benchmarked variant, all serving the same endpoints.

- ``bare``: the cheapest correct raw ASGI app (the ceiling).
- ``starlette_app``: idiomatic Starlette 1.10 (installed only in .venv-bench).
- ``brillo_app``: the same code written against brillo.
"""
