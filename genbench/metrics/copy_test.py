"""``copy_ct``: Meehan, Chaudhuri & Dasgupta's data-copying test (AISTATS 2020), with a p-value.

The test compares two sets of distances to the training set ``T``: those of the
samples ``Q_m`` and those of fresh real images ``P_n`` that no model trained on. A
model that copies puts its samples closer to ``T`` than fresh data are.

Protocol, as their reference code (``casey-meehan/data-copying``,
``data_copying_tests.py``: ``Zu``, ``Zu_cells``, ``C_T``) does it:

1. Partition the space into ``k`` cells by k-means on the training set; every image
   belongs to the cell of its nearest centroid.
2. In each cell, the distance of every sample and every fresh image to its nearest
   training image *of that cell*, and a Mann-Whitney U test between the two:
   ``U`` of the samples (``scipy.stats.mannwhitneyu``), z-scored by its null
   moments with their continuity correction, ``Z = (U - (m n / 2 - 0.5)) /
   sqrt(m n (m + n + 1) / 12)``. Negative: samples closer than fresh data.
3. ``C_T``: the mean of the cells' ``Z`` weighted by the share of fresh images in
   each cell, over the cells that hold at least ``tau * m`` samples (too few make
   ``Z``'s normal approximation and the cell's share meaningless); ``copy_ct``.

Choices here. Space: pixels (uint8 gray levels), as ``copy_fraction``: copying is
about the images themselves, and the number does not depend on ``--features``
(their MNIST experiment used a VAE's 64-d latent space, which genbench does not
have). ``k = 50`` cells and ``tau = 20 / m`` (a cell counts with at least 20
samples). k-means is scikit-learn's ``KMeans`` (k-means++ start, one run, seeded),
as in their code, but fitted to a seeded random ``KMEANS_FIT_IMAGES`` of the
training images; every training image then belongs to the cell of its nearest
centroid. Any partition fixed before the samples are seen keeps the test valid;
fitting all 60,000 images costs about ten times more for centroids that only
localize the comparison. Fresh
data: the test split's 8,000 reference images (:mod:`genbench.data.splits`), disjoint
from the held-out images that the ``real-data`` row samples, so that row is fresh
data scored against fresh data.

p-value. Under "no copying" the cells' ``Z`` are independent standard normals, so
``C_T = sum w_i Z_i / sum w_i`` is normal with mean 0 and standard deviation
``sqrt(sum w_i^2) / sum w_i``; ``copy_ct_p = Phi(C_T / sd)`` (one-sided: small
when samples sit closer to the training set than fresh data do). ``C_T`` itself is
kept on Meehan et al.'s scale, where they read ``C_T << 0`` as copying.

The centroids, the training images' cells and the fresh images' cells and
distances depend only on the data; they are computed once per dataset and cached
next to the feature statistics, keyed by a hash of the training and reference
images, ``k`` and the seed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genbench.cache import DiskCache
from genbench.data.datasets import default_cache_root, resolve_data_root
from genbench.data.splits import REFERENCE, TRAIN, split_images
from genbench.metrics.copying import _data_hash, nearest_distances
from genbench.metrics.group import GroupValues, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_COPY_CT = "copy_ct"
KEY_COPY_CT_P = "copy_ct_p"
COPY_CT_KEYS = (KEY_COPY_CT, KEY_COPY_CT_P)
NUM_CELLS = 50
MIN_CELL_SAMPLES = 20  # tau * m: samples a cell needs to enter C_T
KMEANS_SEED = 0
KMEANS_FIT_IMAGES = 10_000  # training images the centroids are fitted to
FORMAT_VERSION = 1

register_metric(MetricSpec(
    KEY_COPY_CT,
    "Meehan et al. (2020)'s C_T: per k-means cell of the training set a Mann-Whitney Z of the samples' against "
    "fresh test images' distances to the training set, weighted by the test share; << 0 when samples copy",
    unit="Z", higher_is_better=None, kind="uncertainty", group="quality",
))
register_metric(MetricSpec(
    KEY_COPY_CT_P,
    "one-sided p-value of copy_ct under 'no copying': small when the samples sit closer to the training set than "
    "fresh test images do",
    unit="p", higher_is_better=None, kind="uncertainty", group="quality",
))

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Cells:
    """A k-means partition of a training set with the fresh images' cells and distances."""

    key: dict[str, str]
    centroids: Tensor  # [k, 784] float32, gray levels
    train_cells: Tensor  # [M] int64: cell of each training image
    fresh_cells: Tensor  # [n] int64
    fresh_distances: Tensor  # [n] float64: nearest training image of the same cell, gray levels


