"""Metric metadata: what each reported number means and how to compare it (:class:`MetricSpec`),
registered by the metric modules at import."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.protocol import Capability

_METRICS: dict[str, MetricSpec] = {}  # read through genbench.metrics.metric_specs()


# -- kinds: how a metric's values vary, and so how two of them are compared ----------

@dataclass(frozen=True)
class MetricKind:
    """How values of one kind of metric are compared by `genbench check` and `genbench reproduce`.

    ``gated``: compared at all. ``relative``: the smallest tolerance ``floor`` is a share of
    the value (distances and scores, whose scale varies from model to model by orders of
    magnitude); otherwise it is absolute, in the metric's unit (bounded fractions, whose
    spread does not shrink towards 0; class counts; bits/dim). Measured spread over seeds
    widens a tolerance beyond its floor (:mod:`genbench.verify.tolerance`); the floor covers
    what seeds cannot show: one seed in a baseline, and metrics on which every seed agrees.
    """

    name: str
    description: str
    gated: bool = True
    relative: bool = True
    floor: float = 0.0
    exact: bool = False


# Floors sit several times above the largest difference between unchanged code rerun on two
# processors (results/baselines/README.md: AMD EPYC against Intel Xeon records), so that a
# baseline of one seed does not fail on another machine.
METRIC_KINDS: dict[str, MetricKind] = {k.name: k for k in (
    MetricKind("distance", "a distance between sample and reference sets (FID, KID, MSE): >= 0, scale varies",
               relative=True, floor=0.05),
    MetricKind("score", "an unbounded score (IS, density, PSNR)", relative=True, floor=0.05),
    MetricKind("fraction", "a bounded share in [0, 1] (precision, recall, coverage, SSIM)", relative=False,
               floor=0.03),
    MetricKind("count", "a count of classes", relative=False, floor=2.0),
    MetricKind("likelihood", "bits per dimension", relative=False, floor=0.01),
    MetricKind("work", "a deterministic work count (parameters, FLOPs per image): compared exactly",
               relative=False, exact=True),
    MetricKind("speed", "a wall-clock figure: gated only when --tol names it (genbench speed gates speed)",
               relative=True, floor=0.25),
    MetricKind("uncertainty", "an uncertainty estimate or test statistic (standard deviations, interval ends, "
               "p-values): reported, not gated", gated=False),
    MetricKind("info", "a description of the run (sample count, a flag): not compared", gated=False),
)}


# -- metrics ------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSpec:
    """Metadata of one reported number: what it means and how to compare it."""

    key: str
    description: str
    unit: str = ""
    higher_is_better: bool | None = None  # None: informational, no direction
    requires: Capability = Capability.SAMPLE
    kind: str | None = None  # a METRIC_KINDS name: how values are compared (None: from group and direction)
    group: str = "quality"  # quality | likelihood | reconstruction | speed | info

    def __post_init__(self) -> None:
        if self.kind is None:  # a plug-in's metric that names no kind
            derived = ("speed" if self.group == "speed" else "info" if self.higher_is_better is None
                       else "score" if self.higher_is_better else "distance")
            object.__setattr__(self, "kind", derived)
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"metric {self.key!r}: unknown kind {self.kind!r}; valid: {', '.join(METRIC_KINDS)}")

    @property
    def metric_kind(self) -> MetricKind:
        return METRIC_KINDS[self.kind]

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Register one reported key's metadata (description, unit, direction, kind); report, check and the
    leaderboard read it. The key must be an identifier; registering it again differently is an error."""
    if not spec.key or not spec.key.replace("_", "").isalnum():
        raise ValueError(f"metric key must be an identifier, got {spec.key!r}")
    if spec.key in _METRICS and _METRICS[spec.key] != spec:
        raise ValueError(f"metric {spec.key!r} is already registered differently")
    _METRICS[spec.key] = spec
    return spec
