"""``genbench eval`` (score a folder or array of images) and ``genbench features train``.

Both are thin shells over :func:`genbench.evaluate.evaluate_samples`,
:func:`genbench.files.images.load_images` and :func:`genbench.features.train_extractor`.
Errors in the input are one line ``Error: ...`` on stderr with exit code 2. The
input folder is only read: results are printed, and written as JSON when ``--json FILE``
asks (``--json -`` prints the JSON to stdout and the table to stderr).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import click
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from genbench.cli.options import data_root_option, device_option, json_option, no_progress_option, seed_option
from genbench.data.datasets import dataset_names
from genbench.device import resolve_device
from genbench.errors import GenbenchError
from genbench.evaluate import METRIC_GROUPS
from genbench.kv import split_items
from genbench.metrics.eval_throughput import KEY_EVAL_IMAGES_PER_S
from genbench.term import plain

DATASET_CHOICES = dataset_names()
def _parse_groups(value: str) -> frozenset[str]:
    groups = frozenset(split_items(value))
    unknown = sorted(groups - set(METRIC_GROUPS))
    if unknown or not groups:
        raise click.BadParameter(f"{', '.join(unknown) or 'nothing given'}; choose from {', '.join(METRIC_GROUPS)}")
    return groups


def _load_plugins(specs: tuple[str, ...], option: str, load) -> tuple[str, ...]:
    """Import and register each ``option FILE.py:NAME`` now, so that a wrong one is refused before any work."""
    for spec in specs:
        try:
            load(spec)
        except GenbenchError as exc:
            message = " ".join(plain(str(exc)).split())
            raise click.BadParameter(message.removeprefix(f"{option}: ").removeprefix(f"{option} ")) from None
    return specs


def _load_metrics(specs: tuple[str, ...]) -> tuple[str, ...]:
    from genbench.metrics.user_metric import load_user_metric

    return _load_plugins(specs, "--metric", load_user_metric)


def _load_lenses(specs: tuple[str, ...]) -> tuple[str, ...]:
    from genbench.features.user_lens import load_lens

    return _load_plugins(specs, "--lens", load_lens)


def _save_features(folder: Path, features: dict[str, torch.Tensor]) -> list[Path]:
    """Each lens's ``[n,d]`` float32 features of the samples as ``folder/<extractor>.npy``."""
    import io

    import numpy as np

    from genbench.files.atomic import atomic_write_bytes

    written = []
    for name, feats in features.items():
        buffer = io.BytesIO()
        np.save(buffer, feats.numpy())
        path = folder / f"{name}.npy"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as exc:
            raise GenbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written


def _shown(value: object) -> str:
    """Untrusted text (file names, paths) for rich markup: control characters escaped, ``[...]`` kept literal."""
    return escape(plain(value))


def _fail(exc: GenbenchError) -> None:
    click.echo(f"Error: {' '.join(plain(str(exc)).split())}", err=True)
    click.get_current_context().exit(2)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metric_table(metrics: dict[str, Any], null_reasons: dict[str, str], title: str) -> Table:
    from genbench.metrics import metric_specs

    specs = metric_specs()
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("", justify="center")
    table.add_column("unit / note")
    for key, value in metrics.items():
        spec = specs.get(key)
        arrow = spec.arrow if spec else ""
        unit = spec.unit if spec else ""
        if value is None:
            table.add_row(key, "-", arrow, null_reasons.get(key, ""))
        elif isinstance(value, bool):
            table.add_row(key, str(value).lower(), arrow, unit)
        elif isinstance(value, int):
            table.add_row(key, str(value), arrow, unit)
        else:
            table.add_row(key, f"{value:.5g}", arrow, unit)
    return table


@click.command("eval")
@click.option("--samples", "samples_path", required=True, type=click.Path(path_type=Path),
              help="Folder of PNG/JPEG/BMP images and/or .npy/.npz arrays (N,H,W)|(N,1,H,W), or one such file.")
@click.option("--dataset", type=click.Choice(DATASET_CHOICES), default="mnist", show_default=True,
              help="Dataset whose test split is the reference (and whose classifier gives the features).")
@click.option("--reference", "reference_path", type=click.Path(path_type=Path), default=None,
              help="Images paired with the samples by file name (e.g. originals of reconstructions): "
                   "adds psnr/mse/ssim.")
@click.option("--features", type=click.Choice(["genbench", "inception"]), default="genbench", show_default=True,
              help="Feature space: the dataset's domain classifier, or torch-fidelity's InceptionV3 (weights needed).")
@click.option("--inception-weights", type=click.Path(path_type=Path), default=None,
              help="torch-fidelity's InceptionV3 weights file (weights-inception-2015-12-05-6726825d.pth), "
                   "for offline machines.")
@click.option("--n", "n_max", type=click.IntRange(min=2), default=None,
              help="Score only the first N images (in file-name order); without --reference, later files are "
                   "not read and arrays only as far as needed.")
