"""``fid_inf``: FID extrapolated to infinitely many samples (FD∞, Chong & Forsyth 2020).

FID is biased upwards at finite N, and the bias is nearly linear in 1/N (Chong &
Forsyth, CVPR 2020, "Effectively Unbiased FID and Inception Score and where to find
them"). Their reference code (``mchong6/FID_IS_infinity``, ``calculate_FID_infinity``)
computes FID on ``num_points = 15`` random subsets of sizes ``linspace(5000, 50000,
15)`` of 50,000 generated images (a fresh shuffle per size, the first N taken), fits
``FID = a + b/N`` by least squares and reports the intercept ``a``, the value at
``N = ∞``. Here the subset sizes run from ``MIN_FRACTION`` of the ``n`` samples to all
of them (their 5,000 of 50,000 is a tenth; a fifth keeps each subset above the
128-d feature width at 2,000 samples, so every covariance has full rank), and each
size's FID is the mean over ``REPS`` random subsets rather than one: at 2,000
samples one shuffle per size left the intercept's seed-to-seed spread as large as
the bias it removes. The subsets are drawn from ``numpy.random.default_rng(seed)``
and the fit is ``scipy.stats.linregress``. The reference statistics stay fixed (the
test split's reference part), as in their code.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from genbench.metrics.fid import fid_from_features
from genbench.metrics.group import GroupValues, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_FID_INF = "fid_inf"
NUM_POINTS = 15  # Chong & Forsyth's num_points
MIN_FRACTION = 0.2  # smallest subset, as a share of the samples
REPS = 5  # random subsets averaged per size

register_metric(MetricSpec(
    KEY_FID_INF,
    "FID extrapolated to infinitely many samples: intercept of a line in 1/N through the FIDs of 15 random "
    "subsets (FD∞, Chong & Forsyth 2020); comparable across sample counts",
    unit="", higher_is_better=False, kind="distance",
))


def subset_sizes(n: int, num_points: int = NUM_POINTS, min_fraction: float = MIN_FRACTION) -> np.ndarray:
    """The ``num_points`` subset sizes, ``linspace(min_fraction * n, n)`` rounded down, distinct."""
    sizes = np.unique(np.linspace(int(min_fraction * n), n, num_points).astype(np.int64))
    if len(sizes) < 2 or sizes[0] < 2:
        raise ValueError(f"fid_inf needs at least two distinct subset sizes of 2 or more samples; n = {n}")
    return sizes


def fid_infinity(
    generated: Tensor,
    ref_mu: np.ndarray,
    ref_sigma: np.ndarray,
    *,
    seed: int = 0,
    num_points: int = NUM_POINTS,
    min_fraction: float = MIN_FRACTION,
    reps: int = REPS,
) -> float:
    """FD∞ of ``generated [N,D]`` features against the reference statistics (see the module docstring)."""
    from scipy.stats import linregress  # here, not at the top: scipy.stats is slow to import and only FD∞ needs it

    n = len(generated)
    sizes = subset_sizes(n, num_points, min_fraction)
    rng = np.random.default_rng(seed)
    fids = []
    for size in sizes:
        subsets = [torch.from_numpy(rng.permutation(n)[:size]) for _ in range(reps)]
        fids.append(np.mean([fid_from_features(generated[pick], ref_mu, ref_sigma) for pick in subsets]))
    return float(linregress(1.0 / sizes, np.asarray(fids)).intercept)


def _compute_fid_inf(inputs: MetricInputs) -> GroupValues:
    lens = inputs.lens
    n, width = len(lens.features), lens.features.shape[1]
    with inputs.timer("fid_inf"):
        if int(MIN_FRACTION * n) <= width:  # below the feature width the subsets' covariances are singular
            return {KEY_FID_INF: Null(
                f"needs more than {math.floor(width / MIN_FRACTION)} samples (its smallest subset, "
                f"{MIN_FRACTION:g} of them, must exceed the {width}-d features), got {n}")}
        return {KEY_FID_INF: fid_infinity(lens.features, lens.reference.mu, lens.reference.sigma, seed=inputs.seed)}


register_metric_group(MetricGroup(
    "fid_inf", (KEY_FID_INF,), _compute_fid_inf, frozenset({"features"}),
    "FD∞: FID extrapolated to infinitely many samples",
))
