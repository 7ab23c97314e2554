"""brillo's core never imports brillo.realtime: the realtime layer sits on top of it, never under.

Two checks: every core module imported in a fresh interpreter leaves ``brillo.realtime`` out of
``sys.modules``, and no import statement of the core's source names it (that also covers
imports made lazily, inside a function).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "brillo"
REALTIME = SRC / "realtime"


def core_modules() -> list[str]:
    """Dotted names of every brillo module outside brillo.realtime."""
    names = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(REALTIME):
            continue
        parts = ("brillo", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def realtime_imports(source: str, package: tuple[str, ...]) -> list[str]:
    """The modules named by the imports in ``source`` (a module of ``package``) that are
    brillo.realtime or inside it; relative imports are resolved against ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join((*base, module) if module else base)
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [t for t in targets if t == "brillo.realtime" or t.startswith("brillo.realtime.")]
    return found


def test_the_scan_sees_every_way_of_importing_realtime() -> None:
    package = ("brillo", "middleware")
    sources = {
        "from brillo.realtime import Hub": True,
        "import brillo.realtime.hub": True,
        "from brillo import realtime": True,
        "from .. import realtime": True,
        "from ..realtime.hub import Hub": True,
        "def f():\n    from ..realtime import Hub": True,
        "from . import realtime": False,  # brillo.middleware.realtime
        "from brillo import routing": False,
        "import brillo.realtimeish": False,
    }
    for source, expected in sources.items():
        assert bool(realtime_imports(source, package)) is expected, source


def test_no_core_source_imports_realtime() -> None:
    files = [p for p in sorted(SRC.rglob("*.py")) if not p.is_relative_to(REALTIME)]
    assert len(files) > 30
    found = {}
    for path in files:
        package = ("brillo", *path.relative_to(SRC).parent.parts)
        if hits := realtime_imports(path.read_text(), package):
            found[str(path.relative_to(SRC))] = hits
    assert found == {}


def test_importing_every_core_module_leaves_realtime_unloaded() -> None:
    modules = core_modules()
    assert "brillo.applications" in modules
    assert "brillo.middleware.websocket_protection" in modules
    assert not any(m.startswith("brillo.realtime") for m in modules)
    script = (
        "import importlib, json, sys\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('brillo'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(result.stdout)
    assert set(modules) <= set(loaded)  # every core module really was imported
    assert [m for m in loaded if m == "brillo.realtime" or m.startswith("brillo.realtime.")] == []
