"""cmmd / cmmd_ssl (genbench.metrics.cmmd): the unbiased RBF-kernel MMD² against a naive double loop, a
closed form for two Gaussians, and its zero mean on identical distributions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from genbench.evaluate import EvalConfig
from genbench.evaluate.samples import compute_metric_groups
from genbench.metrics import metric_groups
from genbench.metrics.cmmd import KEY_CMMD, KEY_CMMD_SSL, cmmd_from_features, reference_terms
from genbench.metrics.inputs import LensView, MetricInputs
from genbench.metrics.lens_metrics import per_lens_groups


def _gaussian(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale + shift


def _naive_cmmd(x: np.ndarray, y: np.ndarray) -> float:
    """The definition, pair by pair in float64: sigma² the lower median of the reference pairs' squared distances."""
    pairs = sorted(float(np.sum((a - b) ** 2)) for a, b in itertools.combinations(y, 2))
    sigma2 = pairs[(len(pairs) - 1) // 2]

    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma2))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cmmd_equals_a_naive_double_loop(seed):
    x, y = _gaussian(23, 5, seed, shift=0.3, scale=1.2), _gaussian(31, 5, seed + 100)
    expected = _naive_cmmd(x.double().numpy(), y.double().numpy())
    assert cmmd_from_features(x, y) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    # chunking (and the diagonal's offset within each chunk) changes nothing beyond float32 rounding of the products
    assert cmmd_from_features(x, y, chunk=4) == pytest.approx(cmmd_from_features(x, y), rel=1e-6)


def test_cmmd_of_two_gaussians_matches_the_closed_form():
    # For X ~ N(mux, sx² I_d), Y ~ N(muy, sy² I_d) and k = exp(-|a-b|²/2sigma²):
    # E k(A, B) = (sigma²/(sigma²+v))^(d/2) exp(-|Δmu|²/(2(sigma²+v))), v the variance of A - B per coordinate.
    d, shift = 8, 0.5
    x, y = _gaussian(2000, d, 0, shift=shift), _gaussian(4000, d, 1)
    sigma2, _ = reference_terms(y)
    # the bandwidth is the median of |Y - Y'|² ~ 2 χ²_d
    assert sigma2 == pytest.approx(2 * chi2.median(d), rel=0.02)

    def mean_k(v, mean_sq):
        return (sigma2 / (sigma2 + v)) ** (d / 2) * math.exp(-mean_sq / (2 * (sigma2 + v)))

    expected = mean_k(2, 0) + mean_k(2, 0) - 2 * mean_k(2, d * shift**2)
    assert cmmd_from_features(x, y) == pytest.approx(expected, rel=0.05)


def test_cmmd_is_unbiased_on_identical_distributions():
    # Over 200 draws of small sets from one distribution the mean is 0 within its standard error, and single
    # values fall on both sides; the biased V-statistic of the paper's code would sit at (1 - E k)(1/n + 1/m).
    values, biased = [], []
    for seed in range(200):
        x, y = _gaussian(50, 4, seed), _gaussian(60, 4, 1000 + seed)
        values.append(cmmd_from_features(x, y))
        sigma2, _ = reference_terms(y)
        k = torch.exp(-torch.cdist(torch.cat([x, y]).double(), torch.cat([x, y]).double()) ** 2 / (2 * sigma2))
        biased.append(float(k[:50, :50].mean() + k[50:, 50:].mean() - 2 * k[:50, 50:].mean()))
    mean, se = np.mean(values), np.std(values, ddof=1) / math.sqrt(len(values))
    assert abs(mean) < 3 * se
    assert min(values) < 0 < max(values)
    assert np.mean(biased) > mean + 10 * se


def test_cmmd_of_a_set_against_itself_is_its_closed_form():
    # With X as both sides the cross term holds the diagonal's n ones: cmmd = 2 (mean_{i!=j} k - 1) / n.
    x = _gaussian(300, 6, 3)
    _, mean_off = reference_terms(x)
    assert cmmd_from_features(x, x) == pytest.approx(2 * (mean_off - 1) / len(x), rel=1e-5)


def test_cmmd_refuses_what_has_no_value():
    with pytest.raises(ValueError, match="at least 2 samples"):
        cmmd_from_features(torch.zeros(1, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="more than half of the reference feature pairs coincide"):
        cmmd_from_features(torch.randn(4, 3), torch.zeros(5, 3))


def test_cmmd_groups_read_their_lens_and_time_themselves():
    x, y = _gaussian(40, 6, 4, shift=0.2), _gaussian(50, 6, 5)
    ssl_x, ssl_y = _gaussian(40, 6, 6, shift=0.4), _gaussian(50, 6, 7)
    reference = type("Reference", (), {"features": y})()
    ssl_reference = type("Reference", (), {"features": ssl_y})()
    timings: dict[str, float] = {}
    inputs = MetricInputs(samples=None, config=EvalConfig(), seed=0, timings=timings,
                          lens=LensView(x, None, reference),
                          load_ssl_lens=lambda: LensView(ssl_x, None, ssl_reference))
    groups = [metric_groups()["cmmd"], metric_groups()["cmmd_ssl"]]
    values, reasons = compute_metric_groups(inputs, {"cmmd", "cmmd_ssl"}, {"features", "ssl_lens"}, groups)
    assert values == {KEY_CMMD: cmmd_from_features(x, y), KEY_CMMD_SSL: cmmd_from_features(ssl_x, ssl_y)}
    assert not reasons and set(timings) == {"cmmd", "cmmd_ssl"}
    # cmmd is computed again in every user lens; cmmd_ssl belongs to one lens
    assert "cmmd" in {g.name for g in per_lens_groups()} and "cmmd_ssl" not in {g.name for g in per_lens_groups()}