@click.option("--metrics", "metric_groups", default=",".join(METRIC_GROUPS), show_default="all of them",
              callback=lambda ctx, param, value: _parse_groups(value),
              help="Sample-quality metric groups to compute, comma-separated (the others are null): "
                   + "; ".join(f"{name} ({', '.join(keys)})" for name, keys in METRIC_GROUPS.items()) + ".")
@click.option("--metric", "metric_files", multiple=True, metavar="FILE.py:FUNCTION|NAME",
              callback=lambda ctx, param, value: _load_metrics(value),
              help="Also compute your own metric: FUNCTION(samples) -> float of uint8 [n,1,28,28] samples, "
                   "optionally taking the reference images as 'reference'; NAME: an installed package's "
                   "entry point in the group genbench.metrics (repeatable).")
@click.option("--lens", "lens_files", multiple=True, metavar="FILE.py:CLASS|NAME",
              callback=lambda ctx, param, value: _load_lenses(value),
              help="Also compute the feature-based metrics in your own lens: an nn.Module class with a 'name', "
                   "built with no arguments, mapping [n,1,28,28] floats in [0,1] to [n,d]; keys get the suffix "
                   "_<its name>; NAME: an installed package's entry point in the group genbench.lenses (repeatable).")
@click.option("--save-features", "features_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Also write each lens's features of the samples to DIR/EXTRACTOR.npy "
                                  "([n,d] float32).")
@json_option()
@click.option("--skip-bad", is_flag=True,
              help="Leave out unreadable or invalid files (and unmatched pairs) with a warning.")
@device_option("Where to compute the features and metrics: auto picks cuda when torch sees a GPU, else cpu.")
@data_root_option()
@seed_option("Seed of the FID bootstrap.")
def eval_command(samples_path, dataset, reference_path, features, inception_weights, n_max, metric_groups,
                 metric_files, lens_files, features_dir, json_path, skip_bad, device, data_root, seed) -> None:
    """Score generated images against a dataset's test split (FID, KID, IS, precision/recall, density/coverage).

    Images become 28x28 gray the way genbench's own samples are (see genbench.files.images):
    colour -> ITU-R 601 luma, 16-bit -> scaled to 8-bit, float arrays -> round(x * 255),
    other sizes -> bilinear resize (a 32x32 set is shrunk, not cropped); each conversion
    is named in a warning. The input folder is never written to. Only regular files are
    read, each within 30 s and a size limit (128 MiB for an image, 2 GiB for an array
    file and for an array's declared data).
    """
    try:
        errors = _eval(samples_path, dataset, reference_path, features, inception_weights, n_max, metric_groups,
                       json_path, skip_bad, device, data_root, seed, features_dir)
    except GenbenchError as exc:
        _fail(exc)
        return
    if errors:  # written with every other metric; the exit status still tells a script that one failed
        for message in errors:
            click.echo(f"Error: {plain(message)}", err=True)
        click.get_current_context().exit(2)


def _eval(samples_path, dataset, reference_path, features, inception_weights, n_max, metric_groups, json_path,
          skip_bad, device, data_root, seed, features_dir=None) -> list[str]:
    """Score and write; return the one-line errors of user metrics that failed."""
    import genbench
    from genbench.allocator import keep_freed_memory
    from genbench.evaluate import EvalConfig, evaluate_samples
    from genbench.files.atomic import atomic_write_json
    from genbench.files.images import load_images
    from genbench.files.pairs import match_pairs

    keep_freed_memory()
    to_stdout = json_path == "-"
    console = Console(stderr=to_stdout)
    err = Console(stderr=True)
    start = time.perf_counter()
    dev = resolve_device(device)

    # With --reference, pairs match by name across the whole folders: read them whole.
    loaded = load_images(samples_path, skip_bad=skip_bad, max_images=n_max if reference_path is None else None)
    messages = list(loaded.warnings)
    samples = loaded.images
    reference = None
    if reference_path is not None:
        ref_loaded = load_images(reference_path, skip_bad=skip_bad, min_images=1, what="reference")
        messages += ref_loaded.warnings
        samples, reference, pair_warnings = match_pairs(loaded, ref_loaded, skip_bad=skip_bad)
        messages += pair_warnings
    if n_max is not None and len(samples) > n_max:
        samples = samples[:n_max]
        reference = reference[:n_max] if reference is not None else None
    read_seconds = time.perf_counter() - start
    for msg in messages:
        err.print(f"[yellow]Warning:[/yellow] {_shown(msg)}", highlight=False, soft_wrap=True)

    result = evaluate_samples(
        samples, dataset=dataset, data_root=data_root, features=features, device=dev, seed=seed,
        reference_u8=reference, inception_weights=inception_weights,
        config=EvalConfig(metric_groups=metric_groups),
    )
    for msg in result.warnings:
        err.print(f"[yellow]Warning:[/yellow] {_shown(msg)}", highlight=False, soft_wrap=True)
    messages += result.warnings
    total = time.perf_counter() - start
    metrics = {k: _finite(v) for k, v in result.metrics.items()}
    reasons = dict(result.null_reasons)
    for k, v in result.metrics.items():
        if v is not None and metrics[k] is None:
            reasons[k] = f"not finite ({v})"
    metrics[KEY_EVAL_IMAGES_PER_S] = len(samples) / total

    record = {
        **metrics,
        "null_reasons": reasons,
        "extractor": result.extractor,
        "dataset": dataset,
        "features": features,
        "samples": str(samples_path),
        "reference": str(reference_path) if reference_path is not None else None,
        "skipped": [{"file": f, "reason": r} for f, r in loaded.skipped],
        "warnings": messages,
        "timings": {
            "read_seconds": round(read_seconds, 4),
            **{f"{k}_seconds": round(v, 4) for k, v in result.timings.items()},
            "total_seconds": round(total, 4),
        },
        "seed": seed,
        "device": str(dev),
        "genbench_version": genbench.__version__,
        "torch_version": str(torch.__version__),
    }
    if features_dir is not None:
        for path in _save_features(features_dir, result.features):
            err.print(f"wrote {_shown(str(path))}", highlight=False)
    title = f"genbench eval: {_shown(str(samples_path))} vs {dataset} test split"
    console.print(_metric_table(metrics, reasons, title))
    console.print(f"extractor {result.extractor['name']} sha256 {result.extractor['sha256'][:16]}...", highlight=False)
    if "ssl_name" in result.extractor:
        console.print(f"SSL lens {result.extractor['ssl_name']} sha256 {result.extractor['ssl_sha256'][:16]}...",
                      highlight=False)
    if to_stdout:
        click.echo(json.dumps(record, indent=2, allow_nan=False))
        return result.errors
    if json_path is None:  # as every command: JSON only when --json asks for it
        return result.errors
    try:
        atomic_write_json(json_path, record)
    except OSError as exc:
        raise GenbenchError(f"cannot write {json_path}: {exc.strerror or exc}") from None
    console.print(f"wrote {_shown(str(json_path))}", highlight=False)
    return result.errors