def _flat_float(images: Tensor) -> np.ndarray:
    return images.reshape(len(images), -1).float().numpy()


def assign_cells(images: Tensor, centroids: Tensor) -> Tensor:
    """Cell (nearest centroid, Euclidean) of each image ``[N,1,28,28] uint8``; ``[N]`` int64."""
    # scipy's modules are imported where used: they are slow to import, and only the copy test needs them.
    from scipy.cluster.vq import vq

    labels, _ = vq(_flat_float(images), centroids.numpy(), check_finite=False)
    return torch.from_numpy(labels.astype(np.int64))


def cell_distances(images: Tensor, cells: Tensor, train: Tensor, train_cells: Tensor) -> Tensor:
    """Distance of each image to its nearest training image of the same cell; ``[N]`` float64.

    A cell without training images cannot occur when the cells come from k-means on
    ``train`` (every centroid is a mean of its members); it raises if it does.
    """
    out = torch.empty(len(images), dtype=torch.float64)
    for c in torch.unique(cells).tolist():
        rows = cells == c
        base = train[train_cells == c]
        if len(base) == 0:
            raise ValueError(f"cell {c} holds no training image")
        out[rows], _ = nearest_distances(images[rows], base)
    return out


def fit_cells(train: Tensor, fresh: Tensor, k: int = NUM_CELLS, seed: int = KMEANS_SEED,
              key: dict[str, str] | None = None, fit_images: int = KMEANS_FIT_IMAGES) -> Cells:
    """k-means cells of ``train`` (uint8 images) and the ``fresh`` images' cells and distances.

    The centroids are fitted to ``fit_images`` training images drawn with ``seed``
    (all of them if there are fewer); every training image is then assigned.
    """
    from sklearn.cluster import KMeans  # imported here: only a cache miss needs it

    if len(train) < k:
        raise ValueError(f"k-means with {k} cells needs at least {k} training images, got {len(train)}")
    pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:fit_images])
    kmeans = KMeans(k, n_init=1, random_state=seed).fit(_flat_float(train[torch.from_numpy(pick)]))
    centroids_t = torch.from_numpy(np.ascontiguousarray(kmeans.cluster_centers_, dtype=np.float32))
    train_cells = assign_cells(train, centroids_t)
    used = torch.unique(train_cells)
    if len(used) < k:  # a centroid left without members: drop it, so every cell has training images
        centroids_t = centroids_t[used]
        train_cells = assign_cells(train, centroids_t)
    fresh_cells = assign_cells(fresh, centroids_t)
    fresh_distances = cell_distances(fresh, fresh_cells, train, train_cells)
    return Cells(dict(key or {}), centroids_t, train_cells, fresh_cells, fresh_distances)


def _z_mann_whitney(sample_d: np.ndarray, fresh_d: np.ndarray) -> float:
    """Meehan et al.'s z-scored U of the samples' distances against the fresh images' (their ``Zu``)."""
    from scipy.stats import mannwhitneyu

    m, n = len(sample_d), len(fresh_d)
    u = mannwhitneyu(sample_d, fresh_d, alternative="less").statistic  # U of the samples
    return float((u - (m * n / 2 - 0.5)) / math.sqrt(m * n * (m + n + 1) / 12))


