"""``benchmarks.apps.brillo_app`` with its hub replaced by the eager-send prototype.

``scripts/bench --scenario fanout_1000 --brillo-app benchmarks.experiments.eager_app:app``
"""

from __future__ import annotations

from benchmarks.apps import brillo_app as base
from benchmarks.experiments.eager_hub import EagerHub
from brillo.applications import Brillo

hub = EagerHub("memory://")
base.hub = hub  # ws_fanout looks the hub up in its module at call time
app = Brillo(routes=base.app.routes, lifespan=hub.lifespan)
