"""The Vendi score (Friedman & Dieng, TMLR 2023): the effective number of distinct samples.

``vendi = exp(-sum_i lambda_i log lambda_i)`` over the eigenvalues ``lambda`` of ``K/n``, ``K`` the samples'
cosine-similarity kernel (``K_ij = <x_i, x_j>`` of L2-normalised features, as the authors'
``vendi-score`` package's ``embedding_vendi_score`` scores images by their Inception embeddings). ``K = X Xᵀ``
and ``Xᵀ X`` share their nonzero eigenvalues, so the ``d x d`` matrix ``Xᵀ X / n`` is
decomposed instead of the ``n x n`` one (their ``score_dual``); in float64. ``n`` copies of
one sample give 1, ``n`` mutually orthogonal ones give ``n``; so the score is at most
``min(n, d)``, 128 in genbench's lenses.

It measures the samples alone, against no reference: more is more diverse, not better (a
model can spread its samples wider than the data are spread, and real data sets differ among
themselves; the reference's own score is the level to compare with), so it is registered
without a direction. Its kind is ``score``: the value is deterministic, so ``genbench check``
still notices when it moves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_VENDI = "vendi"

register_metric(MetricSpec(
    KEY_VENDI, "Vendi score: exp of the entropy of the eigenvalues of the samples' cosine-similarity kernel / n, "
    "the effective number of distinct samples (Friedman & Dieng 2023); no direction: diversity, not quality",
    unit="", higher_is_better=None, kind="score",
))


def vendi_score(features: Tensor) -> float:
    """Vendi score of ``features [n,d]`` with the cosine kernel (module docstring)."""
    n = len(features)
    if n < 1:
        raise ValueError("the Vendi score needs at least 1 sample")
    # A zero row stays zero (as sklearn.preprocessing.normalize leaves it, which vendi-score uses).
    x = torch.nn.functional.normalize(features.double().cpu(), dim=1)
    eigenvalues = torch.linalg.eigvalsh(x.T @ x / n)
    p = eigenvalues[eigenvalues > 0]  # rounding leaves tiny negative ones; 0 log 0 = 0
    return math.exp(float(-(p * p.log()).sum()))


def _compute_vendi(inputs: MetricInputs) -> GroupValues:
    with inputs.timer("vendi"):
        return {KEY_VENDI: vendi_score(inputs.lens.features)}


register_metric_group(MetricGroup(
    "vendi", (KEY_VENDI,), _compute_vendi, frozenset({"features"}),
    "Vendi score: the samples' effective number of distinct images (diversity, no reference)",
))
