"""Score a set of samples (``genbench eval`` and the end of every run): features once, then every
sample-quality metric from them, in the domain and the self-supervised lens, and the copy checks in pixels."""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

from genbench.data.splits import REFERENCE, TRAIN, split_images, split_labels
from genbench.errors import ConfigError, InputError
from genbench.evaluate.settings import (
    DISTRIBUTION_KEYS,
    METRIC_GROUPS,
    PIXEL_GROUPS,
    RECONSTRUCTION_KEYS,
    SMALL_N_WARNING,
    SSL_KEYS,
    EvalConfig,
    EvalResult,
    MetricValue,
    ProgressFn,
    _set_null,
    _Timer,
)
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
from genbench.metrics.prdc import (
    KEY_PRECISION,
    KEY_RECALL,
    precision_recall_density_coverage,
)
from genbench.metrics.reconstruction import (
    reconstruction_metrics,
)
from genbench.metrics.throughput import (
    KEY_SAMPLE_IMAGES_PER_S,
    KEY_SAMPLE_IMAGES_PER_S_CI_HIGH,
    KEY_SAMPLE_IMAGES_PER_S_CI_LOW,
)
from genbench.protocol import IMAGE_SHAPE
from genbench.stats import MIN_MEDIAN_CI_N, median_ci


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
