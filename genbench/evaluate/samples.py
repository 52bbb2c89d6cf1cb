"""Score a set of samples (``genbench eval`` and the end of every run): features once, then every
registered metric group (:func:`genbench.metrics.metric_groups`) from them, from the self-supervised
lens and from the pixels."""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch import Tensor

from genbench.data.splits import REFERENCE, TRAIN, split_images, split_labels
from genbench.errors import ConfigError, InputError
from genbench.evaluate.settings import (
    LENS_NEEDS,
    PIXEL_GROUPS,
    RECONSTRUCTION_KEYS,
    SMALL_N_WARNING,
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
from genbench.features.user_lens import lens_extractor, lenses
from genbench.metrics import metric_groups
from genbench.metrics.eval_throughput import KEY_FEATURE_IMAGES_PER_S, KEY_N_SAMPLES
from genbench.metrics.group import NEEDS, UNMET_REASONS, MetricGroup, Null
from genbench.metrics.inputs import LensView, MetricInputs
from genbench.metrics.lens_metrics import lens_key, per_lens_groups
from genbench.metrics.reconstruction import (
    reconstruction_metrics,
)
from genbench.metrics.throughput import (
    KEY_SAMPLE_IMAGES_PER_S,
    KEY_SAMPLE_IMAGES_PER_S_CI_HIGH,
    KEY_SAMPLE_IMAGES_PER_S_CI_LOW,
)
from genbench.metrics.user_metric import user_metrics
from genbench.protocol import IMAGE_SHAPE
from genbench.stats import MIN_MEDIAN_CI_N, median_ci


def requested_groups(names: Iterable[str]) -> set[str]:
    """The groups ``names`` asks for and every group they imply."""
    registry = metric_groups()
    unknown = sorted(set(names) - set(registry))
    if unknown:
        raise ConfigError(f"unknown metric group(s) {', '.join(unknown)}; valid: {', '.join(registry)}")
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(registry[name].implies)
    return wanted


def compute_metric_groups(
    inputs: MetricInputs,
    requested: Iterable[str],
    available: Iterable[str],
    groups: Iterable[MetricGroup] | None = None,
    *,
    also: Iterable[str] = (),
) -> tuple[dict[str, MetricValue], dict[str, str]]:
    """Each of ``groups`` (default: every registered one, in order) into ``(metrics, null_reasons)``.

    A group not in ``requested`` (nor implied by one there) nor in ``also`` (user metrics, computed
    whatever ``--metrics`` picks) is null, "not requested"; a group with
    a need outside ``available`` (names of :data:`genbench.metrics.group.NEEDS`) is null with that
    need's reason; the others are computed from ``inputs``, which also collects their values.
    """
    wanted, available = requested_groups(requested), set(available)
    not_requested = f"not requested (metrics: {', '.join(sorted(wanted))})"
    wanted |= requested_groups(also)
    metrics: dict[str, MetricValue] = {}
    reasons: dict[str, str] = {}
    for group in metric_groups().values() if groups is None else groups:
        unmet = [need for need in NEEDS if need in group.needs and need not in available]
        if group.name not in wanted:
            _set_null(metrics, reasons, group.keys, not_requested)
            continue
        if unmet:
            if unmet[0] not in UNMET_REASONS:  # a caller that offers a group it cannot feed: a bug, not input
                raise RuntimeError(f"metric group {group.name!r} needs {unmet[0]}, which this evaluation lacks")
            _set_null(metrics, reasons, group.keys, UNMET_REASONS[unmet[0]])
            continue
        values = group.compute(inputs)
        if set(values) != set(group.keys):
            raise RuntimeError(f"metric group {group.name!r} returned keys {sorted(values)}, "
                               f"not its registered {list(group.keys)}")
        for key in group.keys:
            value = values[key]
            if isinstance(value, Null):
                _set_null(metrics, reasons, (key,), value.reason)
            else:
                metrics[key] = value
        inputs.values.update((k, metrics[k]) for k in group.keys)
    return metrics, reasons


def _lens_groups() -> list[MetricGroup]:
    return [g for g in metric_groups().values() if g.needs <= LENS_NEEDS]


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
    """Every metric group that needs only one lens's features and logits, from features extracted once,
    against ``reference``.

    ``reference_labels [M]`` (the true classes of the reference images, row by row)
    are needed by the class metrics, which are None without them.
    """
    n = len(generated.features)
    if n < 2:
        raise InputError(f"sample-quality metrics need at least 2 samples, got {n}")
    inputs = MetricInputs(samples=None, config=config, seed=seed, timings=timings,
                          lens=LensView(generated.features, generated.logits, reference),
                          reference_labels=reference_labels)
    available = {"features", "logits"} | ({"domain_classifier"} if domain_classifier else set()) | (
        {"reference_labels"} if reference_labels is not None else set())
    return compute_metric_groups(inputs, config.metric_groups, available, _lens_groups())


def _reference(
    dataset: str, extractor: Extractor, data_root: str | os.PathLike | None, config: EvalConfig,
    progress: ProgressFn | None, label: str,
) -> ReferenceStats:
    """``extractor``'s cached statistics of ``dataset``'s reference images, progress reported under ``label``."""
    return load_reference(
        dataset, extractor, split=REFERENCE, data_root=data_root, batch_size=config.feature_batch_size,
        ks=(config.k_nearest,), progress=(lambda d, c, t: progress(label, c, t)) if progress else None,
    )


def _ssl_loader(
    samples: Tensor, dataset: str, data_root: str | os.PathLike | None, device: torch.device | str,
    config: EvalConfig, timings: dict[str, float], progress: ProgressFn | None, info: dict[str, str],
):
    """A loader of the dataset's self-supervised lens's view of ``samples``, which records the lens in ``info``."""

    def load() -> LensView:
        from genbench.features.ssl import load_ssl_extractor

        with _Timer(timings, "ssl_load_extractor"):
            extractor = load_ssl_extractor(dataset, device)
        with _Timer(timings, "ssl_reference"):
            reference = _reference(dataset, extractor, data_root, config, progress, "SSL reference statistics")
        with _Timer(timings, "ssl_features"):
            feats = extractor.extract(samples, config.feature_batch_size).features
        info.update(ssl_name=extractor.name, ssl_sha256=extractor.sha256)
        return LensView(feats, None, reference)

    return load


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
    """The requested pixel groups' metrics (``copy_fraction``, ``copy_ct``/``copy_ct_p``) of ``samples
    [N,1,28,28] uint8`` against ``dataset``'s training split; why a value is None goes to ``reasons``."""
    inputs = MetricInputs(samples=samples, config=config, seed=0, timings=timings, dataset=dataset,
                          data_root=data_root, progress=progress,
                          load_train=lambda: split_images(dataset, TRAIN, data_root))
    groups = [metric_groups()[g] for g in PIXEL_GROUPS if g in config.metric_groups]
    out, why = compute_metric_groups(inputs, {g.name for g in groups}, {"pixels", "train"}, groups)
    if reasons is not None:
        reasons.update(why)
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
) -> tuple[dict[str, MetricValue], dict[str, str]]:
    """``fid_ssl``, ``precision_ssl``, ``recall_ssl`` of ``samples [N,1,28,28] uint8`` in ``dataset``'s SSL lens,
    and the lens's identity (``ssl_name``, ``ssl_sha256``)."""
    timings = {} if timings is None else timings
    info: dict[str, str] = {}
    inputs = MetricInputs(samples=samples, config=config, seed=0, timings=timings,
                          load_ssl_lens=_ssl_loader(samples, dataset, data_root, device, config, timings, progress,
                                                    info))
    out, _ = compute_metric_groups(inputs, {"ssl"}, {"ssl_lens"}, [metric_groups()["ssl"]])
    return out, info


