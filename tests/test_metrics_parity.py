"""Our metrics equal their reference implementations on the same inputs.

- FID, KID, IS: torch-fidelity's ``calculate_metrics`` with the registered
  ``genbench-mnist`` extractor on two image folders (RGB 32x32 vs gray 28x28, so
  the conversion path is compared too), relative difference <= 1e-4.
- precision, recall, density, coverage: the ``prdc`` package on the same features
  (1e-6), and torch-fidelity's precision/recall with k=5.
- PSNR, MSE, SSIM: scikit-image, image by image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.data.splits import REFERENCE, split_images
from genbench.evaluate import EvalConfig, distribution_metrics
from genbench.files.images import load_images
from genbench.metrics.fid import fid_bootstrap_interval, fid_from_features
from genbench.metrics.prdc import knn_radii, precision_recall_density_coverage
from genbench.metrics.reconstruction import completion_metrics, reconstruction_metrics

N_GEN, N_REF = 240, 320


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_root):
    base = tmp_path_factory.mktemp("parity")
    gen, ref = base / "gen", base / "ref"
    gen.mkdir()
    ref.mkdir()
    train = load_split("mnist", "train", data_root).images
    test = load_split("mnist", "test", data_root).images
    for i in range(N_GEN):
        # Blurred, tinted and enlarged: FID/KID clearly above 0, and every conversion step is exercised.
        g = Image.fromarray(train[i, 0].numpy()).filter(ImageFilter.GaussianBlur(0.8)).resize((32, 32), Image.BILINEAR)
        Image.merge("RGB", [g, g.point(lambda v: v * 0.8), g.point(lambda v: v // 2)]).save(gen / f"{i:04d}.png")
    for i in range(N_REF):
        Image.fromarray(test[i, 0].numpy()).save(ref / f"{i:04d}.png")
    return gen, ref


@pytest.fixture(scope="module")
def extractor():
    return gf.load_extractor("genbench", "mnist")


def test_fid_kid_is_equal_torch_fidelity(folders, extractor):
    import torch_fidelity

    gen, ref = folders
    from genbench.metrics._blas import single_threaded_blas

    with single_threaded_blas():
        theirs = torch_fidelity.calculate_metrics(
            input1=str(gen), input2=str(ref), fid=True, isc=True, kid=True, feature_extractor="genbench-mnist",
            cuda=False, kid_subset_size=N_GEN, verbose=False, cache=False, save_cpu_ram=True,
        )
    g, r = load_images(gen), load_images(ref)
    reference = gf.ReferenceStats.from_features(extractor.extract(r.images).features)
    ours, _ = distribution_metrics(
        extractor.extract(g.images), reference, domain_classifier=True, config=EvalConfig(kid_subset_size=N_GEN)
    )
    pairs = {
        "fid": "frechet_inception_distance",
        "kid": "kernel_inception_distance_mean",
        "kid_std": "kernel_inception_distance_std",
        "is": "inception_score_mean",
        "is_std": "inception_score_std",
    }
    assert theirs["frechet_inception_distance"] > 1.0  # a real difference is being measured
    for our_key, their_key in pairs.items():
        assert ours[our_key] == pytest.approx(theirs[their_key], rel=1e-4), our_key


@pytest.fixture(scope="module")
def real_features(extractor, data_root):
    train = load_split("mnist", "train", data_root).images
    test = load_split("mnist", "test", data_root).images
    blurred = torch.from_numpy(np.stack([
        np.asarray(Image.fromarray(x[0].numpy()).filter(ImageFilter.GaussianBlur(0.6))) for x in train[:700]
    ])).unsqueeze(1)
    return extractor.extract(blurred).features, extractor.extract(test[:900]).features


def test_prdc_equals_prdc_package(real_features, monkeypatch):
    import prdc.prdc
    import sklearn.metrics
    from prdc import compute_prdc

    # prdc hard-codes n_jobs=8; the same distances computed in one job avoid thread start-up on small inputs.
    monkeypatch.setattr(prdc.prdc, "compute_pairwise_distance",
                        lambda x, y=None: sklearn.metrics.pairwise_distances(x, x if y is None else y, n_jobs=1))
    fake, real = real_features
    ours = precision_recall_density_coverage(fake, real, knn_radii(real, (5,))[5], k=5, chunk=256)
    theirs = compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-6), key
    assert 0.05 < ours["coverage"] < 0.95 and 0.05 < ours["recall"] < 0.95  # not a degenerate case


def test_precision_recall_equal_torch_fidelity(real_features):
    from torch_fidelity.metric_prc import prc_features_to_metric

    fake, real = real_features
    ours = precision_recall_density_coverage(fake, real, knn_radii(real, (5,))[5], k=5)
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=5, verbose=False)
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-6)


def test_fid_of_identical_sets_is_zero(real_features):
    _, real = real_features
    ref = gf.ReferenceStats.from_features(real)
    assert abs(fid_from_features(real, ref.mu, ref.sigma)) < 1e-6


def test_bootstrap_fid_form_equals_torch_fidelity(real_features):
    from genbench.metrics.fid import fid_symmetric

    fake, real = real_features
    ref = gf.ReferenceStats.from_features(real)
    evals, evecs = np.linalg.eigh(ref.sigma)
    root = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    x = fake.double().numpy()
    ours = fid_symmetric(x.mean(0), np.cov(x, rowvar=False), ref.mu.astype(np.float64), root, np.trace(ref.sigma))
    assert ours == pytest.approx(fid_from_features(fake, ref.mu, ref.sigma), rel=1e-6)


def test_fid_bootstrap_interval_brackets_fid_and_is_seeded(real_features):
    fake, real = real_features
    ref = gf.ReferenceStats.from_features(real)
    fid = fid_from_features(fake, ref.mu, ref.sigma)
    low, high = fid_bootstrap_interval(fake, ref.mu, ref.sigma, fid, reps=40, seed=1)
    assert low < fid < high
    assert (high - low) < fid  # informative, not a blanket range
    assert fid_bootstrap_interval(fake, ref.mu, ref.sigma, fid, reps=40, seed=1) == (low, high)
    assert fid_bootstrap_interval(fake, ref.mu, ref.sigma, fid, reps=40, seed=2) != (low, high)


def test_reconstruction_metrics_equal_scikit_image():
    from skimage.metrics import (
        mean_squared_error,
        peak_signal_noise_ratio,
        structural_similarity,
    )

    gen = torch.Generator().manual_seed(0)
    ref = torch.randint(0, 256, (12, 1, 28, 28), generator=gen, dtype=torch.uint8)
    noise = torch.randint(-40, 41, ref.shape, generator=gen)
    test = (ref.int() + noise).clamp(0, 255).to(torch.uint8)
    ours = reconstruction_metrics(ref, test)
    pairs = list(zip(ref[:, 0].numpy(), test[:, 0].numpy(), strict=True))
    assert ours["mse"] == pytest.approx(np.mean([mean_squared_error(x, y) for x, y in pairs]), rel=1e-12)
    psnr = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in pairs]
    assert ours["psnr"] == pytest.approx(np.mean(psnr), rel=1e-12)
    ssim = [structural_similarity(x, y, data_range=255) for x, y in pairs]
    assert ours["ssim"] == pytest.approx(np.mean(ssim), rel=1e-12)


def test_psnr_of_exact_copy_is_capped_and_completion_uses_bottom_rows():
    ref = torch.randint(0, 256, (4, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    assert reconstruction_metrics(ref, ref.clone())["psnr"] == 100.0
    completed = ref.clone()
    completed[..., :14, :] = 255 - completed[..., :14, :]  # damage only the given rows: not scored
    completed[..., 14:, :] = 0
    out = completion_metrics(ref, completed, known_rows=14)
    expected = (ref[..., 14:, :].double() ** 2).mean(dim=(1, 2, 3)).mean().item()
    assert out["completion_mse"] == pytest.approx(expected)


class _TensorImages(torch.utils.data.Dataset):
    """uint8 ``[N,1,28,28]`` as a dataset torch-fidelity takes for ``input2`` (no files written)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def test_genbench_eval_equals_torch_fidelity_end_to_end(tmp_path, data_root):
    """benchmarks/bench_metrics.py's value check, on 300 files: the CLI against calculate_metrics.

    Gray and colour PNGs (both decoders' paths); torch-fidelity reads them with PIL and
    compares them with the test split's reference part (``test-reference``), as genbench
    eval's cached reference statistics do.
    """
    import json

    import torch_fidelity
    from click.testing import CliRunner

    from genbench.cli.eval import eval_command

    n = 300
    train = load_split("mnist", "train", data_root).images
    reference = split_images("mnist", REFERENCE, data_root)
    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(n):
        g = Image.fromarray(train[2000 + i, 0].numpy()).filter(ImageFilter.GaussianBlur(0.7))
        img = g if i % 2 else Image.merge("RGB", [g, g.point(lambda v: v * 0.7), g.point(lambda v: 255 - v)])
        img.save(folder / f"{i:04d}.png")
    result = CliRunner().invoke(eval_command, ["--samples", str(folder), "--data-root", data_root, "--json", "-",
                                               "--device", "cpu", "--metrics", "fid,is,kid"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    ours = json.loads(result.stdout)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(folder), input2=_TensorImages(reference), fid=True, isc=True, kid=True, kid_subset_size=n,
        feature_extractor="genbench-mnist", cuda=False, verbose=False, cache=False, save_cpu_ram=True,
    )
    assert ours["fid"] > 5.0  # a real difference is measured
    for key, their_key in (("fid", "frechet_inception_distance"), ("kid", "kernel_inception_distance_mean"),
                           ("is", "inception_score_mean")):
        assert ours[key] == pytest.approx(theirs[their_key], rel=1e-4), key
