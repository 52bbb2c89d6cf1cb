"""The metrics behave sensibly on real data and on known corruptions of it.

Real MNIST training images scored against the test-split reference must look
nearly perfect; noise, blur and a one-class subset must be penalized in the
expected direction. The fast tests use 2,000 images; the 10,000-image check of
the issue is marked slow.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.evaluate import EvalConfig, distribution_metrics
from genbench.metrics.fid import fid_from_features
from genbench.protocol import quantize

N = 2000


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def setup(data_root):
    extractor = gf.load_extractor("genbench", "mnist")
    reference = gf.load_reference("mnist", extractor, data_root=data_root)
    train = load_split("mnist", "train", data_root)
    return extractor, reference, train


_FEW_DRAWS = EvalConfig(fid_bootstrap_reps=20, kid_subsets=20)


def _scores(setup, images, config=_FEW_DRAWS):
    extractor, reference, _ = setup
    metrics, _ = distribution_metrics(extractor.extract(images), reference, domain_classifier=True, config=config)
    return metrics


@pytest.fixture(scope="module")
def real_scores(setup):
    return _scores(setup, setup[2].images[:N])


def test_real_training_images_look_real(real_scores):
    m = real_scores
    assert m["fid"] < 1.0
    assert m["precision"] >= 0.9 and m["recall"] >= 0.9
    assert m["is"] > 9.0 and m["confident_fraction"] > 0.95
    assert abs(m["kid"]) < 3 * m["kid_std"] + 1e-3


def test_noise_is_far_from_real(setup, real_scores):
    noise = quantize(torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    m = _scores(setup, noise)
    assert m["fid"] > 100 * real_scores["fid"] and m["fid"] > 50
    assert m["precision"] < 0.05 and m["coverage"] < 0.05


def test_fid_grows_with_blur(setup):
    extractor, reference, train = setup
    images = train.images[:1000]
    fids = []
    for sigma in (0.5, 1.0, 1.5, 2.0):
        blurred = quantize(gaussian_blur(images.float() / 255, kernel_size=9, sigma=sigma))
        fids.append(fid_from_features(extractor.extract(blurred).features, reference.mu, reference.sigma))
    assert all(a < b for a, b in pairwise(fids)), fids


def test_single_class_has_low_recall_coverage_and_is_near_one(setup, real_scores):
    _, _, train = setup
    ones = train.images[train.labels == 1][:N]
    m = _scores(setup, ones)
    assert m["recall"] < 0.3 * real_scores["recall"]
    assert m["coverage"] < 0.3 * real_scores["coverage"]
    assert m["is"] < 1.5
    assert m["precision"] > 0.5  # each image is still a real digit


def test_ten_thousand_real_training_images(setup):
    _, _, train = setup
    m = _scores(setup, train.images[:10_000], EvalConfig())
    assert m["fid"] < 0.5 and m["precision"] >= 0.9 and m["recall"] >= 0.9 and m["coverage"] > 0.9
    assert m["fid_ci_low"] <= m["fid"] <= m["fid_ci_high"]
