"""How far a metric may move without a code change: bands from measured spread, by metric kind.

`genbench check` and `genbench reproduce` judge a new value against values of the same
(model, metric) that unchanged code produced: the seeds of a baseline, or the committed
seeds of a results folder. Rerunning unchanged code on another processor or with another
thread count changes the arithmetic, and training amplifies such a change until, for a
GAN, the rerun is about as far from the record as another seed is; so the spread over
seeds is the measure of what "unchanged" looks like.

With ``n >= 2`` reference values of mean ``m`` and sample standard deviation ``s``, the
band for the mean of ``k`` new runs is the two-sided prediction interval

    m ± t(1 - ALPHA/2, n - 1) · s · sqrt(1/k + 1/n)

(Hahn, Meeker & Escobar, *Statistical Intervals*, 2017, sec. 4.4), widened to the metric
kind's floor (:data:`genbench.metrics.spec.METRIC_KINDS`) where seeds agree more closely
than that. With one reference value the floor alone stands around it. Distances and scores
take a relative floor, bounded fractions, class counts and bits/dim an absolute one; work
counts must be equal; uncertainty estimates are not judged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genbench.metrics import metric_specs
from genbench.verdict import Verdict

# Per metric, the chance that a run of unchanged code falls outside its band when seeds
# are the only source of variation (a prediction interval's miss rate).
ALPHA = 0.01


@dataclass(frozen=True)
class Tolerance:
    """A tolerance given by hand (``--tol``): relative (a share of the reference) or absolute."""

    value: float
    relative: bool

    def allowed(self, base: float) -> float:
        return self.value * abs(base) if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"±{self.value:g}"


@dataclass(frozen=True)
class Band:
    """The values unchanged code can give: ``center ± half_width``; ``rule`` says where the width came from."""

    center: float
    half_width: float
    rule: str
    n: int  # reference values behind it
    exact: bool = False

    def judge(self, metric: str, value: float) -> Verdict:
        """``held`` inside the band; outside, ``regressed`` or ``improved`` by the metric's direction
        (``work changed`` for an exact work count)."""
        if self.exact:
            return Verdict.HELD if value == self.center else Verdict.WORK_CHANGED
        delta = value - self.center
        if abs(delta) <= self.half_width:
            return Verdict.HELD
        spec = metric_specs().get(metric)
        better = delta if (spec is None or spec.higher_is_better is not False) else -delta
        return Verdict.IMPROVED if better > 0 else Verdict.REGRESSED

    def share(self, value: float) -> float:
        """How much of the band's half width ``value`` uses (inf outside an exact band)."""
        delta = abs(value - self.center)
        if self.half_width:
            return delta / self.half_width
        return 0.0 if delta == 0 else math.inf


def t_quantile(n: int) -> float:
    """``t(1 - ALPHA/2, n - 1)``: the prediction interval's multiplier for ``n`` reference values."""
    from scipy.stats import t  # deferred: scipy.stats costs a noticeable share of `genbench check`'s start-up

    return float(t.ppf(1 - ALPHA / 2, n - 1))


def is_judged(metric: str, tolerances: Mapping[str, Tolerance] | None = None) -> bool:
    """Whether ``metric`` is compared at all: its kind is gated (a speed figure only when ``--tol`` names it)."""
    spec = metric_specs().get(metric)
    if spec is None:
        return True  # an unregistered key in a record is compared with the fallback floor, never dropped
    if spec.kind == "speed":
        return metric in (tolerances or {})
    return spec.metric_kind.gated


def band(metric: str, values: Sequence[float], *, new_runs: int = 1,
         tolerances: Mapping[str, Tolerance] | None = None) -> Band:
    """The band for the mean of ``new_runs`` new values of ``metric``, from reference ``values`` (one per seed)."""
    if not values:
        raise ValueError(f"no reference values for {metric!r}")
    n = len(values)
    center = statistics.fmean(values)
    spec = metric_specs().get(metric)
    kind = spec.metric_kind if spec is not None else None
    if kind is not None and kind.exact:
        return Band(values[0], 0.0, "exact", n, exact=True)
    if tolerances and metric in tolerances:
        tol = tolerances[metric]
        return Band(center, tol.allowed(center), f"--tol {tol}", n)
    floor, relative = (kind.floor, kind.relative) if kind is not None else (0.10, True)
    floor_width = floor * abs(center) if relative else floor
    floor_rule = f"floor {floor * 100:g}%" if relative else f"floor ±{floor:g}"
    if n < 2:
        return Band(center, floor_width, floor_rule, n)
    s = statistics.stdev(values)
    width = t_quantile(n) * s * math.sqrt(1 / new_runs + 1 / n)
    if width <= floor_width:
        return Band(center, floor_width, f"{floor_rule} (seeds' spread is narrower)", n)
    return Band(center, width, f"{100 * (1 - ALPHA):g}% PI of {n} seeds", n)
