"""alpha-precision, beta-recall and authenticity (Alaa et al., ICML 2022, "How Faithful is your Synthetic Data?").

alpha-precision and beta-recall are the integrated scores ``Δ_{P,alpha}`` and ``Δ_{C,beta}`` of the authors'
code (``vanderschaarlab/evaluating-generative-models``, ``metrics/evaluation.py``,
``compute_alpha_precision``), reproduced step for step on a lens's features, with the centre
their ``metrics/combined.py`` uses where no one-class network is trained: the mean of the
reference features. Over 30 levels ``alpha`` from 0 to 1:

- ``alpha``-support of the reference: the ball around the centre holding a share ``alpha`` of the
  reference points (radius: the ``alpha``-quantile of their distances to the centre);
  ``P_alpha`` = share of samples inside it.
- ``C_beta``: share of reference points whose nearest sample lies nearer than the point's nearest
  other reference point, and that sample is within the ``beta``-quantile of such nearest samples'
  distances to the samples' mean.
- ``Δ = 1 - 2 Σ_alpha |alpha - curve(alpha)| Δalpha``: 1 when the curve is the diagonal (samples distributed as
  the reference, at every level of typicality), lower the farther it strays.

Authenticity is the paper's sample-level definition: a sample is authentic
unless it lies nearer to its nearest reference point than that point's own nearest other
reference point does; the score is the authentic share of the samples. The authors' code
computes it as ``real_to_real[real_to_synth_args] < real_to_synth``, which indexes the
reference points' nearest-neighbour distances by *sample* indices (and averages over the
reference points), so it is not reproduced; dgm-eval's ``compute_authpct``
(``layer6ai-labs/dgm-eval``) implements the definition, as a percentage, and is the parity
reference for this one (as a share).

Two properties to read them by. beta-recall's first condition compares a reference point's
nearest sample with its nearest other reference point, so for samples drawn like the reference
it holds for about ``n/(n+m)`` of the points: with 2,000 samples against the 8,000 reference
images the coverage curve cannot rise far above 0.2, and real images score far below 1. And
the reference is the test split, which no model trained on: authenticity says how many samples
sit apart from held-out images, not whether a model memorised its training set (that is
``copy_fraction`` and ``copy_ct``, against the training split).

Distances are ``torch.cdist`` in float32 with the reference as first argument, as in
:mod:`genbench.metrics.prdc`; distances to the centres in float64.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.prdc import knn_radii
from genbench.metrics.spec import MetricSpec, register_metric

KEY_ALPHA_PRECISION = "alpha_precision"
KEY_BETA_RECALL = "beta_recall"
KEY_AUTHENTICITY = "authenticity"

# Δ lies in [0, 1] up to the 30-level discretisation and is often near 0 for poor models, where a
# relative tolerance would vanish: the absolute floor of a fraction fits.
register_metric(MetricSpec(
    KEY_ALPHA_PRECISION, "integrated alpha-precision Δ_P: how closely the share of samples inside each "
    "alpha-support of the test split follows alpha (1: exactly; Alaa et al. 2022)",
    unit="", higher_is_better=True, kind="fraction",
))
register_metric(MetricSpec(
    KEY_BETA_RECALL, "integrated beta-recall Δ_C: how closely the test split's coverage by the samples' beta-supports "
    "follows beta (1: exactly; Alaa et al. 2022)",
    unit="", higher_is_better=True, kind="fraction",
))
register_metric(MetricSpec(
    KEY_AUTHENTICITY, "share of samples farther from their nearest test-split image than that image's nearest "
    "neighbour is (0 for copies of test images; Alaa et al. 2022)",
    unit="fraction", higher_is_better=True, kind="fraction",
))

N_LEVELS = 30  # the authors' n_steps
_CHUNK = 1024


def _integrated(alphas: np.ndarray, curve: np.ndarray) -> float:
    return float(1 - 2 * np.sum(np.abs(alphas - curve)) * (alphas[1] - alphas[0]))


def alpha_beta_authenticity(generated: Tensor, reference: Tensor, chunk: int = _CHUNK) -> dict[str, float]:
    """``alpha_precision``, ``beta_recall``, ``authenticity`` of ``generated [n,d]`` against ``reference [m,d]``."""
    x, y = generated.float().cpu(), reference.float().cpu()
    n, m = len(x), len(y)
    if n < 1 or m < 2:
        raise ValueError(f"alpha_precision needs at least 1 sample and 2 reference points, got {n} and {m}")
    alphas = np.linspace(0, 1, N_LEVELS)

    real_to_real = knn_radii(y, (1,), chunk)[1]  # nearest other reference point
    real_to_synth = torch.empty(m)
    real_to_synth_args = torch.empty(m, dtype=torch.long)
    synth_to_real = torch.full((n,), float("inf"))  # each sample's nearest reference point
    synth_to_real_args = torch.zeros(n, dtype=torch.long)
    for j in range(0, m, chunk):
        d = torch.cdist(y[j : j + chunk], x)  # [c, n]
        real_to_synth[j : j + chunk], real_to_synth_args[j : j + chunk] = d.min(1)
        best, where = d.min(0)
        closer = best < synth_to_real  # strict: the first nearest reference point wins a tie, as in torch.min
        synth_to_real[closer], synth_to_real_args[closer] = best[closer], where[closer] + j

    yd, xd = y.double().numpy(), x.double().numpy()
    center = yd.mean(axis=0)
    radii = np.quantile(np.linalg.norm(yd - center, axis=1), alphas)
    synth_to_center = np.linalg.norm(xd - center, axis=1)
    closest = xd[real_to_synth_args.numpy()]
    closest_to_synth_center = np.linalg.norm(closest - xd.mean(axis=0), axis=1)
    closest_radii = np.quantile(closest_to_synth_center, alphas)
    nearer = (real_to_synth <= real_to_real).numpy()

    precision_curve = np.array([np.mean(synth_to_center <= r) for r in radii])
    coverage_curve = np.array([np.mean(nearer & (closest_to_synth_center <= r)) for r in closest_radii])
    authentic = real_to_real[synth_to_real_args] < synth_to_real
    return {
        KEY_ALPHA_PRECISION: _integrated(alphas, precision_curve),
        KEY_BETA_RECALL: _integrated(alphas, coverage_curve),
        KEY_AUTHENTICITY: authentic.double().mean().item(),
    }


def _compute_alpha_beta(inputs: MetricInputs) -> GroupValues:
    lens = inputs.lens
    with inputs.timer("alpha_beta"):
        return alpha_beta_authenticity(lens.features, lens.reference.features)


register_metric_group(MetricGroup(
    "alpha_beta", (KEY_ALPHA_PRECISION, KEY_BETA_RECALL, KEY_AUTHENTICITY), _compute_alpha_beta,
    frozenset({"features"}), "alpha-precision, beta-recall and authenticity (Alaa et al. 2022)",
))
