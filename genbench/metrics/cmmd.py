"""CMMD (Jayasumana et al., CVPR 2024, "Rethinking FID"): MMD² with a Gaussian RBF kernel between the
samples' and the reference images' features, in the ``--features`` lens (``cmmd``, and in every user lens)
and in the self-supervised lens (``cmmd_ssl``).

Unlike FID, MMD assumes nothing about the shape of either distribution and has an unbiased
estimator, so it does not depend on the sample count the way FID does. Three choices differ
from the paper's code (``google-research/cmmd``, which embeds with CLIP):

- **Estimator.** Theirs is the biased V-statistic (kernel means over all pairs, the diagonal
  ``k(x, x) = 1`` included); this is the unbiased U-statistic (Gretton et al. 2012, eq. 3):
  ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)``. Its
  expectation is the population MMD², so identical distributions give 0 on average
  (a single value can be slightly negative), where the V-statistic is lifted by
  ``(1 - mean k)/n`` terms that depend on the sample count.
- **Bandwidth.** ``k(x, y) = exp(-||x - y||² / (2 sigma²))`` with ``sigma²`` the median of the squared
  distances between distinct reference features (the median heuristic, Gretton et al. 2012): the
  lower median over the pairs of an even-strided subset of 2,000 reference points (every 4th of
  the 8,000). Their fixed ``sigma = 10`` suits CLIP's embedding only. A median of the reference alone
  is fixed per reference, so every model is scored with one kernel; a median over the samples
  too would change the kernel from model to model and make values incomparable.
- **Scale.** Theirs multiplies by 1000; this reports MMD² itself (population value in [0, 2];
  ``kid`` is unscaled too).

The reference's own term (the kernel mean over its ``m(m-1)/2`` pairs) takes most of the time;
it is summed block by block over the upper triangle, so no ``m x m`` matrix is held.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_CMMD = "cmmd"
KEY_CMMD_SSL = "cmmd_ssl"

register_metric(MetricSpec(
    KEY_CMMD, "unbiased MMD² with a Gaussian RBF kernel (bandwidth: median reference pair distance) between "
    "sample and test-split features (CMMD's estimator, Jayasumana et al. 2024)",
    unit="", higher_is_better=False, kind="distance",
))
register_metric(MetricSpec(
    KEY_CMMD_SSL, "cmmd in the self-supervised (SimCLR) encoder's features",
    unit="", higher_is_better=False, kind="distance",
))

_CHUNK = 1024
# The bandwidth's median is taken over the pairs of this many reference points: the median of all
# m(m-1)/2 pairs (32 M for 8,000 points) would cost more than the rest of the metric together.
BANDWIDTH_POINTS = 2000


def _sq_dists(a: Tensor, b: Tensor, a_sq: Tensor, b_sq: Tensor) -> Tensor:
    """Squared Euclidean distances ``[len(a), len(b)]`` from one product (clamped at 0 against cancellation)."""
    return (a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)).clamp_min_(0.0)


def bandwidth(reference: Tensor, points: int = BANDWIDTH_POINTS) -> float:
    """``sigma²``: the lower median of the squared distances between distinct points of an even-strided subset
    of at most ``points`` reference points (all of them when there are that few)."""
    y = reference.float()
    if len(y) < 2:
        raise ValueError(f"cmmd needs at least 2 reference features, got {len(y)}")
    y = y[:: math.ceil(len(y) / points)]
    y_sq = (y * y).sum(1)
    rows, cols = torch.triu_indices(len(y), len(y), offset=1)
    sigma2 = float(_sq_dists(y, y, y_sq, y_sq)[rows, cols].median())
    if sigma2 <= 0:
        raise ValueError("cmmd: more than half of the reference feature pairs coincide; no bandwidth from them")
    return sigma2


def reference_terms(reference: Tensor, chunk: int = _CHUNK) -> tuple[float, float]:
    """``(sigma2, mean_k)``: the bandwidth (:func:`bandwidth`) and the mean RBF kernel over the
    ``m(m-1)/2`` distinct reference pairs."""
    y = reference.float()
    sigma2 = bandwidth(y)
    gamma, m = -0.5 / sigma2, len(y)
    y_sq = (y * y).sum(1)
    total = 0.0
    for i in range(0, m, chunk):  # rows i.. against columns i..: the block's strict upper triangle and all to its right
        c = min(chunk, m - i)
        k = torch.exp(_sq_dists(y[i : i + c], y[i:], y_sq[i : i + c], y_sq[i:]).mul_(gamma))
        total += float(k[:, c:].sum(dtype=torch.float64)) + float(torch.triu(k[:, :c], 1).sum(dtype=torch.float64))
    return sigma2, total / (m * (m - 1) / 2)


def cmmd_from_features(generated: Tensor, reference: Tensor, chunk: int = _CHUNK) -> float:
    """Unbiased RBF-kernel MMD² of ``generated [n,d]`` against ``reference [m,d]`` (module docstring)."""
    x, y = generated.float().cpu(), reference.float().cpu()
    n = len(x)
    if n < 2:
        raise ValueError(f"cmmd needs at least 2 samples, got {n}")
    sigma2, mean_yy = reference_terms(y, chunk)
    gamma = -0.5 / sigma2
    x_sq, y_sq = (x * x).sum(1), (y * y).sum(1)
    sum_xx = sum_xy = 0.0
    for i in range(0, n, chunk):
        xi, xi_sq = x[i : i + chunk], x_sq[i : i + chunk]
        d2 = _sq_dists(xi, x, xi_sq, x_sq)
        rows = torch.arange(len(xi))
        d2[rows, rows + i] = 0.0  # so the diagonal's k(x, x) is exactly 1 (the product leaves a rounding residue)
        sum_xx += float(torch.exp(d2.mul_(gamma)).sum(dtype=torch.float64))
        sum_xy += float(torch.exp(_sq_dists(xi, y, xi_sq, y_sq).mul_(gamma)).sum(dtype=torch.float64))
    mean_xx = (sum_xx - n) / (n * (n - 1))  # off the diagonal
    return mean_xx + mean_yy - 2.0 * sum_xy / (n * len(y))


def _compute_cmmd(inputs: MetricInputs) -> GroupValues:
    lens = inputs.lens
    with inputs.timer("cmmd"):
        return {KEY_CMMD: cmmd_from_features(lens.features, lens.reference.features)}


def _compute_cmmd_ssl(inputs: MetricInputs) -> GroupValues:
    lens = inputs.ssl_lens
    with inputs.timer("cmmd_ssl"):
        return {KEY_CMMD_SSL: cmmd_from_features(lens.features, lens.reference.features)}


register_metric_group(MetricGroup(
    "cmmd", (KEY_CMMD,), _compute_cmmd, frozenset({"features"}),
    "unbiased RBF-kernel MMD² (CMMD's estimator), bandwidth from the reference",
))
register_metric_group(MetricGroup(
    "cmmd_ssl", (KEY_CMMD_SSL,), _compute_cmmd_ssl, frozenset({"ssl_lens"}),
    "`cmmd` in the [self-supervised lens](metrics.md#second-lens-fid_ssl)",
))
