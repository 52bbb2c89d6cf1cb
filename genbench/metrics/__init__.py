"""Metric implementations; importing this package registers every metric's metadata.

Each module registers its :class:`genbench.registry.MetricSpec` entries at import.
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
