"""``copy_fraction``: the share of samples that sit closer to the training set than real images do.

Statistic. For every sample, the Euclidean distance to its nearest training image is
compared with a threshold ``tau``: the 5th percentile (``quantile``) of the same
distance for the 8,000 real test images of the reference split
(:mod:`genbench.data.splits`), which no model trained on. ``copy_fraction`` is the share
of samples with distance ``<= tau``. A model that draws fresh images from the data
distribution scores about ``quantile`` (0.05); one that returns training images
scores 1. This is the comparison of Meehan, Chaudhuri & Dasgupta 2020 ("A
Non-Parametric Test to Detect Data-Copying in Generative Models", AISTATS): the
distribution of generated-to-training distances against that of held-out
real-to-training distances. Their C_T statistic compares whole distributions with a
Mann-Whitney U test per cell of a partition; here only the lower tail is compared,
with one fixed threshold, because copying shows up as too many samples *very* near a
training image, and a share with a known value under "no copying" reads directly.
The threshold-from-real-data form is the 5th-percentile "distance to closest
record" used for synthetic tabular data (Zhao et al. 2021, CTAB-GAN).

Space: pixels (uint8 values, distances in units of 0..255 gray levels). Copying is
about the images themselves: a verbatim copy has distance exactly 0 and a lightly
altered one stays near 0, while a classifier's features are trained to map
different images of one class close together, which would flag distinct digits of
a similar style as copies. Pixels also keep the number independent of
``--features``. What pixels miss (and this statistic does not claim to catch) is a
copy moved by a few pixels or otherwise transformed.

Search. Exact nearest neighbours by brute force over all 60,000 training images as
chunked matrix products, ``|q|^2 + |b|^2 - 2 q.b``; the product is nearly all of the
time. Sums of products of 8-bit values reach 5e7, beyond float32's exact integers
(2^24), so the search runs in float32 and keeps the ``candidates`` nearest per
sample; their distances are then recomputed exactly in integers. A wrong neighbour
would need ``candidates`` training images within float32 rounding of the true one.

The reference images' distances depend only on the data; they are computed once per
dataset and cached next to the feature statistics, keyed by a hash of the training
and reference images.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genbench.cache import DiskCache
from genbench.data.datasets import default_cache_root, resolve_data_root
from genbench.data.splits import REFERENCE, TRAIN, split_images
from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_COPY_FRACTION = "copy_fraction"
DEFAULT_QUANTILE = 0.05
FORMAT_VERSION = 1

register_metric(MetricSpec(
    KEY_COPY_FRACTION,
    "share of samples whose nearest training image (pixel L2) is nearer than the 5th percentile of that distance "
    "for held-out real images; ~0.05 for fresh images, 1 for copies (Meehan et al. 2020)",
    unit="fraction", higher_is_better=False, kind="fraction",
))

ProgressFn = Callable[[str, int, int], None]


def _flat(images: Tensor) -> Tensor:
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images.reshape(len(images), -1)


def nearest_distances(
    queries: Tensor,
    base: Tensor,
    *,
    query_chunk: int = 2048,
    base_chunk: int = 8192,
    candidates: int = 8,
    progress: ProgressFn | None = None,
    what: str = "copy search",
) -> tuple[Tensor, Tensor]:
    """Distance from each query to its nearest base image, and that image's index.

    ``queries [N,...]`` and ``base [M,...]`` are uint8 images of one shape; returns
    ``([N] float64 Euclidean distance in gray levels, [N] int64 index into base)``.
    Ties go to the lower index. ``progress(what, done, total)`` counts distance pairs.
    """
    q_all, b_all = _flat(queries), _flat(base)
    if q_all.shape[1] != b_all.shape[1]:
        raise ValueError(f"queries have {q_all.shape[1]} values per image, base {b_all.shape[1]}")
    if len(b_all) == 0:
        raise ValueError("nearest_distances needs at least one base image")
    k = min(candidates, len(b_all))
    dist = torch.empty(len(q_all), dtype=torch.float64)
    index = torch.empty(len(q_all), dtype=torch.int64)
    for i in range(0, len(q_all), query_chunk):
        q = q_all[i:i + query_chunk]
        qf = q.float()
        best_d = torch.empty(len(q), 0)
        best_i = torch.empty(len(q), 0, dtype=torch.int64)
        for j in range(0, len(b_all), base_chunk):
            bf = b_all[j:j + base_chunk].float()
            # |b|^2 - 2 q.b ranks like the squared distance (|q|^2 is the same along a row), in one fused product.
            d = torch.addmm((bf * bf).sum(1)[None, :], qf, bf.T, alpha=-2.0)
            d_k, i_k = torch.topk(d, min(k, len(bf)), dim=1, largest=False)
            best_d = torch.cat([best_d, d_k], 1)
            best_i = torch.cat([best_i, i_k + j], 1)
            if best_d.shape[1] > k:
                best_d, pos = torch.topk(best_d, k, dim=1, largest=False)
                best_i = torch.gather(best_i, 1, pos)
            if progress is not None:
                done = i * len(b_all) + len(q) * min(j + base_chunk, len(b_all))
                progress(what, done, len(q_all) * len(b_all))
        # Exact squared distances of the candidates, in integers.
        diff = q[:, None, :].int() - b_all[best_i].int()
        exact = (diff * diff).sum(2)  # int64
        # Lowest distance, then lowest index among equals.
        order = exact * len(b_all) + best_i
        pick = order.argmin(1)
        dist[i:i + len(q)] = exact.gather(1, pick[:, None]).squeeze(1).double().sqrt()
        index[i:i + len(q)] = best_i.gather(1, pick[:, None]).squeeze(1)
    return dist, index


def copy_threshold(reference_distances: Tensor, quantile: float = DEFAULT_QUANTILE) -> float:
    """The ``quantile`` of ``reference_distances`` as an observed value (inverted CDF).

    The smallest distance ``t`` with at least ``quantile`` of the reference at or below
    it, so a share ``quantile`` of the reference itself counts (exactly, without ties).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    values = torch.sort(reference_distances.double().flatten()).values
    if len(values) == 0:
        raise ValueError("copy_threshold needs at least one reference distance")
    rank = max(math.ceil(quantile * len(values)), 1)
    return float(values[rank - 1])


