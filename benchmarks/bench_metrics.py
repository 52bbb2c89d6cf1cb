"""Evaluation hot paths (pytest-benchmark), and ``genbench eval`` against torch-fidelity on equal terms.

Run: ``pytest benchmarks/bench_metrics.py --benchmark-enable`` (add ``-k end_to_end``
for the comparison alone). Figures land in ``extra_info``:

- ``test_feature_extraction``: images/s of the domain classifier on 10,000 images;
- ``test_fid_from_features``: FID of 10,000 x 128 features against cached statistics;
- ``test_prdc_10k``: precision/recall/density/coverage, 10,000 vs 10,000;
- ``test_end_to_end_vs_torch_fidelity``: FID + IS + KID of the first ``N`` MNIST
  training images written as PNGs (``GENBENCH_BENCH_EVAL_N``, default 10,000), as a
  user runs each tool, each in a fresh process:

  - ``genbench eval --samples DIR --metrics fid,is,kid --device cpu``;
  - ``python -c "import genbench, torch_fidelity; torch_fidelity.calculate_metrics(
    input1=DIR, input2=TEST_DIR, input2_cache_name=..., fid=True, isc=True, kid=True,
    feature_extractor='genbench-mnist', cuda=False, cache=True)"`` with the test split
    written as PNGs.

  Both have cached reference statistics (one untimed run of each warms the caches and
  the page cache first). The two are run alternately ``GENBENCH_BENCH_REPEATS`` times
  (default 5), so that the load of a shared machine falls on both; the medians and
  ``speedup`` (torch-fidelity's median over genbench's) are reported, together with
  genbench eval's default (every metric) in the same rotation, and genbench eval's own
  timings (start-up, reading, features, each metric) with the floor of the work:
  start-up + reading + features. The values must agree:
  FID/KID/IS within 1e-4 relative (``tests/test_metrics_parity.py`` checks the same
  on a smaller folder in every test run).

The PNG folders are written once per session into pytest's temp folder.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import pytest
from PIL import Image

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.data.splits import REFERENCE, split_images
from genbench.metrics.fid import fid_from_features
from genbench.metrics.prdc import precision_recall_density_coverage

N = 10_000
EVAL_N = int(os.environ.get("GENBENCH_BENCH_EVAL_N", "10000"))
REPEATS = int(os.environ.get("GENBENCH_BENCH_REPEATS", "5"))
DATA_ROOT = os.environ.get("GENBENCH_DATA")

TORCH_FIDELITY = """
import json, sys
import genbench  # registers genbench-mnist with torch-fidelity
import torch_fidelity
m = torch_fidelity.calculate_metrics(
    input1=sys.argv[1], input2=sys.argv[2], input2_cache_name="genbench-bench-mnist-test-reference-png",
    fid=True, isc=True, kid=True, feature_extractor="genbench-mnist", cuda=False, cache=True, verbose=False)
print(json.dumps(m))
"""


@pytest.fixture(scope="module")
def mnist():
    # genbench eval's reference is the test split's reference part: torch-fidelity gets the same images.
    return load_split("mnist", "train", DATA_ROOT).images, split_images("mnist", REFERENCE, DATA_ROOT)


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


def _write_pngs(folder, images) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images[:, 0].numpy()):
        Image.fromarray(a).save(folder / f"{i:05d}.png")


@pytest.fixture(scope="module")
def png_folders(tmp_path_factory, mnist):
    base = tmp_path_factory.getbasetemp() / f"bench_metrics_pngs_{EVAL_N}"
    samples, test = base / "samples", base / "test-reference"
    if not (base / "done").exists():
        _write_pngs(samples, mnist[0][:EVAL_N])  # real training images as the "generated" samples
        _write_pngs(test, mnist[1])
        (base / "done").write_text("ok")
    return samples, test


def _timed(args: list[str], cwd) -> tuple[float, str]:
    env = dict(os.environ)
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    seconds = time.perf_counter() - start
    assert out.returncode == 0, out.stderr[-3000:]
    return seconds, out.stdout


def test_end_to_end_vs_torch_fidelity(benchmark, request, tmp_path):
    if benchmark.disabled:
        pytest.skip("minutes of fresh-process runs: only with --benchmark-enable")
    samples, test = request.getfixturevalue("png_folders")
    data_root = ["--data-root", DATA_ROOT] if DATA_ROOT else []
    genbench_cmd = [sys.executable, "-m", "genbench.cli", "eval", "--samples", str(samples), "--device", "cpu",
                    "--metrics", "fid,is,kid", "--json", str(tmp_path / "fik.json"), *data_root]
    genbench_all_cmd = [sys.executable, "-m", "genbench.cli", "eval", "--samples", str(samples), "--device", "cpu",
                        "--json", str(tmp_path / "all.json"), *data_root]
    fidelity_cmd = [sys.executable, "-c", TORCH_FIDELITY, str(samples), str(test)]
    contenders = {"genbench": genbench_cmd, "torch_fidelity": fidelity_cmd, "genbench_all_metrics": genbench_all_cmd}
    for cmd in contenders.values():  # caches (reference statistics, torch-fidelity's features) and page cache
        _timed(cmd, tmp_path)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    parts: dict[str, list[float]] = {}  # genbench eval's own timings, per round
    names = list(contenders)
    for r in range(REPEATS):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate who goes first
            seconds, stdout = _timed(contenders[name], tmp_path)
            times[name].append(seconds)
            if name == "torch_fidelity":
                theirs = json.loads(stdout.strip().splitlines()[-1])
            if name == "genbench":
                t = json.loads((tmp_path / "fik.json").read_text())["timings"]
                # Start-up: the process's wall time before eval's own clock starts and after it stops.
                for key, value in {"startup": seconds - t["total_seconds"], **t}.items():
                    parts.setdefault(key.removesuffix("_seconds"), []).append(value)
    ours = json.loads((tmp_path / "fik.json").read_text())
    for key, their_key in (("fid", "frechet_inception_distance"), ("kid", "kernel_inception_distance_mean"),
                           ("is", "inception_score_mean")):
        assert ours[key] == pytest.approx(theirs[their_key], rel=1e-4), key
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({
        "n_images": EVAL_N,
        "repeats": REPEATS,
        **{f"{name}_seconds_median": m for name, m in medians.items()},
        **{f"{name}_seconds": ts for name, ts in times.items()},
        "speedup": medians["torch_fidelity"] / medians["genbench"],
        "fid": ours["fid"],
    })
    print(f"\n{EVAL_N} PNGs, median of {REPEATS}: " + ", ".join(f"{k} {v:.2f} s" for k, v in medians.items())
          + f"; torch-fidelity / genbench = {medians['torch_fidelity'] / medians['genbench']:.2f}")
    # The floor of this work: what genbench cannot skip (start-up, reading the PNGs, the
    # features every metric needs, which torch-fidelity computes with the same network).
    part_medians = {k: statistics.median(v) for k, v in parts.items()}
    floor = sum(part_medians.get(k, 0.0) for k in ("startup", "read", "features"))
    benchmark.extra_info.update({"genbench_parts_median": part_medians, "floor_seconds": floor})
    print("genbench eval's parts (medians): " + ", ".join(f"{k} {v:.2f} s" for k, v in part_medians.items())
          + f"; floor (start-up + read + features) {floor:.2f} s; a 2x speedup needs "
          f"{medians['torch_fidelity'] / 2:.2f} s")
