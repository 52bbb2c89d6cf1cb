"""Score a generator (or a set of images): choose metrics by capability, run them, return flat keys.

The harness calls :func:`evaluate_model`; ``genbench eval`` calls
:func:`evaluate_samples`. Both follow the same path for sample quality:

1. samples are quantized to ``[N,1,28,28] uint8`` (``round(x*255)``) before anything
   else, so in-process numbers equal those of ``genbench eval`` on saved PNGs;
2. features and logits are extracted **once**;
3. FID (+ bootstrap interval), KID (+ std), IS (+ std), precision, recall, density,
   coverage and ``confident_fraction`` are computed from those tensors against the
   cached statistics of the test split's reference part (``test-reference``,
   :mod:`genbench.data.splits`; :func:`genbench.features.load_reference`);
4. ``fid_ssl``, ``precision_ssl`` and ``recall_ssl`` repeat FID, precision and recall in a
   second feature space, the dataset's self-supervised encoder (:mod:`genbench.features.ssl`),
   whatever ``features`` is, against that lens's cached statistics of the same split;
5. ``fid_inf`` (FD∞, :mod:`genbench.metrics.fid_inf`) extrapolates FID to infinitely
   many samples; ``classes_covered``, ``class_kl`` and ``fid_intra``
   (:mod:`genbench.metrics.classes`) read the domain classifier's classes;
6. ``copy_fraction`` compares the samples' nearest-training-image distances in pixels
   with those of the reference images (:mod:`genbench.metrics.copying`), and
   ``copy_ct``/``copy_ct_p`` test the same question with Meehan et al.'s C_T
   (:mod:`genbench.metrics.copy_test`).

Model-only metrics follow the declared capabilities: ``nll_bpd`` (LOG_LIKELIHOOD),
``psnr``/``mse``/``ssim`` (RECONSTRUCT) and ``completion_psnr``/``completion_mse``
(COMPLETE). A metric that does not apply is ``None`` with a reason in
``null_reasons``. For a fixed seed everything is deterministic on the CPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from genbench.data.datasets import load_split
from genbench.data.splits import REFERENCE, TRAIN, split_images, split_labels
from genbench.errors import ConfigError, InputError
from genbench.features import (
    Extractor,
    Features,
    ReferenceStats,
    load_extractor,
    load_reference,
)
from genbench.metrics.classes import CLASS_KEYS, class_metrics
from genbench.metrics.confidence import KEY_CONFIDENT_FRACTION, confident_fraction
from genbench.metrics.copy_test import COPY_CT_KEYS, KEY_COPY_CT, KEY_COPY_CT_P, copy_test_samples, load_cells
from genbench.metrics.copying import (
    KEY_COPY_FRACTION,
    copy_fraction_from_distances,
    load_calibration,
    nearest_distances,
)
from genbench.metrics.eval_throughput import KEY_FEATURE_IMAGES_PER_S, KEY_N_SAMPLES
from genbench.metrics.fid import (
    KEY_FID,
    KEY_FID_CI_HIGH,
    KEY_FID_CI_LOW,
    fid_bootstrap_interval,
    fid_from_features,
)
from genbench.metrics.fid_inf import KEY_FID_INF, fid_infinity
from genbench.metrics.fid_inf import MIN_FRACTION as FID_INF_MIN_FRACTION
from genbench.metrics.fid_ssl import KEY_FID_SSL, KEY_PRECISION_SSL, KEY_RECALL_SSL
from genbench.metrics.inception_score import KEY_IS, KEY_IS_STD, inception_score
from genbench.metrics.kid import KEY_KID, KEY_KID_STD, kid_from_features
from genbench.metrics.likelihood import (
    KEY_NLL_BPD,
    KEY_NLL_BPD_STDERR,
    KEY_NLL_IS_BOUND,
    nll_summary,
)
from genbench.metrics.prdc import (
    KEY_COVERAGE,
    KEY_DENSITY,
    KEY_PRECISION,
    KEY_RECALL,
    precision_recall_density_coverage,
)
from genbench.metrics.reconstruction import (
    KEY_COMPLETION_MSE,
    KEY_COMPLETION_PSNR,
    KEY_MSE,
    KEY_PSNR,
    KEY_SSIM,
    completion_metrics,
    reconstruction_metrics,
)
from genbench.metrics.throughput import (
    KEY_SAMPLE_IMAGES_PER_S,
    KEY_SAMPLE_IMAGES_PER_S_CI_HIGH,
    KEY_SAMPLE_IMAGES_PER_S_CI_LOW,
)
from genbench.protocol import IMAGE_SHAPE, Capability, Generator, quantize
from genbench.sample_contract import check_samples
from genbench.stats import MIN_MEDIAN_CI_N, median_ci

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


def distribution_metrics(
    generated: Features,
    reference: ReferenceStats,
    *,
    domain_classifier: bool,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
    timings: dict[str, float] | None = None,
    reference_labels: Tensor | None = None,
) -> tuple[dict[str, MetricValue], dict[str, str]]:
    """Every sample-quality metric from features extracted once, against ``reference``.

    ``reference_labels [M]`` (the true classes of the reference images, row by row)
    are needed by the class metrics, which are None without them.
    """
    timings = {} if timings is None else timings
    metrics: dict[str, MetricValue] = {}
    reasons: dict[str, str] = {}
    n = len(generated.features)
    if n < 2:
        raise InputError(f"sample-quality metrics need at least 2 samples, got {n}")
    feats, logits = generated.features, generated.logits
    unknown = sorted(set(config.metric_groups) - set(METRIC_GROUPS))
    if unknown:
        raise ConfigError(f"unknown metric group(s) {', '.join(unknown)}; valid: {', '.join(METRIC_GROUPS)}")
    groups = set(config.metric_groups) | ({"fid"} if "fid_ci" in config.metric_groups else set())
    for group, keys in METRIC_GROUPS.items():
        if group not in groups and group not in (*PIXEL_GROUPS, "ssl"):
            _set_null(metrics, reasons, keys, f"not requested (metrics: {', '.join(sorted(groups))})")
    if "fid" in groups:
        with _Timer(timings, "fid"):
            metrics[KEY_FID] = fid_from_features(feats, reference.mu, reference.sigma)
    if "fid_ci" in groups:
        with _Timer(timings, "fid_bootstrap"):
            if config.fid_bootstrap_reps > 0:
                metrics[KEY_FID_CI_LOW], metrics[KEY_FID_CI_HIGH] = fid_bootstrap_interval(
                    feats, reference.mu, reference.sigma, metrics[KEY_FID], reps=config.fid_bootstrap_reps, seed=seed
                )
            else:
                _set_null(metrics, reasons, (KEY_FID_CI_LOW, KEY_FID_CI_HIGH),
                          "bootstrap disabled (fid_bootstrap_reps=0)")
    if "kid" in groups:
        with _Timer(timings, "kid"):
            metrics[KEY_KID], metrics[KEY_KID_STD] = kid_from_features(
                feats, reference.features, config.kid_subsets, config.kid_subset_size, config.estimator_seed
            )
    if "is" in groups:
        with _Timer(timings, "is"):
            metrics[KEY_IS], metrics[KEY_IS_STD] = inception_score(logits, config.is_splits, config.estimator_seed)
    if "prdc" in groups:
        with _Timer(timings, "prdc"):
            if n > config.k_nearest:
                metrics.update(precision_recall_density_coverage(
                    feats, reference.features, reference.radii[config.k_nearest], config.k_nearest
                ))
            else:
                _set_null(metrics, reasons, METRIC_GROUPS["prdc"],
                          f"needs more than {config.k_nearest} samples for k-NN radii, got {n}")
    if "confident_fraction" in groups:
        if domain_classifier:
            metrics[KEY_CONFIDENT_FRACTION] = confident_fraction(logits, config.confident_threshold)
        else:
            _set_null(metrics, reasons, (KEY_CONFIDENT_FRACTION,), "needs the domain classifier (--features genbench)")
    if "fid_inf" in groups:
        with _Timer(timings, "fid_inf"):
            smallest, width = int(FID_INF_MIN_FRACTION * n), feats.shape[1]
            if smallest > width:
                metrics[KEY_FID_INF] = fid_infinity(feats, reference.mu, reference.sigma, seed=seed)
            else:  # below the feature width the subsets' covariances are singular and the line in 1/N bends
                _set_null(metrics, reasons, (KEY_FID_INF,),
                          f"needs more than {math.floor(width / FID_INF_MIN_FRACTION)} samples (its smallest subset, "
                          f"{FID_INF_MIN_FRACTION:g} of them, must exceed the {width}-d features), got {n}")
    if "classes" in groups:
        with _Timer(timings, "classes"):
            if not domain_classifier:
                _set_null(metrics, reasons, CLASS_KEYS, "needs the domain classifier (--features genbench)")
            elif reference_labels is None:
                _set_null(metrics, reasons, CLASS_KEYS, "no labels of the reference images given")
            else:
                values, class_reasons = class_metrics(logits, feats, reference.features, reference_labels)
                metrics.update(values)
                reasons.update(class_reasons)
    return {k: metrics[k] for k in DISTRIBUTION_KEYS}, reasons


def copy_metrics(
    samples: Tensor,
    *,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    config: EvalConfig = EvalConfig(),
    timings: dict[str, float] | None = None,
    progress: ProgressFn | None = None,
    reasons: dict[str, str] | None = None,
) -> dict[str, MetricValue]:
    """``copy_fraction`` and/or (by ``config.metric_groups``) ``copy_ct``/``copy_ct_p`` of ``samples
    [N,1,28,28] uint8`` against ``dataset``'s training split; why a value is None goes to ``reasons``."""
    timings = {} if timings is None else timings
    reasons = {} if reasons is None else reasons
    out: dict[str, MetricValue] = {}
    train = split_images(dataset, TRAIN, data_root)
    if "copy" in config.metric_groups:
        with _Timer(timings, "copy_calibration"):  # cached after the first call per dataset
            threshold = load_calibration(dataset, data_root, progress).threshold(config.copy_quantile)
        with _Timer(timings, "copy_search"):
            distances, _ = nearest_distances(samples, train, progress=progress)
        out[KEY_COPY_FRACTION] = copy_fraction_from_distances(distances, threshold)
    if "copy_test" in config.metric_groups:
        with _Timer(timings, "copy_test_cells"):  # k-means of the training set: cached after the first call
            cells = load_cells(dataset, data_root)
        with _Timer(timings, "copy_test"):
            result = copy_test_samples(samples, train, cells)
        if result is None:
            _set_null(out, reasons, COPY_CT_KEYS, "no k-means cell of the training set holds 20 samples")
        else:
            out[KEY_COPY_CT], out[KEY_COPY_CT_P] = result
    return out


