"""Distribution-free statistics for repeated measurements: median and ratio confidence intervals.

Timings on a shared machine are skewed and heavy-tailed (a window that loses the
CPU to another process is slow, never fast), so everything here rests on ranks
and order statistics rather than on means and normal approximations:

- :func:`median_ci`: the sample median with the order-statistic interval for the
  population median (binomial; Hollander, Wolfe & Chicken, *Nonparametric
  Statistical Methods*, 3rd ed. 2014, §3.6; computed by ``scipy.stats.quantile_test``).
- :func:`paired_shift` / :func:`paired_ratio`: the Hodges-Lehmann estimate of the
  centre of paired differences (the median of the Walsh averages) with the
  distribution-free interval obtained by inverting the Wilcoxon signed-rank test
  (Hodges & Lehmann 1963; Bauer, JASA 67:687, 1972; Hollander, Wolfe & Chicken
  §3.2-3.3). For throughputs the differences are of logarithms, so the estimate
  and its bounds are ratios.

The intervals are exact for any continuous distribution (symmetric about its
centre for the paired shift, which randomising the order inside each pair gives
under no change); their coverage is at least the nominal level because ranks
only allow discrete levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MIN_MEDIAN_CI_N = 6  # the smallest n whose extreme order statistics cover the median with >= 95%


def median_ci(values, confidence: float = 0.95) -> tuple[float, float | None, float | None]:
    """``(median, low, high)`` of ``values``; ``low``/``high`` are None when ``values`` are too few.

    The interval is ``[x_(k), x_(n+1-k)]`` for the largest ``k`` whose binomial
    coverage is at least ``confidence``; at 95% it needs at least 6 values.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError("median_ci needs a non-empty 1-D sequence")
    median = float(np.median(x))
    # Imported here, not at the top: scipy.stats costs a second of start-up, and `genbench eval`
    # imports this module through genbench.evaluate without ever needing an interval.
    from scipy.stats import quantile_test

    ci = quantile_test(x, q=median, p=0.5).confidence_interval(confidence)
    low, high = float(ci.low), float(ci.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return median, None, None
    return median, low, high


@lru_cache(maxsize=64)
def signed_rank_null(n: int) -> np.ndarray:
    """Null distribution of the Wilcoxon signed-rank statistic ``T+`` for ``n`` untied pairs.

    Entry ``t`` is ``P(T+ = t)`` for ``t = 0 .. n(n+1)/2``: the coefficients of
    ``prod_k (1 + x**k) / 2``, built one factor at a time (exact up to float rounding).
    """
    p = np.zeros(n * (n + 1) // 2 + 1)
    p[0] = 1.0
    top = 0  # largest T+ reachable with ranks 1..k-1
    for k in range(1, n + 1):
        top += k
        p[k : top + 1] += p[: top + 1 - k].copy()
        p[: top + 1] /= 2.0
    p.flags.writeable = False
    return p


def _signed_rank_k(n: int, confidence: float) -> tuple[int, float]:
    """Largest ``k`` with ``P(T+ <= k-1) <= (1-confidence)/2`` (0 when none), and the interval's coverage."""
    cdf = np.cumsum(signed_rank_null(n))
    alpha_half = (1.0 - confidence) / 2.0
    k = int(np.searchsorted(cdf, alpha_half * (1 + 1e-12), side="right"))  # count of t with cdf(t) <= alpha/2
    return k, (1.0 - 2.0 * float(cdf[k - 1])) if k > 0 else 0.0


@dataclass(frozen=True)
class ShiftEstimate:
    """A location estimate with its confidence interval (``low``/``high`` None when ``n`` is too small)."""

    estimate: float
    low: float | None
    high: float | None
    n: int
    coverage: float  # the interval's exact coverage (>= the level asked for); 0 without an interval


def walsh_averages(d) -> np.ndarray:
    """All ``(d_i + d_j) / 2`` for ``i <= j``, sorted: ``n(n+1)/2`` values."""
    x = np.asarray(d, dtype=float)
    i, j = np.triu_indices(len(x))
    return np.sort((x[i] + x[j]) / 2.0)


def paired_shift(d, confidence: float = 0.95) -> ShiftEstimate:
    """Hodges-Lehmann centre of paired differences ``d`` with the signed-rank interval.

    The interval is ``[W_(k), W_(M+1-k)]`` over the ``M = n(n+1)/2`` sorted Walsh
    averages ``W``, with ``k`` from the exact null distribution of ``T+``
    (Hollander, Wolfe & Chicken 2014, §3.3). At 95% it needs at least 6 pairs.
    """
    x = np.asarray(d, dtype=float)
    if x.ndim != 1 or len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError("paired_shift needs a non-empty 1-D sequence of finite values")
    w = walsh_averages(x)
    estimate = float(np.median(w))
    k, coverage = _signed_rank_k(len(x), confidence)
    if k == 0:
        return ShiftEstimate(estimate, None, None, len(x), 0.0)
    return ShiftEstimate(estimate, float(w[k - 1]), float(w[len(w) - k]), len(x), coverage)


def paired_ratio(new, old, confidence: float = 0.95) -> ShiftEstimate:
    """Ratio ``new/old`` of paired positive measurements (e.g. throughputs of interleaved windows).

    The Hodges-Lehmann estimate and signed-rank interval of ``log(new_i/old_i)``,
    mapped back with ``exp``: a ratio and its interval.
    """
    a, b = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_ratio needs pairs: {a.shape} new vs {b.shape} old values")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("paired_ratio needs positive values")
    s = paired_shift(np.log(a) - np.log(b), confidence)
    return ShiftEstimate(
        math.exp(s.estimate),
        None if s.low is None else math.exp(s.low),
        None if s.high is None else math.exp(s.high),
        s.n,
        s.coverage,
    )
