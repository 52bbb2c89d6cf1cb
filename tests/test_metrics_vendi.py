"""vendi (genbench.metrics.vendi): parity with the authors' vendi-score package and its known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vendi_score import vendi

from genbench.evaluate import EvalConfig
from genbench.evaluate.samples import compute_metric_groups
from genbench.metrics import metric_groups, metric_specs
from genbench.metrics.inputs import LensView, MetricInputs
from genbench.metrics.vendi import KEY_VENDI, vendi_score


@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")  # inside vendi-score 0.0.3
@pytest.mark.parametrize(("n", "d", "seed"), [(50, 8, 0), (200, 32, 1), (30, 64, 2)])
def test_vendi_equals_the_vendi_score_package(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + rng.normal(size=d)  # off-centre, so the cosine kernel is not trivial
    ours = vendi_score(torch.from_numpy(x))
    assert ours == pytest.approx(vendi.score_X(x), rel=1e-9)  # the n x n kernel
    assert ours == pytest.approx(vendi.score_dual(x), rel=1e-9)  # their d x d form


def test_vendi_of_copies_is_one_and_of_orthogonal_samples_is_their_count():
    one = torch.randn(1, 16, generator=torch.Generator().manual_seed(0))
    assert vendi_score(one.repeat(100, 1)) == pytest.approx(1.0, abs=1e-9)
    # orthogonal rows of any length: the kernel is cosine, so only directions count
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    rows = q[:10] * torch.linspace(0.5, 3.0, 10, dtype=torch.float64)[:, None]
    assert vendi_score(rows) == pytest.approx(10.0, rel=1e-9)
    # two equal halves of 5 orthogonal directions: 5 effective samples
    assert vendi_score(torch.cat([rows[:5], rows[:5]])) == pytest.approx(5.0, rel=1e-9)


def test_vendi_group_has_no_direction_and_times_itself():
    assert metric_specs()[KEY_VENDI].higher_is_better is None
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    timings: dict[str, float] = {}
    inputs = MetricInputs(samples=None, config=EvalConfig(), seed=0, timings=timings, lens=LensView(x, None, None))
    values, _ = compute_metric_groups(inputs, {"vendi"}, {"features"}, [metric_groups()["vendi"]])
    assert values == {KEY_VENDI: vendi_score(x)} and set(timings) == {"vendi"}
