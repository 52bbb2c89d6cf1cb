"""fid_inf (FD∞): subset sizes, determinism, and its known answer: it hardly depends on the sample count."""

from __future__ import annotations

import pytest
import torch

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.data.splits import REFERENCE
from genbench.metrics.fid import fid_from_features
from genbench.metrics.fid_inf import fid_infinity, subset_sizes

pytestmark = pytest.mark.usefixtures("single_thread")


def test_subset_sizes():
    # 15 sizes from a fifth of the samples to all of them, linspace rounded down (Chong & Forsyth's num_points).
    assert subset_sizes(2000).tolist() == [400, 514, 628, 742, 857, 971, 1085, 1200, 1314, 1428, 1542, 1657, 1771,
                                           1885, 2000]
    assert subset_sizes(20).tolist() == [4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 20]
    with pytest.raises(ValueError, match="at least two distinct subset sizes"):
        subset_sizes(5)


def test_deterministic_for_a_seed():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(3000, 8, generator=g).double().numpy()
    feats = torch.randn(500, 8, generator=g) + 0.1
    mu, sigma = ref.mean(0), torch.from_numpy(ref).T.cov().numpy()
    a = fid_infinity(feats, mu, sigma, seed=1)
    assert a == fid_infinity(feats, mu, sigma, seed=1) and a != fid_infinity(feats, mu, sigma, seed=2)
    # The bias it removes is upward: the extrapolation lies below FID at all 500 samples.
    assert a < fid_from_features(feats, mu, sigma)


def test_two_thousand_and_ten_thousand_real_images_agree(data_root):
    # FID of 2,000 and of 10,000 training images differ by the small-sample bias (0.52 vs 0.21);
    # FD-infinity must remove at least half of that difference.
    extractor = gf.load_extractor("genbench", "mnist")
    reference = gf.load_reference("mnist", extractor, split=REFERENCE, data_root=data_root)
    feats = extractor.extract(load_split("mnist", "train", data_root).images[:10_000]).features
    fid_small = fid_from_features(feats[:2000], reference.mu, reference.sigma)
    fid_large = fid_from_features(feats, reference.mu, reference.sigma)
    inf_small = fid_infinity(feats[:2000], reference.mu, reference.sigma)
    inf_large = fid_infinity(feats, reference.mu, reference.sigma)
    assert fid_small - fid_large > 0.2
    assert abs(inf_small - inf_large) <= 0.5 * (fid_small - fid_large)
    assert inf_large < fid_large and inf_small < fid_small
