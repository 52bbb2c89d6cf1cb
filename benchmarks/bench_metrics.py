"""Evaluation hot paths (pytest-benchmark).

Run: ``pytest benchmarks/bench_metrics.py --benchmark-enable`` (add
``-k end_to_end`` for the comparison alone). Figures land in ``extra_info``:

- ``test_feature_extraction``: images/s of the domain classifier on 10,000 images;
- ``test_fid_from_features``: FID of 10,000 x 128 features against cached statistics;
- ``test_prdc_10k``: precision/recall/density/coverage, 10,000 vs 10,000;
- ``test_end_to_end_vs_torch_fidelity``: ``genbench eval`` on a folder of 10,000 PNGs
  (every metric, cached test-split reference) beside ``torch_fidelity.calculate_metrics``
  on the same folder against the test split written as 10,000 PNGs, with the same
  extractor and the metrics it offers (FID, KID, IS, precision/recall at k=5).
  ``extra_info["speedup"]`` is torch-fidelity's time over genbench's; the values
  must agree (FID/KID/IS within 1e-4 relative).

The 20,000 PNGs are written once per session into pytest's temp folder.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import genbench.features as gf
from genbench.cli_eval import eval_command
from genbench.data import load_split
from genbench.metrics.fid import fid_from_features
from genbench.metrics.prdc import precision_recall_density_coverage

N = 10_000
DATA_ROOT = os.environ.get("GENBENCH_DATA")


@pytest.fixture(scope="module")
def mnist():
    return load_split("mnist", "train", DATA_ROOT).images, load_split("mnist", "test", DATA_ROOT).images


@pytest.fixture(scope="module")
def extractor():
    return gf.load_extractor("genbench", "mnist")


@pytest.fixture(scope="module")
def reference(extractor):
    return gf.load_reference("mnist", extractor, data_root=DATA_ROOT)


def test_feature_extraction(benchmark, mnist, extractor):
    images = mnist[0][:N]
    extractor.extract(images[:500])  # warm-up
    benchmark.pedantic(lambda: extractor.extract(images), rounds=3, iterations=1)
    benchmark.extra_info["images_per_s"] = N / benchmark.stats.stats.median


def test_fid_from_features(benchmark, mnist, extractor, reference):
    features = extractor.extract(mnist[0][:N]).features
    assert features.shape == (N, 128)
    fid = benchmark.pedantic(lambda: fid_from_features(features, reference.mu, reference.sigma), rounds=5, iterations=1)
    benchmark.extra_info["fid"] = fid


def test_prdc_10k(benchmark, mnist, extractor, reference):
    features = extractor.extract(mnist[0][:N]).features
    out = benchmark.pedantic(
        lambda: precision_recall_density_coverage(features, reference.features, reference.radii[5], k=5),
        rounds=1, iterations=1,
    )
    benchmark.extra_info.update(out)


def _write_pngs(folder, images: torch.Tensor) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images[:, 0].numpy()):
        Image.fromarray(a).save(folder / f"{i:05d}.png")


@pytest.fixture(scope="module")
def png_folders(tmp_path_factory, mnist):
    base = tmp_path_factory.getbasetemp() / "bench_metrics_pngs"
    samples, test = base / "samples", base / "test"
    if not (base / "done").exists():
        # "Generated" samples: training images, lightly corrupted so every metric has work to do.
        rng = np.random.default_rng(0)
        noisy = mnist[0][:N].numpy().astype(np.int16) + rng.integers(-20, 21, size=(N, 1, 28, 28))
        _write_pngs(samples, torch.from_numpy(np.clip(noisy, 0, 255).astype(np.uint8)))
        _write_pngs(test, mnist[1])
        (base / "done").write_text("ok")
    return samples, test


def test_end_to_end_vs_torch_fidelity(benchmark, png_folders, reference, tmp_path):
    import torch_fidelity

    samples, test = png_folders
    out = tmp_path / "eval.json"
    args = ["--samples", str(samples), "--json", str(out), "--device", "cpu"]
    if DATA_ROOT:
        args += ["--data-root", DATA_ROOT]

    def genbench_eval():
        result = CliRunner().invoke(eval_command, args, catch_exceptions=False)
        assert result.exit_code == 0, result.stderr

    benchmark.pedantic(genbench_eval, rounds=1, iterations=1)
    genbench_seconds = benchmark.stats.stats.median
    ours = json.loads(out.read_text())

    start = time.perf_counter()
    theirs = torch_fidelity.calculate_metrics(
        input1=str(samples), input2=str(test), fid=True, isc=True, kid=True, prc=True, prc_neighborhood=5,
        feature_extractor="genbench-mnist", cuda=False, verbose=False, cache=False,
    )
    fidelity_seconds = time.perf_counter() - start

    for key, their_key in (("fid", "frechet_inception_distance"), ("kid", "kernel_inception_distance_mean"),
                           ("is", "inception_score_mean")):
        assert ours[key] == pytest.approx(theirs[their_key], rel=1e-4), key
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=2e-4)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=2e-4)
    benchmark.extra_info.update({
        "genbench_seconds": genbench_seconds,
        "torch_fidelity_seconds": fidelity_seconds,
        "speedup": fidelity_seconds / genbench_seconds,
        "genbench_eval_images_per_s": ours["eval_images_per_s"],
        "genbench_feature_images_per_s": ours["feature_images_per_s"],
        "fid": ours["fid"],
    })
