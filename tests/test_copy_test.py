"""copy_ct / copy_ct_p (Meehan et al. 2020's C_T): the statistic by hand, and its known answers on real data.

The known answers use a subsample of the training set (12,000 images, 20 cells) so that
the test stays fast; the evaluation itself fits its cells as copy_test's docstring says.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from genbench.data.splits import HELD_OUT, REFERENCE, TRAIN, split_images
from genbench.metrics.copy_test import (
    assign_cells,
    cell_distances,
    copy_test,
    copy_test_samples,
    fit_cells,
    load_cells,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_one_cell_is_meehan_et_al_zu_and_its_normal_tail():
    g = np.random.default_rng(0)
    sample_d, fresh_d = g.normal(1.0, 1.0, 40), g.normal(1.5, 1.0, 60)
    c_t, p = copy_test(torch.zeros(40, dtype=torch.long), torch.from_numpy(sample_d),
                       torch.zeros(60, dtype=torch.long), torch.from_numpy(fresh_d), num_cells=1)
    u = mannwhitneyu(sample_d, fresh_d).statistic
    z = (u - (40 * 60 / 2 - 0.5)) / math.sqrt(40 * 60 * 101 / 12)  # their Zu, continuity correction included
    assert c_t == pytest.approx(z) and c_t < 0
    assert p == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))  # one cell: p = Phi(Z)


def test_cells_are_weighted_by_the_fresh_share_and_small_cells_left_out():
    g = np.random.default_rng(1)
    # Cell 0: 30 samples, 75% of the fresh images; cell 1: 30 samples, 25%; cell 2: 10 samples (< 20), left out.
    s_cells = torch.tensor([0] * 30 + [1] * 30 + [2] * 10)
    f_cells = torch.tensor([0] * 150 + [1] * 50 + [2] * 40)
    s_d, f_d = torch.from_numpy(g.random(70)), torch.from_numpy(g.random(240))
    c_t, p = copy_test(s_cells, s_d, f_cells, f_d, num_cells=3)
    z = [copy_test(torch.zeros(30, dtype=torch.long), s_d[s_cells == c], torch.zeros((f_cells == c).sum(),
         dtype=torch.long), f_d[f_cells == c], num_cells=1)[0] for c in (0, 1)]
    w = np.array([150, 50]) / 240
    assert c_t == pytest.approx((w @ z) / w.sum())
    sd0 = math.sqrt(w @ w) / w.sum()  # C_T's standard deviation under "no copying"
    assert p == pytest.approx(0.5 * math.erfc(-c_t / sd0 / math.sqrt(2)))
    assert copy_test(s_cells[60:], s_d[60:], f_cells, f_d, num_cells=3) is None  # no cell with 20 samples


@pytest.fixture(scope="module")
def small(data_root):
    """Cells of a 12,000-image training subsample, with the reference part as fresh data."""
    train = split_images("mnist", TRAIN, data_root)[:12_000]
    fresh = split_images("mnist", REFERENCE, data_root)
    return train, fit_cells(train, fresh, k=20, seed=0, fit_images=4000)


def test_cells_partition_the_training_set_and_distances_stay_in_the_cell(small):
    train, cells = small
    assert torch.equal(assign_cells(train, cells.centroids), cells.train_cells)
    assert set(cells.train_cells.tolist()) == set(range(len(cells.centroids)))
    # A training image is at distance 0 from itself, in its own cell.
    d = cell_distances(train[:50], cells.train_cells[:50], train, cells.train_cells)
    assert torch.equal(d, torch.zeros(50, dtype=torch.float64))


def test_training_images_are_flagged(small):
    train, cells = small
    c_t, p = copy_test_samples(train[:2000], train, cells)
    assert c_t < -3 and p < 0.001


def test_held_out_real_images_are_not_flagged(small, data_root):
    train, cells = small
    c_t, p = copy_test_samples(split_images("mnist", HELD_OUT, data_root), train, cells)
    assert abs(c_t) < 3 and p > 0.01


def test_a_fifth_of_training_images_among_real_ones_is_flagged(small, data_root):
    train, cells = small
    held = split_images("mnist", HELD_OUT, data_root)
    mixed = torch.cat([held[:1600], train[5000:5400]])
    c_t, p = copy_test_samples(mixed, train, cells)
    assert c_t < 0 and p < 0.001


def test_cells_are_cached_and_keyed_by_the_data(data_root, monkeypatch, tmp_path):
    import genbench.metrics.copy_test as ct

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache, whatever ran before

    calls = []
    real_fit = ct.fit_cells

    def counting_fit(train, fresh, k, seed, key):  # a small k keeps the fit fast
        calls.append(key)
        return real_fit(train, fresh, 5, seed, key, fit_images=1000)

    monkeypatch.setattr(ct, "fit_cells", counting_fit)
    monkeypatch.setattr(ct.CELLS_CACHE, "memo", {})
    first = load_cells("mnist", data_root)
    ct.CELLS_CACHE.clear()
    second = load_cells("mnist", data_root)  # from the disk cache
    assert len(calls) == 1 and torch.equal(first.fresh_distances, second.fresh_distances)
    assert len(list((tmp_path / "genbench" / "stats").glob("mnist-copy-cells-pixels-k50-s0-*-v1.pt"))) == 1
    assert calls[0]["k"] == "50" and calls[0]["space"] == "pixels" and len(calls[0]["data_sha256"]) == 64
