"""Do two lenses rank the competitors alike? Kendall's τ between two metrics' rankings, over seeds.

The leaderboard orders competitors by mean FID in the domain classifier's
features; ``fid_ssl`` measures the same distance in a self-supervised feature
space. If the order is a property of the models rather than of one network's
features, the two rankings agree. Statistic: Kendall's τ-b
(``scipy.stats.kendalltau``) between the competitors' mean values of the two
metrics (both lower-is-better), over the competitors with ok seeds that report
both. Its p-value is scipy's for the means (exact for small sets without ties).

The seeds enter through a bootstrap: each replicate resamples every model's seeds
with replacement (a seed's two values stay paired: they score the same samples),
recomputes the means and τ, and the 95% interval is the 2.5-97.5 percentile range
of the replicates (``numpy.random.default_rng(seed)``, so it is reproducible). A
model with one seed contributes its one value to every replicate.

A model *moves* when its rank (1 = best, ties share the best rank) differs between
the two metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import kendalltau, rankdata

from genbench.protocol import Role
from genbench.report.aggregate import aggregate
from genbench.results import RunRecord

MIN_MODELS = 3  # with two models τ is +-1 whatever the data
BOOTSTRAP_REPS = 1000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


@dataclass
class RankAgreement:
    """Kendall's τ between the rankings by ``metric_a`` and ``metric_b`` (None, with ``reason``, if not computable)."""

    metric_a: str
    metric_b: str
    models: list[str] = field(default_factory=list)  # competitors with both metrics, best ``metric_a`` first
    tau: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ranks_a: dict[str, int] = field(default_factory=dict)
    ranks_b: dict[str, int] = field(default_factory=dict)
    moved: list[str] = field(default_factory=list)  # models whose rank differs, in ``models`` order
    left_out: dict[str, str] = field(default_factory=dict)  # competitor -> why it is not in ``models``
    reps: int = BOOTSTRAP_REPS
    seed: int = BOOTSTRAP_SEED
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"metric_a": self.metric_a, "metric_b": self.metric_b,
                "method": "Kendall tau-b (scipy.stats.kendalltau)",
                "tau": self.tau, "p_value": self.p_value, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "level": LEVEL, "bootstrap": {"reps": self.reps, "seed": self.seed, "resampled": "seeds per model"},
                "models": self.models, "ranks": {m: [self.ranks_a[m], self.ranks_b[m]] for m in self.models},
                "moved": self.moved, "left_out": self.left_out, "reason": self.reason}


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def paired_values(records: list[RunRecord], metric_a: str, metric_b: str
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Per competitor, ``[seeds, 2]`` values of both metrics from its ok runs that report both; and who is left out."""
    summaries = aggregate(records)
    pairs: dict[str, list[tuple[float, float]]] = {}
    left_out: dict[str, str] = {}
    for rec in records:
        if summaries[rec.model_name].role is not Role.COMPETITOR or rec.status != "ok":
            continue
        a, b = rec.metrics.get(metric_a), rec.metrics.get(metric_b)
        if _finite(a) and _finite(b):
            pairs.setdefault(rec.model_name, []).append((float(a), float(b)))
    for name, s in summaries.items():
        if s.role is Role.COMPETITOR and name not in pairs:
            left_out[name] = f"no ok run reports both {metric_a} and {metric_b}"
    return {m: np.asarray(v) for m, v in sorted(pairs.items())}, left_out


def rank_agreement(records: list[RunRecord], metric_a: str = "fid", metric_b: str = "fid_ssl",
                   reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED) -> RankAgreement:
    """Kendall's τ of the competitors' rankings by two lower-is-better metrics, with a bootstrap interval over seeds."""
    values, left_out = paired_values(records, metric_a, metric_b)
    out = RankAgreement(metric_a, metric_b, left_out=left_out, reps=reps, seed=seed)
    if len(values) < MIN_MODELS:
        have = f"{len(values)} ({', '.join(values)})" if values else "none"
        out.reason = (f"needs at least {MIN_MODELS} competitors with ok runs that report both {metric_a} and "
                      f"{metric_b}; have {have}")
        return out
    names = list(values)
    means = np.array([values[m].mean(axis=0) for m in names])  # [models, 2]
    tau = kendalltau(means[:, 0], means[:, 1])
    ranks_a = rankdata(means[:, 0], method="min").astype(int)
    ranks_b = rankdata(means[:, 1], method="min").astype(int)
    order = sorted(range(len(names)), key=lambda i: (means[i, 0], names[i]))
    rng = np.random.default_rng(seed)
    boot = np.empty(reps)
    for r in range(reps):
        resampled = np.array([v[rng.integers(0, len(v), len(v))].mean(axis=0) for v in values.values()])
        boot[r] = kendalltau(resampled[:, 0], resampled[:, 1]).statistic
    tail = (1 - LEVEL) / 2 * 100
    finite = boot[np.isfinite(boot)]  # a replicate whose values all tie has no τ
    low, high = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (math.nan, math.nan)
    out.models = [names[i] for i in order]
    out.tau = float(tau.statistic)
    out.p_value = float(tau.pvalue) if math.isfinite(tau.pvalue) else None
    out.ci_low, out.ci_high = (float(low), float(high)) if len(finite) else (None, None)
    out.ranks_a = {names[i]: int(ranks_a[i]) for i in order}
    out.ranks_b = {names[i]: int(ranks_b[i]) for i in order}
    out.moved = [m for m in out.models if out.ranks_a[m] != out.ranks_b[m]]
    return out


def describe(agreement: RankAgreement) -> str:
    """One sentence for the leaderboard's notes."""
    a, b = agreement.metric_a, agreement.metric_b
    if agreement.tau is None:
        return f"Rank agreement of {a} and {b} (Kendall's τ): not computed: {agreement.reason}."
    interval = (f"95% bootstrap interval over seeds {agreement.ci_low:.2f} to {agreement.ci_high:.2f}"
                if agreement.ci_low is not None else "no bootstrap interval")
    p = f"p = {agreement.p_value:.2g}" if agreement.p_value is not None else "no p-value"
    moved = ("; rank moves (" + a + " → " + b + "): "
             + ", ".join(f"{m} {agreement.ranks_a[m]} → {agreement.ranks_b[m]}" for m in agreement.moved)
             if agreement.moved else "; no model changes rank")
    left = (f"; left out: {', '.join(f'{m} ({why})' for m, why in sorted(agreement.left_out.items()))}"
            if agreement.left_out else "")
    return (f"Rank agreement of {a} and {b} over {len(agreement.models)} competitors: Kendall's τ = "
            f"{agreement.tau:.2f} ({interval}, {agreement.reps} replicates; {p} for the means){moved}{left}.")
