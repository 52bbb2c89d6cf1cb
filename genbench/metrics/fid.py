"""Fréchet distance between Gaussian fits of feature sets (Heusel et al. 2017), with a bootstrap interval.

The point estimate is computed by torch-fidelity's ``fid_features_to_statistics`` and
``fid_statistics_to_metric`` (repeated in :mod:`genbench.metrics._fidelity_math`, which
spares ``genbench eval`` torch-fidelity's import of torchvision) on features genbench
extracted once, so it equals ``torch_fidelity.calculate_metrics(fid=True)`` with the
same extractor.

The 95% interval comes from a bootstrap over the generated samples (the reference
statistics are held fixed). Each replicate redraws ``n`` samples with replacement,
expressed as counts so its covariance is one weighted ``D x D`` product, and its FID
uses the symmetric form ``tr sqrt(S_r^1/2 S_g S_r^1/2)`` (``eigvalsh`` of a PSD
matrix; same value as torch-fidelity's ``eigvals(S_g S_r)``, a third of the cost). Resampling with
replacement leaves ~63% distinct samples, and FID's small-sample bias (Chong &
Forsyth 2020) then lifts every replicate: raw percentiles typically lie entirely
above the point estimate. The interval is therefore the 2.5-97.5 percentile range
of the replicates shifted by ``median(replicates) - fid``: it is centred on the
reported FID and measures its sampling variability at this ``n``.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from genbench.metrics._blas import single_threaded_blas
from genbench.metrics._fidelity_math import (
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from genbench.metrics.group import GroupValues, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_FID = "fid"
KEY_FID_CI_LOW = "fid_ci_low"
KEY_FID_CI_HIGH = "fid_ci_high"

register_metric(MetricSpec(
    KEY_FID, "Fréchet distance between generated and test-split features (Heusel et al. 2017)",
    unit="", higher_is_better=False, kind="distance",
))
register_metric(MetricSpec(
    KEY_FID_CI_LOW, "lower end of FID's 95% bootstrap interval (resampled generated samples)",
    unit="", higher_is_better=None, kind="uncertainty", group="info",
))
register_metric(MetricSpec(
    KEY_FID_CI_HIGH, "upper end of FID's 95% bootstrap interval (resampled generated samples)",
    unit="", higher_is_better=None, kind="uncertainty", group="info",
))


def fid_from_features(generated: Tensor, ref_mu: np.ndarray, ref_sigma: np.ndarray) -> float:
    """FID of ``generated [N,D]`` features against reference statistics (torch-fidelity's math)."""
    with single_threaded_blas():
        stats = fid_features_to_statistics(generated.float().cpu())
        ref = {
            "mu": np.asarray(ref_mu, dtype=stats["mu"].dtype),
            "sigma": np.asarray(ref_sigma, dtype=stats["sigma"].dtype),
        }
        return fid_statistics_to_metric(stats, ref)


def fid_bootstrap_replicates(
    generated: Tensor, ref_mu: np.ndarray, ref_sigma: np.ndarray, reps: int = 100, seed: int = 0
) -> np.ndarray:
    """FID of ``reps`` resamples (with replacement) of ``generated [N,D]``; ``[reps]`` float64."""
    x = generated.double().cpu().numpy()
    n = len(x)
    if n < 2:
        raise ValueError("the FID bootstrap needs at least 2 samples")
    center = x.mean(axis=0)
    x0 = x - center  # centred, so the one-pass covariance below loses no precision
    x0_32 = x0.astype(np.float32)  # the N x D x D product dominates; float32 halves it, ample for an interval
    mu_r = np.asarray(ref_mu, dtype=np.float64)
    sigma_r = np.asarray(ref_sigma, dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    with single_threaded_blas():
        evals, evecs = np.linalg.eigh(sigma_r)
        root_r = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T  # S_r^1/2
        trace_r = np.trace(sigma_r)
        for b in range(reps):
            counts = np.bincount(rng.integers(0, n, n), minlength=n)  # draws of each sample
            m0 = counts @ x0 / n
            second = ((x0_32 * counts[:, None].astype(np.float32)).T @ x0_32).astype(np.float64)
            sigma = (second - n * np.outer(m0, m0)) / (n - 1)  # np.cov's ddof=1 on the resample
            out[b] = fid_symmetric(m0 + center, sigma, mu_r, root_r, trace_r)
    return out


def fid_symmetric(mu: np.ndarray, sigma: np.ndarray, mu_r: np.ndarray, root_r: np.ndarray, trace_r: float) -> float:
    """FID with ``tr sqrt(S S_r)`` as ``sum sqrt(eigvalsh(S_r^1/2 S S_r^1/2))`` (``root_r`` = S_r^1/2)."""
    diff = mu - mu_r
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root_r @ sigma @ root_r), 0, None)).sum()
    return float(diff @ diff + np.trace(sigma) + trace_r - 2 * tr_covmean)


def fid_bootstrap_interval(
    generated: Tensor,
    ref_mu: np.ndarray,
    ref_sigma: np.ndarray,
    fid: float,
    reps: int = 100,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """``level`` interval of FID (point estimate ``fid``), centred as the module docstring says."""
    boot = fid_bootstrap_replicates(generated, ref_mu, ref_sigma, reps, seed)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    shift = float(np.median(boot)) - fid
    return max(float(low) - shift, 0.0), float(high) - shift


def _compute_fid(inputs: MetricInputs) -> GroupValues:
    lens = inputs.lens
    with inputs.timer("fid"):
        return {KEY_FID: fid_from_features(lens.features, lens.reference.mu, lens.reference.sigma)}


def _compute_fid_ci(inputs: MetricInputs) -> GroupValues:
    lens, reps = inputs.lens, inputs.config.fid_bootstrap_reps
    with inputs.timer("fid_bootstrap"):
        if reps <= 0:
            disabled = Null("bootstrap disabled (fid_bootstrap_reps=0)")
            return {KEY_FID_CI_LOW: disabled, KEY_FID_CI_HIGH: disabled}
        low, high = fid_bootstrap_interval(lens.features, lens.reference.mu, lens.reference.sigma,
                                           inputs.values[KEY_FID], reps=reps, seed=inputs.seed)
    return {KEY_FID_CI_LOW: low, KEY_FID_CI_HIGH: high}


register_metric_group(MetricGroup(
    "fid", (KEY_FID,), _compute_fid, frozenset({"features"}),
    "Fréchet distance in the feature space of `--features`",
))
register_metric_group(MetricGroup(
    "fid_ci", (KEY_FID_CI_LOW, KEY_FID_CI_HIGH), _compute_fid_ci, frozenset({"features"}),
    "FID's bootstrap interval (computes `fid` too; `--seed` seeds it)", implies=("fid",),
))
