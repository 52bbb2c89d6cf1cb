"""Score a trained generator: draw its samples, call the methods its capabilities declare
(likelihood, reconstruction, completion) and score the samples."""

from __future__ import annotations

import os
import time

import torch
from torch import Tensor

from genbench.data.datasets import load_split
from genbench.evaluate.samples import _score_samples, _small_n_warning, sample_speed
from genbench.evaluate.settings import (
    COMPLETION_KEYS,
    LIKELIHOOD_KEYS,
    RECONSTRUCTION_KEYS,
    EvalConfig,
    EvalResult,
    MetricValue,
    ProgressFn,
    _set_null,
    _Timer,
)
from genbench.likelihood_contract import (
    PRECHECK_IMAGES,
    call_log_likelihood,
    check_log_likelihood,
    implausible_bpd,
    precheck_likelihood,
)
from genbench.metrics.likelihood import (
    KEY_NLL_BPD,
    KEY_NLL_BPD_STDERR,
    KEY_NLL_IS_BOUND,
    nll_summary,
)
from genbench.metrics.reconstruction import (
    completion_metrics,
    reconstruction_metrics,
)
from genbench.process import seed_everything
from genbench.protocol import IMAGE_SHAPE, Capability, Generator, quantize
from genbench.sample_contract import check_samples


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _model_batch_size(model: Generator) -> int:
    return int(getattr(getattr(model, "config", None), "batch_size", 0) or 100)


@torch.no_grad()
def draw_samples(
    model: Generator, n: int, seed: int, device: torch.device | str, *,
    batch_size: int = EvalConfig.sample_batch_size, progress: ProgressFn | None = None,
    rates: list[float] | None = None,
) -> Tensor:
    """``n`` quantized samples ``[n,1,28,28] uint8``, drawn as :func:`evaluate_model` draws them.

    The model is called with ``batch_size`` images at a time (all ``n`` in one call when it
    declares ``sample_in_one_call``) and a ``torch.Generator`` seeded with ``seed``, so the same
    arguments give the samples a run scores. ``rates`` collects each call's images/s. Each call's
    output is checked against the sample contract first
    (:func:`genbench.sample_contract.check_samples`): out of range is an error, not a clamp.
    """
    device = torch.device(device)
    batch = n if model.sample_in_one_call else batch_size
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
def log_likelihoods(
    model: Generator, images: Tensor, seed: int, device: torch.device | str, *, progress: ProgressFn | None = None,
) -> Tensor:
    """``[N]`` float64 log-likelihoods (nats) of ``images``, as :func:`evaluate_model` computes them.

    The global RNGs are seeded with ``seed`` first and the model gets a ``torch.Generator``
    seeded with it (:func:`genbench.likelihood_contract.call_log_likelihood`), so a bound
    drawn with noise gives the same numbers whatever the process did before. Each batch is
    checked against the likelihood contract; non-finite values pass the check here: they
    make ``nll_bpd`` null with their count.
    """
    device = torch.device(device)
    _seed_model_calls(seed)
    out = []
    generator = torch.Generator(device).manual_seed(seed)
    for start, stop in _batches(len(images), _model_batch_size(model)):
        ll = call_log_likelihood(model, images[start:stop].to(device), generator)
        check_log_likelihood(ll, stop - start, type(model).__name__, finite=False)
        out.append(ll.detach().double().cpu())
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

    ``reconstruct``, and a ``log_likelihood`` without a ``generator`` parameter, draw from
    them, so without this their numbers would depend on what the process did before:
    e.g. whether it had already built (and randomly initialised) a feature extractor for
    an earlier run.
    """
    seed_everything(seed)


def evaluate_model(
    model: Generator,
    *,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    seed: int,
    device: torch.device,
    features: str = "genbench",
    progress: ProgressFn | None = None,
    inception_weights: str | os.PathLike | None = None,
    config: EvalConfig = EvalConfig(),
) -> EvalResult:
    """Sample ``config.n_samples`` images and compute every metric the model's capabilities allow.

    ``config.nll_images``: first test images scored for likelihood (None: all 10,000);
    ``config.recon_images``: first test images reconstructed (a suite's ``[eval]`` table sets
    these three, ``EvalConfig``). ``progress(description, completed, total)`` is called as
    phases advance.
    """
    n_samples, nll_images, recon_images = config.n_samples, config.nll_images, config.recon_images
    device = torch.device(device)
    model.eval()
    metrics: dict[str, MetricValue] = {}
    reasons: dict[str, str] = {}
    timings: dict[str, float] = {}
    model_name = getattr(model, "name", "") or type(model).__name__

    needs_test = any(model.has(c) for c in (Capability.LOG_LIKELIHOOD, Capability.RECONSTRUCT, Capability.COMPLETE))
    test = load_split(dataset, "test", data_root).images if needs_test else None
    if model.has(Capability.LOG_LIKELIHOOD):
        # The door's check again, on the trained model: a density that training pushed above the 8-bit
        # likelihood's 0 fails here in a second, before sampling and the sample metrics take their minutes.
        precheck_likelihood(model, test[:PRECHECK_IMAGES], seed, finite=False)

    warnings = _small_n_warning(n_samples)
    rates: list[float] = []
    with _Timer(timings, "sampling"):
        samples = draw_samples(model, n_samples, seed, device, batch_size=config.sample_batch_size,
                               progress=progress, rates=rates)
    metrics.update(sample_speed(rates, reasons))

    errors: list[str] = []
    lens_features: dict[str, Tensor] = {}
    extractor_info = _score_samples(
        samples, dataset=dataset, data_root=data_root, features=features, device=device, seed=seed, config=config,
        inception_weights=inception_weights, progress=progress, metrics=metrics, reasons=reasons, timings=timings,
        errors=errors, features_out=lens_features,
    )

    if model.has(Capability.LOG_LIKELIHOOD):
        images = test if nll_images is None else test[:nll_images]
        with _Timer(timings, "likelihood"):
            ll = log_likelihoods(model, images, seed, device, progress=progress)
        bad = int((~torch.isfinite(ll)).sum())
        if bad:
            _set_null(metrics, reasons, (KEY_NLL_BPD, KEY_NLL_BPD_STDERR),
                      f"log_likelihood returned {bad} non-finite values on {len(images)} test images")
        else:
            summary = nll_summary(ll)
            metrics.update(summary)
            unit_warning = implausible_bpd(summary[KEY_NLL_BPD])
            if unit_warning:
                warnings.append(unit_warning)
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

    return EvalResult(metrics, reasons, samples, timings, extractor_info, warnings, errors, lens_features)
