"""genbench.stats against scipy's exact tests and on synthetic timings with known ratios."""

import numpy as np
import pytest
from scipy.stats import binom, wilcoxon

from genbench.stats import median_ci, paired_ratio, paired_shift, signed_rank_null, walsh_averages


@pytest.mark.parametrize("n", [1, 2, 5, 9, 14, 40])
def test_signed_rank_null_matches_scipy_exact_pvalues(n):
    p = signed_rank_null(n)
    assert p.sum() == pytest.approx(1.0) and len(p) == n * (n + 1) // 2 + 1
    rng = np.random.default_rng(n)
    for _ in range(5):
        d = rng.normal(0.3, 1.0, n)
        ranks = np.argsort(np.argsort(np.abs(d))) + 1
        t_plus = ranks[d > 0].sum()
        pvalue = wilcoxon(d, alternative="greater", method="exact").pvalue
        assert p[t_plus:].sum() == pytest.approx(pvalue, rel=1e-12)


def test_large_n_interval_matches_the_normal_approximation():
    n = 300  # Hollander, Wolfe & Chicken (3.28): k ~ n(n+1)/4 - z sqrt(n(n+1)(2n+1)/24)
    s = paired_shift(np.random.default_rng(5).normal(size=n))
    w = walsh_averages(np.random.default_rng(5).normal(size=n))
    k = n * (n + 1) / 4 - 1.959964 * np.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    assert w[int(np.floor(k)) - 2] <= s.low <= w[int(np.ceil(k)) + 1] and s.coverage == pytest.approx(0.95, abs=1e-3)


def test_hodges_lehmann_is_median_of_walsh_averages():
    d = [1.0, 2.0, 4.0]
    assert list(walsh_averages(d)) == [1.0, 1.5, 2.0, 2.5, 3.0, 4.0]
    assert paired_shift(d).estimate == 2.25


@pytest.mark.parametrize("n", [6, 8, 12, 20])
def test_paired_interval_inverts_the_signed_rank_test(n):
    """Shifts inside the interval are not rejected at 5% by scipy's exact test; shifts outside are."""
    d = np.random.default_rng(100 + n).lognormal(0.0, 0.4, n)
    s = paired_shift(d, 0.95)
    assert s.coverage >= 0.95 and s.low < s.estimate < s.high
    eps = 1e-9
    for theta, rejected in ((s.low + eps, False), (s.high - eps, False), (s.low - eps, True), (s.high + eps, True)):
        p = wilcoxon(d - theta, method="exact").pvalue
        assert (p <= 1 - s.coverage + 1e-12) == rejected, (theta, p)


def test_too_few_pairs_give_no_interval():
    s = paired_shift([0.1, 0.2, 0.3, 0.4, 0.5])  # 2/32 > 5%: no 95% interval exists
    assert s.low is None and s.high is None and s.coverage == 0.0 and s.estimate == pytest.approx(0.3)
    assert paired_shift([0.1] * 6).low == 0.1


def _timings(rng, n, ratio, noise=0.15):
    """Window throughputs of two revisions, interleaved: both sides share each round's machine load."""
    load = rng.lognormal(0.0, 0.3, n)  # slow drift of the machine's load, common to both sides of a round
    old = 1000.0 / load * rng.lognormal(0.0, noise, n)
    new = ratio * 1000.0 / load * rng.lognormal(0.0, noise, n)
    return new, old


def test_known_ratio_is_covered_and_no_change_is_excluded():
    new, old = _timings(np.random.default_rng(0), 30, 0.8)
    r = paired_ratio(new, old)
    assert r.low < 0.8 < r.high and r.high < 1.0


def test_equal_revisions_cover_one():
    new, old = _timings(np.random.default_rng(1), 30, 1.0)
    r = paired_ratio(new, old)
    assert r.low < 1.0 < r.high


def test_coverage_over_many_experiments():
    """The interval holds the true ratio in at least ~95% of repeated experiments (binomial slack)."""
    rng = np.random.default_rng(2)
    trials, hits = 400, 0
    for _ in range(trials):
        new, old = _timings(rng, 10, 0.8)
        r = paired_ratio(new, old)
        hits += r.low <= 0.8 <= r.high
    coverage = paired_shift(np.zeros(10)).coverage
    assert hits >= binom.ppf(0.001, trials, coverage)


def test_ratio_is_scale_free_and_antisymmetric():
    new, old = _timings(np.random.default_rng(3), 12, 1.3)
    r = paired_ratio(new, old)
    assert paired_ratio(new * 7.0, old * 7.0).estimate == pytest.approx(r.estimate)
    inv = paired_ratio(old, new)
    assert inv.estimate == pytest.approx(1 / r.estimate)
    assert inv.low == pytest.approx(1 / r.high) and inv.high == pytest.approx(1 / r.low)


def test_ratio_input_errors():
    with pytest.raises(ValueError, match="pairs"):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0], [1.0, 1.0])


def test_median_ci_order_statistics():
    x = np.arange(1.0, 11.0)  # n=10: [x_(2), x_(9)] covers 97.9%; [x_(3), x_(8)] only 89%
    assert median_ci(x) == (5.5, 2.0, 9.0)
    assert median_ci([3.0, 1.0, 2.0]) == (2.0, None, None)
    samples = np.random.default_rng(4).lognormal(0.0, 1.0, (300, 15))
    hits = sum(lo <= 1.0 <= hi for lo, hi in (median_ci(s)[1:] for s in samples))  # true median exp(0) = 1
    assert hits >= binom.ppf(0.001, 300, 0.95)
