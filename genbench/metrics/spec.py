"""Metric metadata: what each reported number means and how to compare it (:class:`MetricSpec`),
registered by the metric modules at import."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.protocol import Capability

_METRICS: dict[str, MetricSpec] = {}  # read through genbench.metrics.metric_specs()


# -- metrics ------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSpec:
    """Metadata of one reported number: what it means and how to compare it."""

    key: str
    description: str
    unit: str = ""
    higher_is_better: bool | None = None  # None: informational, no direction
    requires: Capability = Capability.SAMPLE
    default_tol: float | None = None  # relative tolerance for `genbench check`
    group: str = "quality"  # quality | likelihood | reconstruction | speed | info

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]


def register_metric(spec: MetricSpec) -> MetricSpec:
    if not spec.key or not spec.key.replace("_", "").isalnum():
        raise ValueError(f"metric key must be an identifier, got {spec.key!r}")
    if spec.key in _METRICS and _METRICS[spec.key] != spec:
        raise ValueError(f"metric {spec.key!r} is already registered differently")
    _METRICS[spec.key] = spec
    return spec
