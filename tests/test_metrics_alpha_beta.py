"""alpha_precision, beta_recall, authenticity (genbench.metrics.alpha_beta) against faithful copies of the
authors' compute_alpha_precision (tests/reference_alaa_evaluation.py) and dgm-eval's compute_authpct
(tests/reference_dgm_eval_authpct.py), and their known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genbench.evaluate import EvalConfig
from genbench.evaluate.samples import compute_metric_groups
from genbench.metrics import metric_groups
from genbench.metrics.alpha_beta import (
    KEY_ALPHA_PRECISION,
    KEY_AUTHENTICITY,
    KEY_BETA_RECALL,
    N_LEVELS,
    alpha_beta_authenticity,
)
from genbench.metrics.inputs import LensView, MetricInputs
from tests.reference_alaa_evaluation import compute_alpha_precision
from tests.reference_dgm_eval_authpct import compute_authpct


def _points(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale + shift


@pytest.mark.parametrize(("n", "m", "shift", "scale", "seed"), [
    (200, 300, 0.0, 1.0, 0),  # same distribution
    (150, 400, 0.4, 0.8, 1),  # shifted, narrower
    (240, 250, -0.2, 1.5, 2),  # wider
])
def test_alpha_beta_authenticity_equal_the_reference_implementations(n, m, shift, scale, seed):
    real, synth = _points(m, 16, seed), _points(n, 16, 100 + seed, shift, scale)
    ours = alpha_beta_authenticity(synth, real)
    real_np, synth_np = real.double().numpy(), synth.double().numpy()
    *_, delta_precision, delta_coverage, _ = compute_alpha_precision(real_np, synth_np, np.mean(real_np, axis=0))
    # Theirs averages float32 masks in float32; one point counted otherwise would move Δ by 2/(29 n) > 1e-4.
    assert ours[KEY_ALPHA_PRECISION] == pytest.approx(delta_precision, abs=1e-6)
    assert ours[KEY_BETA_RECALL] == pytest.approx(delta_coverage, abs=1e-6)
    assert ours[KEY_AUTHENTICITY] == pytest.approx(compute_authpct(real.numpy(), synth.numpy()) / 100, abs=1e-7)
    assert ours == alpha_beta_authenticity(synth, real, chunk=7)  # chunking changes nothing


def test_the_authors_authenticity_indexes_reference_points_by_sample_index():
    # Why authenticity follows the paper's definition (dgm-eval's compute_authpct) and not the authors' code:
    # theirs looks up real_to_real at the indices of samples, which fails outright with more samples than
    # reference points.
    real, synth = _points(50, 4, 10).double().numpy(), _points(80, 4, 11).double().numpy()
    with pytest.raises(IndexError, match="out of bounds"):
        compute_alpha_precision(real, synth, np.mean(real, axis=0))


def test_the_reference_itself_scores_near_one_and_is_not_authentic():
    real = _points(1000, 16, 3)
    scores = alpha_beta_authenticity(real.clone(), real)
    # each curve is the share of points within their own alpha-quantile: alpha plus less than 1/n
    assert scores[KEY_ALPHA_PRECISION] == pytest.approx(1.0, abs=2 / len(real))
    assert scores[KEY_BETA_RECALL] == pytest.approx(1.0, abs=2 / len(real))
    assert scores[KEY_AUTHENTICITY] == 0.0


def test_copies_of_reference_points_are_not_authentic_and_fresh_ones_partly_are():
    real = _points(800, 16, 4)
    copies = real[torch.randperm(800, generator=torch.Generator().manual_seed(0))[:300]]
    assert alpha_beta_authenticity(copies, real)[KEY_AUTHENTICITY] == 0.0
    far = _points(300, 16, 5, shift=50.0)  # every sample farther from the reference than any reference pair
    assert alpha_beta_authenticity(far, real)[KEY_AUTHENTICITY] == 1.0


def test_samples_outside_every_support_give_the_lowest_integrated_scores():
    # Curves of 0 at every level: Δ = 1 - 2 Σ_k (k/29) / 29 = 1 - 30/29 = -1/29, slightly below 0.
    real, far = _points(500, 16, 6), _points(200, 16, 7, shift=50.0)
    scores = alpha_beta_authenticity(far, real)
    assert scores[KEY_ALPHA_PRECISION] == pytest.approx(-1 / (N_LEVELS - 1), abs=1e-12)
    assert scores[KEY_BETA_RECALL] == pytest.approx(-1 / (N_LEVELS - 1), abs=1e-12)


def test_alpha_beta_group_reads_the_lens_and_times_itself():
    x, y = _points(60, 8, 8, 0.3), _points(80, 8, 9)
    timings: dict[str, float] = {}
    inputs = MetricInputs(samples=None, config=EvalConfig(), seed=0, timings=timings,
                          lens=LensView(x, None, type("Reference", (), {"features": y})()))
    values, _ = compute_metric_groups(inputs, {"alpha_beta"}, {"features"}, [metric_groups()["alpha_beta"]])
    assert values == alpha_beta_authenticity(x, y) and set(timings) == {"alpha_beta"}