def ssl_metrics(
    samples: Tensor,
    *,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    config: EvalConfig = EvalConfig(),
    timings: dict[str, float] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, MetricValue], Extractor]:
    """``fid_ssl``, ``precision_ssl``, ``recall_ssl`` of ``samples [N,1,28,28] uint8`` in ``dataset``'s SSL lens."""
    from genbench.features.ssl import load_ssl_extractor

    timings = {} if timings is None else timings
    with _Timer(timings, "ssl_load_extractor"):
        extractor = load_ssl_extractor(dataset, device)
    with _Timer(timings, "ssl_reference"):
        reference = load_reference(
            dataset, extractor, split=REFERENCE, data_root=data_root, batch_size=config.feature_batch_size,
            ks=(config.k_nearest,),
            progress=(lambda d, c, t: progress("SSL reference statistics", c, t)) if progress else None,
        )
    with _Timer(timings, "ssl_features"):
        feats = extractor.extract(samples, config.feature_batch_size).features
    out: dict[str, MetricValue] = {}
    with _Timer(timings, "fid_ssl"):
        out[KEY_FID_SSL] = fid_from_features(feats, reference.mu, reference.sigma)
    with _Timer(timings, "prdc_ssl"):
        if len(feats) > config.k_nearest:
            prdc = precision_recall_density_coverage(
                feats, reference.features, reference.radii[config.k_nearest], config.k_nearest
            )
            out[KEY_PRECISION_SSL], out[KEY_RECALL_SSL] = prdc[KEY_PRECISION], prdc[KEY_RECALL]
        else:
            out[KEY_PRECISION_SSL] = out[KEY_RECALL_SSL] = None
    return out, extractor


