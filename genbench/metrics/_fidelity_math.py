"""torch-fidelity's FID, KID and Inception Score arithmetic, without importing torch-fidelity.

``import torch_fidelity`` (or any of its submodules: the package ``__init__`` runs
first) imports torchvision, which imports ``torch._dynamo``: seconds of start-up that
``genbench eval`` on the domain extractor never needs. These functions repeat, operation
for operation, torch-fidelity 0.4's ``fid_features_to_statistics`` and
``fid_statistics_to_metric`` (adapted there from TTUR, Apache-2.0),
``kid_features_to_metric`` with its default cubic polynomial kernel (adapted there from
MMD-GAN, BSD-3-Clause) and ``isc_features_to_metric`` (torch-fidelity: Apache-2.0), so
their results are bit-identical; ``tests/test_fidelity_math.py`` checks that against the
installed torch-fidelity.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor


def fid_features_to_statistics(features: Tensor) -> dict[str, np.ndarray]:
    """``{"mu": [D], "sigma": [D,D]}`` of ``features [N,D]`` (mean, ``np.cov`` with ddof=1)."""
    assert torch.is_tensor(features) and features.dim() == 2
    x = features.numpy()
    return {"mu": np.mean(x, axis=0), "sigma": np.cov(x, rowvar=False)}


def fid_statistics_to_metric(stat_1: dict[str, np.ndarray], stat_2: dict[str, np.ndarray]) -> float:
    """Fréchet distance ``|mu1-mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)`` of two statistics."""
    mu1, sigma1 = stat_1["mu"], stat_1["sigma"]
    mu2, sigma2 = stat_2["mu"], stat_2["sigma"]
    assert mu1.ndim == 1 and mu1.shape == mu2.shape and mu1.dtype == mu2.dtype
    assert sigma1.ndim == 2 and sigma1.shape == sigma2.shape and sigma1.dtype == sigma2.dtype
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype("complex128")).real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    m = k_xx.shape[0]
    diag_x = np.diagonal(k_xx)
    diag_y = np.diagonal(k_yy)
    kt_xx_sum = (k_xx.sum(axis=1) - diag_x).sum()
    kt_yy_sum = (k_yy.sum(axis=1) - diag_y).sum()
    k_xy_sum = k_xy.sum(axis=0).sum()
    mmd2 = (kt_xx_sum + kt_yy_sum) / (m * (m - 1))
    mmd2 -= 2 * k_xy_sum / (m * m)
    return mmd2


def _kernel_poly(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: int = 1) -> np.ndarray:
    gamma = 1.0 / x.shape[1]
    return (np.matmul(x, y.T) * gamma + coef0) ** degree


def kid_features_to_metric(
    features_1: Tensor,
    features_2: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    threads: int | None = None,
) -> tuple[float, float]:
    """``(mean, std)`` of the unbiased MMD^2 over ``subsets`` random subsets (without replacement) of each set.

    The subsets are drawn in torch-fidelity's order first, then their MMDs computed on
    ``threads`` threads (default: the usable cores, at most 4). numpy releases the GIL
    in the products and sums, and each subset's arithmetic is unchanged, so the result
    does not depend on ``threads``.
    """
    assert torch.is_tensor(features_1) and features_1.dim() == 2
    assert torch.is_tensor(features_2) and features_2.dim() == 2
    assert features_1.shape[1] == features_2.shape[1]
    n_1, n_2 = len(features_1), len(features_2)
    if n_1 < subset_size or n_2 < subset_size:
        raise ValueError(f"KID subset size {subset_size} exceeds a set size ({n_1}, {n_2})")
    f_1 = features_1.cpu().numpy()
    f_2 = features_2.cpu().numpy()
    rng = np.random.RandomState(seed)
    draws = [(rng.choice(n_1, subset_size, replace=False), rng.choice(n_2, subset_size, replace=False))
             for _ in range(subsets)]

    def mmd(draw: tuple[np.ndarray, np.ndarray]) -> float:
        x, y = f_1[draw[0]], f_2[draw[1]]
        return _mmd2_unbiased(_kernel_poly(x, x), _kernel_poly(x, y), _kernel_poly(y, y))

    threads = threads or min(4, _usable_cores())
    if threads > 1 and subsets > 1:
        with ThreadPoolExecutor(min(threads, subsets), thread_name_prefix="genbench-kid") as pool:
            values = list(pool.map(mmd, draws))
    else:
        values = [mmd(draw) for draw in draws]
    mmds = np.zeros(subsets)
    mmds[:] = values
    return float(np.mean(mmds)), float(np.std(mmds))


def isc_features_to_metric(logits: Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """``(mean, std)`` over ``splits`` of ``exp(E KL(p(y|x) || p(y)))``, after a seeded shuffle of ``logits [N,C]``."""
    assert torch.is_tensor(logits) and logits.dim() == 2
    n = logits.shape[0]
    rng = np.random.RandomState(seed)
    feature = logits[rng.permutation(n), :].double()
    p = feature.softmax(dim=1)
    log_p = feature.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        p_chunk = p[(i * n // splits) : ((i + 1) * n // splits), :]
        log_p_chunk = log_p[(i * n // splits) : ((i + 1) * n // splits), :]
        q_chunk = p_chunk.mean(dim=0, keepdim=True)
        kl = p_chunk * (log_p_chunk - q_chunk.log())
        scores.append(kl.sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))