def copy_test(
    sample_cells: Tensor, sample_distances: Tensor, fresh_cells: Tensor, fresh_distances: Tensor,
    num_cells: int, min_cell_samples: int = MIN_CELL_SAMPLES,
) -> tuple[float, float] | None:
    """``(C_T, one-sided p)`` from the cells and same-cell training distances of samples and fresh images.

    None when no cell holds ``min_cell_samples`` samples and a fresh image.
    """
    from scipy.stats import norm

    m = len(sample_cells)
    q_counts = torch.bincount(sample_cells, minlength=num_cells)
    p_share = torch.bincount(fresh_cells, minlength=num_cells).double() / len(fresh_cells)
    weights, zs = [], []
    for c in range(num_cells):
        # Their cell filter is Q_m(pi) > tau with tau = min_cell_samples / m.
        if q_counts[c] < min_cell_samples or p_share[c] == 0 or m == 0:
            continue
        zs.append(_z_mann_whitney(sample_distances[sample_cells == c].numpy(),
                                  fresh_distances[fresh_cells == c].numpy()))
        weights.append(float(p_share[c]))
    if not weights:
        return None
    w, z = np.asarray(weights), np.asarray(zs)
    c_t = float(w @ z / w.sum())
    sd0 = math.sqrt(float(w @ w)) / float(w.sum())
    return c_t, float(norm.cdf(c_t / sd0))


def cells_path(dataset: str, data_hash: str, k: int, seed: int) -> Path:
    return (default_cache_root() / "stats"
            / f"{dataset}-copy-cells-pixels-k{k}-s{seed}-{data_hash[:16]}-v{FORMAT_VERSION}.pt")


# memo key: (dataset, data root, cache root, k, seed), known before the data is read and hashed
CELLS_CACHE: DiskCache[Cells] = DiskCache("copy-test cache", FORMAT_VERSION)


def load_cells(dataset: str, data_root: str | os.PathLike | None = None, k: int = NUM_CELLS,
               seed: int = KMEANS_SEED) -> Cells:
    """The training set's k-means cells and the reference images' cells and distances (cached on disk)."""
    memo_key = (dataset, str(resolve_data_root(data_root).resolve()), str(default_cache_root()), k, seed)
    cells = CELLS_CACHE.remembered(memo_key)
    if cells is not None:
        return cells
    train = split_images(dataset, TRAIN, data_root)
    fresh = split_images(dataset, REFERENCE, data_root)
    data_hash = _data_hash(train, fresh)
    key = {"dataset": dataset, "space": "pixels", "data_sha256": data_hash, "k": str(k), "seed": str(seed),
           "fit_images": str(KMEANS_FIT_IMAGES)}

    def encode(c: Cells) -> dict:
        return {"centroids": c.centroids, "train_cells": c.train_cells, "fresh_cells": c.fresh_cells,
                "fresh_distances": c.fresh_distances}

    def decode(blob: dict) -> Cells | None:
        if blob["train_cells"].shape != (len(train),) or blob["fresh_distances"].shape != (len(fresh),):
            return None
        return Cells(dict(blob["key"]), blob["centroids"], blob["train_cells"], blob["fresh_cells"],
                     blob["fresh_distances"].double())

    return CELLS_CACHE.get(memo_key, cells_path(dataset, data_hash, k, seed), key=key,
                           compute=lambda: fit_cells(train, fresh, k, seed, key), encode=encode, decode=decode)


def copy_test_samples(samples: Tensor, train: Tensor, cells: Cells,
                      min_cell_samples: int = MIN_CELL_SAMPLES) -> tuple[float, float] | None:
    """``(copy_ct, copy_ct_p)`` of ``samples [N,1,28,28] uint8`` against ``train`` partitioned by ``cells``."""
    sample_cells = assign_cells(samples, cells.centroids)
    distances = cell_distances(samples, sample_cells, train, cells.train_cells)
    return copy_test(sample_cells, distances, cells.fresh_cells, cells.fresh_distances, len(cells.centroids),
                     min_cell_samples)


def _compute_copy_test(inputs: MetricInputs) -> GroupValues:
    with inputs.timer("copy_test_cells"):  # k-means of the training set: cached after the first call
        cells = load_cells(inputs.dataset, inputs.data_root)
    with inputs.timer("copy_test"):
        result = copy_test_samples(inputs.samples, inputs.train, cells)
    if result is None:
        none = Null(f"no k-means cell of the training set holds {MIN_CELL_SAMPLES} samples")
        return {KEY_COPY_CT: none, KEY_COPY_CT_P: none}
    statistic, p_value = result
    return {KEY_COPY_CT: statistic, KEY_COPY_CT_P: p_value}


register_metric_group(MetricGroup(
    "copy_test", COPY_CT_KEYS, _compute_copy_test, frozenset({"pixels", "train"}),
    "Meehan et al.'s data-copying test C_T and its p-value ([Copy check](metrics.md#copy-check))",
))