def _check_images(x: Tensor, what: str) -> Tensor:
    if x.dtype != torch.uint8 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise InputError(f"{what} must be uint8 [N,1,28,28], got {x.dtype} {tuple(x.shape)}")
    return x


def _score_samples(
    samples: Tensor,
    *,
    dataset: str,
    data_root: str | os.PathLike | None,
    features: str,
    device: torch.device,
    seed: int,
    config: EvalConfig,
    inception_weights: str | os.PathLike | None,
    progress: ProgressFn | None,
    metrics: dict[str, MetricValue],
    reasons: dict[str, str],
    timings: dict[str, float],
) -> dict[str, str]:
    """Score ``samples`` into ``metrics``/``reasons``/``timings``; return the extractors' identities."""
    with _Timer(timings, "load_extractor"):
        extractor = load_extractor(features, dataset, device, inception_weights)
    with _Timer(timings, "reference"):
        reference = load_reference(
            dataset, extractor, split=REFERENCE, data_root=data_root, batch_size=config.feature_batch_size,
            ks=(config.k_nearest,),
            progress=(lambda d, c, t: progress("reference statistics", c, t)) if progress else None,
        )
    with _Timer(timings, "features"):
        generated = extractor.extract(samples, config.feature_batch_size, progress)
    dist, dist_reasons = distribution_metrics(
        generated, reference, domain_classifier=extractor.is_domain_classifier, seed=seed, config=config,
        timings=timings, reference_labels=split_labels(dataset, REFERENCE, data_root),
    )
    metrics.update(dist)
    reasons.update(dist_reasons)
    not_requested = f"not requested (metrics: {', '.join(sorted(config.metric_groups))})"
    info = dict(extractor.info)
    if "ssl" in config.metric_groups:
        ssl, ssl_extractor = ssl_metrics(samples, dataset=dataset, data_root=data_root, device=device, config=config,
                                         timings=timings, progress=progress)
        metrics.update(ssl)
        for key in (KEY_PRECISION_SSL, KEY_RECALL_SSL):
            if ssl[key] is None:
                reasons[key] = f"needs more than {config.k_nearest} samples for k-NN radii, got {len(samples)}"
        info.update(ssl_name=ssl_extractor.name, ssl_sha256=ssl_extractor.sha256)
    else:
        _set_null(metrics, reasons, SSL_KEYS, not_requested)
    for group in PIXEL_GROUPS:
        if group not in config.metric_groups:
            _set_null(metrics, reasons, METRIC_GROUPS[group], not_requested)
    if set(PIXEL_GROUPS) & set(config.metric_groups):
        metrics.update(copy_metrics(samples, dataset=dataset, data_root=data_root, config=config, timings=timings,
                                    progress=progress, reasons=reasons))
    metrics[KEY_N_SAMPLES] = len(samples)
    metrics[KEY_FEATURE_IMAGES_PER_S] = generated.images_per_s
    return info


