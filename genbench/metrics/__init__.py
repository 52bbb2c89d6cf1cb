"""Metric implementations; importing this package registers every metric and metric group.

Each module registers its :class:`genbench.metrics.spec.MetricSpec` entries and, for the
metrics of samples, the :class:`genbench.metrics.group.MetricGroup` that computes them, at
import; :func:`metric_specs` and :func:`metric_groups` read them, here, after every module has
been imported. Adding a metric is one new module here (found by name) plus its test.
"""

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from genbench.metrics.group import _GROUPS, MetricGroup
from genbench.metrics.spec import _METRICS, MetricSpec

# The built-in groups' modules first, in the order their keys have always had in records and
# --metrics; any other module follows by name.
_FIRST = ("fid", "kid", "inception_score", "prdc", "confidence", "fid_inf", "classes", "fid_ssl", "copying",
          "copy_test")
for _name in (*_FIRST, *sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _FIRST)):
    if not _name.startswith("_"):
        importlib.import_module(f"{__name__}.{_name}")


def metric_specs() -> Mapping[str, MetricSpec]:
    """Every registered metric's metadata by key (read-only), the built-in metrics always among them:
    they registered when this package was imported, so what a caller sees never depends on what
    was imported before."""
    return MappingProxyType(_METRICS)


def metric_groups() -> Mapping[str, MetricGroup]:
    """Every registered metric group by name (read-only), in registration order: the order of
    ``genbench eval --metrics`` and of the keys in results."""
    return MappingProxyType(_GROUPS)
