"""Metric implementations; importing this package registers every metric's metadata.

Each module registers its :class:`genbench.metrics.spec.MetricSpec` entries at import;
:func:`metric_specs` reads them, here, after every module has been imported.
"""

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from genbench.metrics.spec import _METRICS, MetricSpec

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def metric_specs() -> Mapping[str, MetricSpec]:
    """Every registered metric's metadata by key (read-only), the built-in metrics always among them:
    they registered when this package was imported, so what a caller sees never depends on what
    was imported before."""
    return MappingProxyType(_METRICS)