def sample_speed(rates: list[float], reasons: dict[str, str]) -> dict[str, MetricValue]:
    """Median images/s over sample calls with its 95% interval (null, with a reason in ``reasons``,
    below 6 calls)."""
    median, low, high = median_ci(rates)
    out: dict[str, MetricValue] = {KEY_SAMPLE_IMAGES_PER_S: median, KEY_SAMPLE_IMAGES_PER_S_CI_LOW: low,
                                   KEY_SAMPLE_IMAGES_PER_S_CI_HIGH: high}
    if low is None:
        for key in (KEY_SAMPLE_IMAGES_PER_S_CI_LOW, KEY_SAMPLE_IMAGES_PER_S_CI_HIGH):
            reasons[key] = f"{len(rates)} sample call(s); a 95% interval of the median needs {MIN_MEDIAN_CI_N}"
    return out


def _small_n_warning(n: int) -> list[str]:
    if n < SMALL_N_WARNING:
        return [f"only {n} samples: FID is biased upwards at small N (use >= {SMALL_N_WARNING}, ideally 10000)"]
    return []


def evaluate_samples(
    samples_u8: Tensor,
    *,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    features: str = "genbench",
    device: torch.device | str = "cpu",
    seed: int = 0,
    reference_u8: Tensor | None = None,
    inception_weights: str | os.PathLike | None = None,
    config: EvalConfig = EvalConfig(),
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Score images ``[N,1,28,28] uint8`` against ``dataset``'s reference (``test-reference``) and training split.

    ``reference_u8`` (same shape, paired with ``samples_u8`` row by row) adds
    ``psnr``/``mse``/``ssim``. ``seed`` drives the FID bootstrap.
    """
    samples = _check_images(samples_u8, "samples").cpu()
    device = torch.device(device)
    metrics: dict[str, MetricValue] = {}
    reasons: dict[str, str] = {}
    timings: dict[str, float] = {}
    extractor_info = _score_samples(
        samples, dataset=dataset, data_root=data_root, features=features, device=device, seed=seed, config=config,
        inception_weights=inception_weights, progress=progress, metrics=metrics, reasons=reasons, timings=timings,
    )
    if reference_u8 is not None:
        reference = _check_images(reference_u8, "reference images").cpu()
        if reference.shape != samples.shape:
            raise InputError(f"{len(samples)} samples but {len(reference)} paired reference images")
        with _Timer(timings, "reconstruction"):
            metrics.update(reconstruction_metrics(reference, samples))
    else:
        _set_null(metrics, reasons, RECONSTRUCTION_KEYS, "no paired reference images (--reference) given")
    return EvalResult(metrics, reasons, samples, timings, extractor_info, _small_n_warning(len(samples)))


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _model_batch_size(model: Generator) -> int:
    return int(getattr(getattr(model, "config", None), "batch_size", 0) or 100)


@torch.no_grad()
def _sample(
    model: Generator, n: int, seed: int, device: torch.device, batch: int, progress: ProgressFn | None,
    rates: list[float] | None = None,
) -> Tensor:
    """``n`` quantized samples in calls of ``batch``; ``rates`` collects each call's images/s.

    Each call's output is checked against the sample contract first
    (:func:`genbench.sample_contract.check_samples`): out of range is an error, not a clamp.
    """
    gen = torch.Generator(device).manual_seed(seed)
    chunks = []
    for start, stop in _batches(n, batch):
        t0 = time.perf_counter()
        x = check_samples(model.sample(stop - start, gen), stop - start, type(model).__name__)
        chunks.append(quantize(x).cpu())  # quantized before any metric, as saved PNGs would be
        if rates is not None:
            rates.append((stop - start) / max(time.perf_counter() - t0, 1e-9))
        if progress is not None:
            progress("sampling", stop, n)
    return torch.cat(chunks)


@torch.no_grad()
def _likelihood(model: Generator, images: Tensor, device: torch.device, progress: ProgressFn | None) -> Tensor:
    out = []
    batch = _model_batch_size(model)
    for start, stop in _batches(len(images), batch):
        ll = model.log_likelihood(images[start:stop].to(device))
        out.append(ll.detach().double().cpu().reshape(-1))
        if out[-1].numel() != stop - start:
            raise ValueError(
                f"{type(model).__name__}.log_likelihood returned {out[-1].numel()} values for {stop - start} images"
            )
        if progress is not None:
            progress("likelihood", stop, len(images))
    return torch.cat(out)


@torch.no_grad()
def _reconstruct(model: Generator, images: Tensor, device: torch.device, progress: ProgressFn | None) -> Tensor:
    out = []
    batch = _model_batch_size(model)
    for start, stop in _batches(len(images), batch):
        x = model.reconstruct(images[start:stop].to(device))
        if tuple(x.shape) != (stop - start, *IMAGE_SHAPE):
            raise ValueError(f"{type(model).__name__}.reconstruct returned shape {tuple(x.shape)}")
        out.append(quantize(x).cpu())
        if progress is not None:
            progress("reconstruction", stop, len(images))
    return torch.cat(out)


@torch.no_grad()
def _complete(model: Generator, images: Tensor, known_rows: int, seed: int, device: torch.device) -> Tensor:
    gen = torch.Generator(device).manual_seed(seed)
    out = []
    for start, stop in _batches(len(images), _model_batch_size(model)):
        x = model.complete(images[start:stop].to(device), known_rows, gen)
        if tuple(x.shape) != (stop - start, *IMAGE_SHAPE):
            raise ValueError(f"{type(model).__name__}.complete returned shape {tuple(x.shape)}")
        out.append(quantize(x).cpu())
    return torch.cat(out)


def _seed_model_calls(seed: int) -> None:
    """Seed the global RNGs before a model method that may draw from them (an ELBO's noise).

    ``log_likelihood`` and ``reconstruct`` take no generator, so without this their
    numbers would depend on what the process did before: e.g. whether it had already
    built (and randomly initialised) a feature extractor for an earlier run.
    """
    from genbench.harness import seed_everything

    seed_everything(seed)


def evaluate_model(
    model: Generator,
    *,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    n_samples: int,
    seed: int,
    device: torch.device,
    nll_images: int | None = None,
    recon_images: int = 1000,
    features: str = "genbench",
    progress: ProgressFn | None = None,
    inception_weights: str | os.PathLike | None = None,
    config: EvalConfig = EvalConfig(),
) -> EvalResult:
    """Sample ``n_samples`` images and compute every metric the model's capabilities allow.

    ``nll_images``: first test images scored for likelihood (None: all 10,000);
    ``recon_images``: first test images reconstructed. ``progress(description,
    completed, total)`` is called as phases advance.
    """
    if n_samples < 2:
        raise ConfigError(f"n_samples must be at least 2, got {n_samples}")
    device = torch.device(device)
    model.eval()
    metrics: dict[str, MetricValue] = {}
    reasons: dict[str, str] = {}
    timings: dict[str, float] = {}
    model_name = getattr(model, "name", "") or type(model).__name__

    rates: list[float] = []
    with _Timer(timings, "sampling"):
        batch = n_samples if model.sample_in_one_call else config.sample_batch_size
        samples = _sample(model, n_samples, seed, device, batch, progress, rates)
    metrics.update(sample_speed(rates, reasons))

    extractor_info = _score_samples(
        samples, dataset=dataset, data_root=data_root, features=features, device=device, seed=seed, config=config,
        inception_weights=inception_weights, progress=progress, metrics=metrics, reasons=reasons, timings=timings,
    )

    needs_test = any(model.has(c) for c in (Capability.LOG_LIKELIHOOD, Capability.RECONSTRUCT, Capability.COMPLETE))
    test = load_split(dataset, "test", data_root).images if needs_test else None

    if model.has(Capability.LOG_LIKELIHOOD):
        images = test if nll_images is None else test[:nll_images]
        with _Timer(timings, "likelihood"):
            _seed_model_calls(seed)
            ll = _likelihood(model, images, device, progress)
        bad = int((~torch.isfinite(ll)).sum())
        if bad:
            _set_null(metrics, reasons, (KEY_NLL_BPD, KEY_NLL_BPD_STDERR),
                      f"log_likelihood returned {bad} non-finite values on {len(images)} test images")
        else:
            summary = nll_summary(ll)
            metrics.update(summary)
            if summary[KEY_NLL_BPD_STDERR] is None:
                reasons[KEY_NLL_BPD_STDERR] = "one test image: no standard error"
        metrics[KEY_NLL_IS_BOUND] = bool(model.likelihood_is_bound)
    else:
        _set_null(metrics, reasons, LIKELIHOOD_KEYS, f"{model_name} does not declare LOG_LIKELIHOOD")

    if model.has(Capability.RECONSTRUCT):
        images = test[:recon_images]
        with _Timer(timings, "reconstruction"):
            _seed_model_calls(seed)
            metrics.update(reconstruction_metrics(images, _reconstruct(model, images, device, progress)))
    else:
        _set_null(metrics, reasons, RECONSTRUCTION_KEYS, f"{model_name} does not declare RECONSTRUCT")

    if model.has(Capability.COMPLETE):
        images = test[: config.completion_images]
        with _Timer(timings, "completion"):
            completed = _complete(model, images, config.known_rows, seed, device)
            metrics.update(completion_metrics(images, completed, config.known_rows))
    else:
        _set_null(metrics, reasons, COMPLETION_KEYS, f"{model_name} does not declare COMPLETE")

    return EvalResult(metrics, reasons, samples, timings, extractor_info, _small_n_warning(n_samples))
