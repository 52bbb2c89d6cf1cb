"""What an evaluation computes: the metric keys by group, its settings (:class:`EvalConfig`) and its
result (:class:`EvalResult`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from genbench.metrics.classes import CLASS_KEYS
from genbench.metrics.confidence import KEY_CONFIDENT_FRACTION
from genbench.metrics.copy_test import COPY_CT_KEYS
from genbench.metrics.copying import (
    KEY_COPY_FRACTION,
)
from genbench.metrics.fid import (
    KEY_FID,
    KEY_FID_CI_HIGH,
    KEY_FID_CI_LOW,
)
from genbench.metrics.fid_inf import KEY_FID_INF
from genbench.metrics.fid_ssl import KEY_FID_SSL, KEY_PRECISION_SSL, KEY_RECALL_SSL
from genbench.metrics.inception_score import KEY_IS, KEY_IS_STD
from genbench.metrics.kid import KEY_KID, KEY_KID_STD
from genbench.metrics.likelihood import (
    KEY_NLL_BPD,
    KEY_NLL_BPD_STDERR,
    KEY_NLL_IS_BOUND,
)
from genbench.metrics.prdc import (
    KEY_COVERAGE,
    KEY_DENSITY,
    KEY_PRECISION,
    KEY_RECALL,
)
from genbench.metrics.reconstruction import (
    KEY_COMPLETION_MSE,
    KEY_COMPLETION_PSNR,
    KEY_MSE,
    KEY_PSNR,
    KEY_SSIM,
)

ProgressFn = Callable[[str, int, int], None]
MetricValue = float | bool | None

SMALL_N_WARNING = 2000  # FID's bias grows quickly below this many samples (Chong & Forsyth 2020)

DISTRIBUTION_KEYS = (
    KEY_FID, KEY_FID_CI_LOW, KEY_FID_CI_HIGH, KEY_KID, KEY_KID_STD, KEY_IS, KEY_IS_STD,
    KEY_PRECISION, KEY_RECALL, KEY_DENSITY, KEY_COVERAGE, KEY_CONFIDENT_FRACTION, KEY_FID_INF, *CLASS_KEYS,
)
COPY_KEYS = (KEY_COPY_FRACTION,)
SSL_KEYS = (KEY_FID_SSL, KEY_PRECISION_SSL, KEY_RECALL_SSL)
# computed from the images in pixels by copy_metrics, not from features (and "ssl" by ssl_metrics)
PIXEL_GROUPS = ("copy", "copy_test")
# The sample-quality metrics by what computes them; EvalConfig.metric_groups (genbench eval --metrics) picks.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "fid": (KEY_FID,),
    "fid_ci": (KEY_FID_CI_LOW, KEY_FID_CI_HIGH),  # FID's bootstrap interval (computes FID too)
    "kid": (KEY_KID, KEY_KID_STD),
    "is": (KEY_IS, KEY_IS_STD),
    "prdc": (KEY_PRECISION, KEY_RECALL, KEY_DENSITY, KEY_COVERAGE),
    "confident_fraction": (KEY_CONFIDENT_FRACTION,),
    "fid_inf": (KEY_FID_INF,),
    "classes": CLASS_KEYS,
    "copy": COPY_KEYS,  # nearest training images in pixels, not features: see copy_metrics
    "ssl": SSL_KEYS,  # the second, self-supervised lens: see ssl_metrics
    "copy_test": COPY_CT_KEYS,  # Meehan et al.'s C_T, in pixels too
}
RECONSTRUCTION_KEYS = (KEY_PSNR, KEY_MSE, KEY_SSIM)
COMPLETION_KEYS = (KEY_COMPLETION_PSNR, KEY_COMPLETION_MSE)
LIKELIHOOD_KEYS = (KEY_NLL_BPD, KEY_NLL_IS_BOUND, KEY_NLL_BPD_STDERR)


@dataclass(frozen=True)
class EvalConfig:
    sample_batch_size: int = 500  # images per model.sample call (fixed: sampling streams depend on it)
    feature_batch_size: int = 500
    fid_bootstrap_reps: int = 100  # replicates of the percentile bootstrap of FID
    kid_subsets: int = 100  # torch-fidelity's defaults (Bińkowski et al. 2018)
    kid_subset_size: int = 1000  # clipped to the smaller set
    is_splits: int = 10  # torch-fidelity's / Salimans et al.'s default
    estimator_seed: int = 2020  # torch-fidelity's rng_seed for KID subsets and IS shuffling
    k_nearest: int = 5  # k-NN radii of precision/recall/density/coverage (Naeem et al. 2020)
    confident_threshold: float = 0.9
    copy_quantile: float = 0.05  # copy_fraction's threshold: this quantile of real images' distances
    completion_images: int = 200
    known_rows: int = 14  # top half given, bottom half completed
    metric_groups: frozenset[str] = frozenset(METRIC_GROUPS)  # the others are None, "not requested"


@dataclass
class EvalResult:
    """Flat metrics (None where a metric does not apply) with their provenance."""

    metrics: dict[str, MetricValue]
    null_reasons: dict[str, str]  # key -> why it is None
    samples: Tensor  # [n,1,28,28] uint8: the quantized samples that were scored
    timings: dict[str, float]  # seconds per phase
    extractor: dict[str, str]  # {"name", "sha256"}
    warnings: list[str] = field(default_factory=list)


class _Timer:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.start


def _set_null(metrics: dict[str, MetricValue], reasons: dict[str, str], keys: tuple[str, ...], reason: str) -> None:
    for k in keys:
        metrics[k] = None
        reasons[k] = reason
