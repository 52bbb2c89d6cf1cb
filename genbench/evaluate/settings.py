"""What an evaluation computes: the metric keys by group, its settings (:class:`EvalConfig`) and its
result (:class:`EvalResult`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from genbench.data.datasets import SPLIT_SIZES
from genbench.metrics import metric_groups
from genbench.metrics.likelihood import (
    KEY_NLL_BPD,
    KEY_NLL_BPD_STDERR,
    KEY_NLL_IS_BOUND,
)
from genbench.metrics.reconstruction import (
    KEY_COMPLETION_MSE,
    KEY_COMPLETION_PSNR,
    KEY_MSE,
    KEY_PSNR,
    KEY_SSIM,
)
from genbench.validation import expect_int

ProgressFn = Callable[[str, int, int], None]
MetricValue = float | bool | None

SMALL_N_WARNING = 2000  # FID's bias grows quickly below this many samples (Chong & Forsyth 2020)

# What one feature extractor (the lens of --features) gives a group; the groups that need no more are
# computed by distribution_metrics from features extracted once.
LENS_NEEDS = frozenset({"features", "logits", "domain_classifier", "reference_labels"})
# The sample-quality metrics by the group that computes them, in registration order
# (genbench.metrics.metric_groups); EvalConfig.metric_groups (genbench eval --metrics) picks.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {g.name: g.keys for g in metric_groups().values()}
DISTRIBUTION_KEYS = tuple(k for g in metric_groups().values() if g.needs <= LENS_NEEDS for k in g.keys)
SSL_KEYS = metric_groups()["ssl"].keys
COPY_KEYS = metric_groups()["copy"].keys
# computed from the images in pixels, not from features
PIXEL_GROUPS = tuple(g.name for g in metric_groups().values() if "pixels" in g.needs)
RECONSTRUCTION_KEYS = (KEY_PSNR, KEY_MSE, KEY_SSIM)
COMPLETION_KEYS = (KEY_COMPLETION_PSNR, KEY_COMPLETION_MSE)
LIKELIHOOD_KEYS = (KEY_NLL_BPD, KEY_NLL_IS_BOUND, KEY_NLL_BPD_STDERR)
# The settings a suite file's [eval] table may set, and all that a run record's `eval` holds.
SUITE_EVAL_KEYS = ("n_samples", "nll_images", "recon_images")


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation computes and how: one type for a suite's `[eval]` table and every evaluation call.

    A suite file sets only `n_samples`, `nll_images` and `recon_images` (`SUITE_EVAL_KEYS`;
    `suite_settings()` gives them as a run record's `eval` stores them), which
    `genbench.evaluate.evaluate_model` reads: the samples drawn and scored, and the first test
    images scored for likelihood (None: the whole test split) and reconstructed.
    `genbench.evaluate.evaluate_samples` scores the images it is given and reads only the other
    fields. The three are checked when the config is built (a one-line `ConfigError`); a suite
    leaves every other field at its default.
    """

    n_samples: int = 2000  # samples scored by FID/KID/IS/PR/DC
    nll_images: int | None = None  # test images for NLL (None: the whole 10k split)
    recon_images: int = 1000  # test images for PSNR/MSE/SSIM
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

    def __post_init__(self) -> None:
        test_size = SPLIT_SIZES["test"]
        # FID needs a covariance, so at least two samples; the image counts take the first test images.
        expect_int(self.n_samples, "[eval] n_samples", minimum=2)
        if self.nll_images is not None:
            expect_int(self.nll_images, "[eval] nll_images", minimum=1, maximum=test_size)
        expect_int(self.recon_images, "[eval] recon_images", minimum=1, maximum=test_size)

    def suite_settings(self) -> dict[str, int | None]:
        """The settings a suite's ``[eval]`` table sets, as a run record's ``eval`` holds them."""
        return {k: getattr(self, k) for k in SUITE_EVAL_KEYS}


@dataclass
class EvalResult:
    """Flat metrics (None where a metric does not apply) with their provenance."""

    metrics: dict[str, MetricValue]
    null_reasons: dict[str, str]  # key -> why it is None
    samples: Tensor  # [n,1,28,28] uint8: the quantized samples that were scored
    timings: dict[str, float]  # seconds per phase
    extractor: dict[str, str]  # {"name", "sha256"}
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per user metric that failed (its value is None)
    features: dict[str, Tensor] = field(default_factory=dict)  # extractor name -> [n,d] features of the samples


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