def copy_fraction_from_distances(distances: Tensor, threshold: float) -> float:
    """Share of ``distances`` at or below ``threshold``."""
    return float((distances.double() <= threshold).double().mean())


@dataclass(frozen=True)
class CopyCalibration:
    """Nearest-training-image distances of the reference split's images."""

    key: dict[str, str]  # dataset, space, data hash
    distances: Tensor  # [N] float64, gray levels

    def threshold(self, quantile: float = DEFAULT_QUANTILE) -> float:
        return copy_threshold(self.distances, quantile)


def _data_hash(*tensors: Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def calibration_path(dataset: str, data_hash: str) -> Path:
    return default_cache_root() / "stats" / f"{dataset}-copy-calibration-pixels-{data_hash[:16]}-v{FORMAT_VERSION}.pt"


# memo key: (dataset, data root, cache root), known before the data is read and hashed
CALIBRATION_CACHE: DiskCache[CopyCalibration] = DiskCache("copy calibration cache", FORMAT_VERSION)


def load_calibration(
    dataset: str, data_root: str | os.PathLike | None = None, progress: ProgressFn | None = None
) -> CopyCalibration:
    """The reference images' nearest-training-image distances (cached on disk; computed on a miss)."""
    memo_key = (dataset, str(resolve_data_root(data_root).resolve()), str(default_cache_root()))
    calibration = CALIBRATION_CACHE.remembered(memo_key)
    if calibration is not None:
        return calibration
    train = split_images(dataset, TRAIN, data_root)
    reference = split_images(dataset, REFERENCE, data_root)
    data_hash = _data_hash(train, reference)
    key = {"dataset": dataset, "space": "pixels", "data_sha256": data_hash}

    def compute() -> CopyCalibration:
        distances, _ = nearest_distances(reference, train, progress=progress, what="copy calibration")
        return CopyCalibration(key, distances)

    def decode(blob: dict) -> CopyCalibration | None:
        if blob["distances"].shape != (len(reference),):
            return None
        return CopyCalibration(dict(blob["key"]), blob["distances"].double())

    return CALIBRATION_CACHE.get(memo_key, calibration_path(dataset, data_hash), key=key, compute=compute,
                                 encode=lambda c: {"distances": c.distances}, decode=decode)


def copy_fraction(
    samples: Tensor,
    dataset: str,
    data_root: str | os.PathLike | None = None,
    quantile: float = DEFAULT_QUANTILE,
    progress: ProgressFn | None = None,
) -> float:
    """``copy_fraction`` of ``samples [N,1,28,28] uint8`` against ``dataset``'s training split."""
    threshold = load_calibration(dataset, data_root, progress).threshold(quantile)
    distances, _ = nearest_distances(samples, split_images(dataset, TRAIN, data_root), progress=progress)
    return copy_fraction_from_distances(distances, threshold)


def _compute_copy(inputs: MetricInputs) -> GroupValues:
    with inputs.timer("copy_calibration"):  # cached after the first call per dataset
        threshold = load_calibration(inputs.dataset, inputs.data_root, inputs.progress).threshold(
            inputs.config.copy_quantile)
    with inputs.timer("copy_search"):
        distances, _ = nearest_distances(inputs.samples, inputs.train, progress=inputs.progress)
    return {KEY_COPY_FRACTION: copy_fraction_from_distances(distances, threshold)}


register_metric_group(MetricGroup(
    "copy", (KEY_COPY_FRACTION,), _compute_copy, frozenset({"pixels", "train"}),
    "an exact nearest-neighbour search over the training images, in pixels ([Copy check](metrics.md#copy-check))",
))