@click.group("features")
def features_group() -> None:
    """Domain feature extractors (the classifiers behind FID/KID/IS, the SSL encoders behind fid_ssl)."""


@features_group.command("train")
@click.option("--dataset", type=click.Choice(DATASET_CHOICES), default="mnist", show_default=True,
              help="Dataset whose train split the extractor learns (and whose test split scores it).")
@click.option("--kind", type=click.Choice(["classifier", "ssl"]), default="classifier", show_default=True,
              help="classifier: the domain classifier (fid, kid, is, prdc); ssl: the SimCLR encoder (fid_ssl).")
@data_root_option()
@click.option("--weights", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Weights file to write (default ./genbench-DATASET.pt, ./genbench-ssl-DATASET.pt; the package's "
                   "own are genbench/features/weights/DATASET.pt, ssl-DATASET.pt).")
@seed_option("Seed of the initialisation and of the data order.")
@device_option("Where to train: auto picks cuda when torch sees a GPU, else cpu.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the recipe's number of epochs.")
@click.option("--train-images", type=click.IntRange(min=1), default=None,
              help="Train on the first N train images only (quick checks; the shipped weights use all 60,000).")
@no_progress_option()
def train_command(dataset, kind, data_root, out, seed, device, epochs, train_images, no_progress) -> None:
    """Train a domain feature extractor deterministically on the train split; print its test accuracy and SHA-256.

    For ``--kind ssl`` the accuracy is the linear probe's (logistic regression on frozen features).
    """
    import dataclasses

    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from genbench.features import RECIPES, train_extractor
    from genbench.features.ssl import SSL_RECIPES, train_ssl_extractor

    try:
        config = (SSL_RECIPES if kind == "ssl" else RECIPES)[dataset]
        if epochs is not None:
            config = dataclasses.replace(config, epochs=epochs)
        if train_images is not None:
            config = dataclasses.replace(config, train_images=train_images)
        out = out or Path.cwd() / (f"genbench-ssl-{dataset}.pt" if kind == "ssl" else f"genbench-{dataset}.pt")
        what = "SSL encoder" if kind == "ssl" else "classifier"
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), disable=no_progress) as bar:
            task = bar.add_task(f"training {dataset} {what}", total=None)

            def progress(desc: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            train = train_ssl_extractor if kind == "ssl" else train_extractor
            trained = train(dataset, data_root, seed, resolve_device(device), config, progress)
        sha = trained.save(out)
    except GenbenchError as exc:
        _fail(exc)
        return
    if kind == "ssl":
        click.echo(f"linear-probe test accuracy {trained.meta['linear_probe_accuracy']:.4f}  "
                   f"train time {trained.meta['train_seconds']} s")
    else:
        click.echo(f"test accuracy {trained.meta['test_accuracy']:.4f}  train time {trained.meta['train_seconds']} s")
    click.echo(f"wrote {plain(str(out))}  sha256 {sha}")

