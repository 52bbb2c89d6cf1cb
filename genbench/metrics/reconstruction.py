"""Reconstruction and completion quality on uint8 images: MSE, PSNR and SSIM.

Each metric is computed per image against the original test image (``data_range``
255, scikit-image's definitions) and then averaged over images. SSIM is
scikit-image's ``structural_similarity`` (Wang et al. 2004; 7x7 uniform window).
PSNR of an exact copy is infinite; per-image PSNR is capped at 100 dB so averages
stay finite (the largest finite value between two 28x28 8-bit images is 77.1 dB,
so only exact copies are affected).

Completion metrics compare only the rows a model had to invent (the bottom half
when the top 14 rows are given).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from genbench.metrics.spec import MetricSpec, register_metric
from genbench.protocol import Capability

KEY_PSNR = "psnr"
KEY_MSE = "mse"
KEY_SSIM = "ssim"
KEY_COMPLETION_PSNR = "completion_psnr"
KEY_COMPLETION_MSE = "completion_mse"
DATA_RANGE = 255.0
PSNR_CAP_DB = 100.0

register_metric(MetricSpec(
    KEY_PSNR, "peak signal-to-noise ratio of reconstructions of test images (per image, averaged)",
    unit="dB", higher_is_better=True, kind="score", requires=Capability.RECONSTRUCT, group="reconstruction",
))
register_metric(MetricSpec(
    KEY_MSE, "mean squared error of reconstructions of test images, on 0-255 pixel values",
    unit="", higher_is_better=False, kind="distance", requires=Capability.RECONSTRUCT, group="reconstruction",
))
register_metric(MetricSpec(
    KEY_SSIM, "structural similarity of reconstructions of test images (Wang et al. 2004)",
    unit="", higher_is_better=True, kind="fraction", requires=Capability.RECONSTRUCT, group="reconstruction",
))
register_metric(MetricSpec(
    KEY_COMPLETION_PSNR, "PSNR of the completed bottom half of test images given the top 14 rows",
    unit="dB", higher_is_better=True, kind="score", requires=Capability.COMPLETE, group="reconstruction",
))
register_metric(MetricSpec(
    KEY_COMPLETION_MSE, "MSE of the completed bottom half of test images given the top 14 rows (0-255 values)",
    unit="", higher_is_better=False, kind="distance", requires=Capability.COMPLETE, group="reconstruction",
))


def _as_gray_batch(x: Tensor) -> np.ndarray:
    a = x.detach().cpu().numpy()
    if a.dtype != np.uint8:
        raise TypeError(f"reconstruction metrics take uint8 images, got {a.dtype}")
    return a.reshape(a.shape[0], a.shape[-2], a.shape[-1])


def per_image_mse(reference: Tensor, test: Tensor) -> np.ndarray:
    """``[N]`` float64 MSE between uint8 image batches ``[N,1,H,W]``."""
    ref, tst = _as_gray_batch(reference).astype(np.float64), _as_gray_batch(test).astype(np.float64)
    if ref.shape != tst.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {tst.shape}")
    return ((ref - tst) ** 2).mean(axis=(1, 2))


def psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    """scikit-image's ``10 log10(range^2 / mse)``, capped at :data:`PSNR_CAP_DB`."""
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(DATA_RANGE**2 / mse)
    return np.minimum(psnr, PSNR_CAP_DB)


def reconstruction_metrics(reference: Tensor, test: Tensor) -> dict[str, float]:
    """Average ``psnr``, ``mse`` and ``ssim`` of ``test`` against ``reference`` (uint8 ``[N,1,H,W]``)."""
    mse = per_image_mse(reference, test)
    ref, tst = _as_gray_batch(reference), _as_gray_batch(test)
    # scikit-image (and the scipy.ndimage it loads) is imported here, not at start-up: most
    # evaluations have no reference images.
    from skimage.metrics import structural_similarity

    ssim = [structural_similarity(r, t, data_range=DATA_RANGE) for r, t in zip(ref, tst, strict=True)]
    return {
        KEY_PSNR: float(psnr_from_mse(mse).mean()),
        KEY_MSE: float(mse.mean()),
        KEY_SSIM: float(np.mean(ssim)),
    }


def completion_metrics(reference: Tensor, completed: Tensor, known_rows: int) -> dict[str, float]:
    """``completion_psnr`` and ``completion_mse`` on rows ``known_rows:`` only (uint8 ``[N,1,28,28]``)."""
    mse = per_image_mse(reference[..., known_rows:, :], completed[..., known_rows:, :])
    return {KEY_COMPLETION_PSNR: float(psnr_from_mse(mse).mean()), KEY_COMPLETION_MSE: float(mse.mean())}