def lens_metrics(
    samples: Tensor,
    extractor: Extractor,
    lens_name: str,
    *,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
    timings: dict[str, float] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, MetricValue], dict[str, str], Tensor]:
    """``(metrics, null_reasons, features [N,d])``: the groups computed in every lens
    (:func:`genbench.metrics.lens_metrics.per_lens_groups`) in ``extractor``'s features of ``samples
    [N,1,28,28] uint8``, under keys suffixed ``_<lens_name>``, against its cached reference statistics."""
    timings = {} if timings is None else timings
    prefix = f"lens_{lens_name}_"
    with _Timer(timings, prefix + "reference"):
        reference = _reference(dataset, extractor, data_root, config, progress, f"{lens_name} reference statistics")
    with _Timer(timings, prefix + "features"):
        feats = extractor.extract(samples, config.feature_batch_size).features
    own: dict[str, float] = {}
    inputs = MetricInputs(samples=samples, config=config, seed=seed, timings=own,
                          lens=LensView(feats, None, reference))
    values, why = compute_metric_groups(inputs, config.metric_groups, {"features"}, per_lens_groups())
    timings.update({prefix + k: v for k, v in own.items()})
    return ({lens_key(k, lens_name): v for k, v in values.items()},
            {lens_key(k, lens_name): v for k, v in why.items()}, feats)


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
    errors: list[str],
    features_out: dict[str, Tensor],
) -> dict[str, str]:
    """Score ``samples`` into ``metrics``/``reasons``/``timings`` by the requested metric groups and every
    user metric (:mod:`genbench.metrics.user_metric`), whose failures go to ``errors``, then in every
    user lens (:mod:`genbench.features.user_lens`); each lens's features of the samples go to
    ``features_out`` by extractor name; return the extractors' identities."""
    with _Timer(timings, "load_extractor"):
        extractor = load_extractor(features, dataset, device, inception_weights)
    with _Timer(timings, "reference"):
        reference = _reference(dataset, extractor, data_root, config, progress, "reference statistics")
    with _Timer(timings, "features"):
        generated = extractor.extract(samples, config.feature_batch_size, progress)
    if len(samples) < 2:
        raise InputError(f"sample-quality metrics need at least 2 samples, got {len(samples)}")
    info = dict(extractor.info)
    inputs = MetricInputs(
        samples=samples, config=config, seed=seed, timings=timings, dataset=dataset, data_root=data_root,
        progress=progress, lens=LensView(generated.features, generated.logits, reference),
        reference_labels=split_labels(dataset, REFERENCE, data_root),
        load_ssl_lens=_ssl_loader(samples, dataset, data_root, device, config, timings, progress, info),
        load_train=lambda: split_images(dataset, TRAIN, data_root),
        load_reference_images=lambda: split_images(dataset, REFERENCE, data_root),
    )
    available = set(NEEDS) - ({"domain_classifier"} if not extractor.is_domain_classifier else set())
    values, why = compute_metric_groups(inputs, config.metric_groups, available, also=user_metrics())
    metrics.update(values)
    reasons.update(why)
    errors.extend(inputs.errors)
    features_out[extractor.name] = generated.features
    if inputs.loaded("ssl_lens"):
        features_out[info["ssl_name"]] = inputs.ssl_lens.features
    for lens in lenses().values():
        with _Timer(timings, f"lens_{lens.name}_load"):
            lens_extractor_ = lens_extractor(lens, device)
        values, why, feats = lens_metrics(samples, lens_extractor_, lens.name, dataset=dataset, data_root=data_root,
                                          seed=seed, config=config, timings=timings, progress=progress)
        metrics.update(values)
        reasons.update(why)
        features_out[lens_extractor_.name] = feats
        info[f"lens_{lens.name}_sha256"] = lens.sha256
        info[f"lens_{lens.name}_features"] = f"{lens.dim} x {lens.dtype}"
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
    errors: list[str] = []
    lens_features: dict[str, Tensor] = {}
    extractor_info = _score_samples(
        samples, dataset=dataset, data_root=data_root, features=features, device=device, seed=seed, config=config,
        inception_weights=inception_weights, progress=progress, metrics=metrics, reasons=reasons, timings=timings,
        errors=errors, features_out=lens_features,
    )
    if reference_u8 is not None:
        reference = _check_images(reference_u8, "reference images").cpu()
        if reference.shape != samples.shape:
            raise InputError(f"{len(samples)} samples but {len(reference)} paired reference images")
        with _Timer(timings, "reconstruction"):
            metrics.update(reconstruction_metrics(reference, samples))
    else:
        _set_null(metrics, reasons, RECONSTRUCTION_KEYS, "no paired reference images (--reference) given")
    return EvalResult(metrics, reasons, samples, timings, extractor_info, _small_n_warning(len(samples)), errors,
                      lens_features)
