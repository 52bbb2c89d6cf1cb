"""copy_fraction: exact nearest neighbours in pixels, the threshold, and its known values on real data."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.data.splits import HELD_OUT, REFERENCE, TRAIN, split_images
from genbench.metrics.copying import (
    calibration_path,
    copy_fraction,
    copy_fraction_from_distances,
    copy_threshold,
    load_calibration,
    nearest_distances,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def _brute_force(queries, base):
    d = torch.cdist(queries.reshape(len(queries), -1).double(), base.reshape(len(base), -1).double())
    return d.min(1)


def test_nearest_distances_equal_brute_force_in_float64():
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 256, (700, 1, 28, 28), dtype=torch.uint8, generator=g)
    queries = torch.randint(0, 256, (130, 1, 28, 28), dtype=torch.uint8, generator=g)
    queries[:20] = base[100:120]  # exact copies: distance 0
    queries[20:30] = base[200:210] ^ 1  # one gray level off in every pixel: distance sqrt(784) = 28
    # Chunks smaller than the inputs, so the running top-k merge across chunks is exercised.
    dist, index = nearest_distances(queries, base, query_chunk=50, base_chunk=128, candidates=4)
    ref = _brute_force(queries, base)
    assert torch.allclose(dist, ref.values, rtol=0, atol=1e-9)
    assert torch.equal(dist[:20], torch.zeros(20, dtype=torch.float64))
    assert torch.equal(index[:20], torch.arange(100, 120))
    assert torch.equal(dist[20:30], torch.full((10,), 28.0, dtype=torch.float64))


def test_large_values_are_exact_where_float32_is_not():
    # Two bright images 1 gray level apart in one pixel: |q|^2 ~ 5e7, beyond float32's exact integers.
    base = torch.full((3, 1, 28, 28), 255, dtype=torch.uint8)
    base[1, 0, 0, 0] = 254
    base[2, 0, 0, :2] = 253
    query = base[1:2].clone()
    dist, index = nearest_distances(query, base)
    assert dist.item() == 0.0 and index.item() == 1
    dist, index = nearest_distances(base[2:3], base[:2])
    assert dist.item() == pytest.approx(math.sqrt(1 + 4)) and index.item() == 1  # (254-253)^2 + (255-253)^2


def test_ties_go_to_the_lower_index():
    base = torch.zeros(5, 1, 28, 28, dtype=torch.uint8)
    base[[1, 3], 0, 5, 5] = 10  # rows 1 and 3 are equal
    query = base[3:4].clone()
    _, index = nearest_distances(query, base, base_chunk=2)
    assert index.item() == 1


def test_threshold_is_the_inverted_cdf_quantile():
    d = torch.arange(1, 101, dtype=torch.float64)  # 1..100
    assert copy_threshold(d, 0.05) == 5.0  # 5 of 100 values at or below it
    assert copy_fraction_from_distances(d, copy_threshold(d, 0.05)) == 0.05
    assert copy_threshold(d[:7], 0.05) == 1.0  # ceil(0.35) = 1: the smallest value
    assert copy_threshold(d.flip(0), 0.5) == 50.0
    with pytest.raises(ValueError, match="quantile"):
        copy_threshold(d, 1.0)


@pytest.fixture
def calibration(data_root):
    # Function scope: the cache must go to the per-test-session folder conftest sets up.
    return load_calibration("mnist", data_root)


def test_calibration_is_cached_and_keyed_by_the_data(calibration, data_root):
    assert calibration.distances.shape == (8000,) and calibration.distances.dtype == torch.float64
    assert (calibration.distances > 0).all()  # no reference image is an exact training image
    path = calibration_path("mnist", calibration.key["data_sha256"])
    assert path.is_file()
    blob = torch.load(path, weights_only=True)
    assert torch.equal(blob["distances"], calibration.distances)
    # On its own calibration set the statistic is the nominal rate exactly (no ties at the threshold).
    assert copy_fraction_from_distances(calibration.distances, calibration.threshold(0.05)) == 0.05


def test_known_values_on_real_data(calibration, data_root):
    train = split_images("mnist", TRAIN, data_root)
    held_out = split_images("mnist", HELD_OUT, data_root)
    # Training images are their own nearest neighbours: every one is a copy.
    assert copy_fraction(train[5000:5500], "mnist", data_root) == 1.0
    # Fresh real images: about the nominal 5%. 2,000 images: binomial sd 0.0049, bound at 4 sd.
    fraction = copy_fraction(held_out, "mnist", data_root)
    assert abs(fraction - 0.05) < 4 * math.sqrt(0.05 * 0.95 / len(held_out)), fraction
    # Uniform noise is far from every digit.
    noise = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    assert copy_fraction(noise, "mnist", data_root) == 0.0


def test_reference_and_held_out_are_disjoint_and_cover_the_test_split(data_root):
    test = split_images("mnist", "test", data_root)
    reference = split_images("mnist", REFERENCE, data_root)
    held_out = split_images("mnist", HELD_OUT, data_root)
    assert len(reference) == 8000 and len(held_out) == 2000
    assert torch.equal(held_out[0], test[4]) and torch.equal(reference[4], test[5])
    # Every fifth image: half of the held-out images from each half of the test split.
    rows = {bytes(x.numpy()) for x in held_out}
    assert not rows & {bytes(x.numpy()) for x in reference}
    assert sum(bytes(x.numpy()) in rows for x in test[:5000]) == 1000
