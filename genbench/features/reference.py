"""Reference statistics of a dataset split, computed once and cached on disk.

A reference holds what every sample-quality metric needs from the real side:
features ``[N,D]`` (KID subsets, precision/recall/density/coverage distances), the
FID statistics (``mu``, ``sigma``, as torch-fidelity's ``fid_features_to_statistics``
computes them) and the k-NN radii of the reference features.

Cache files live in ``genbench.data.datasets.default_cache_root()/stats/`` and are named by
dataset, split, extractor and the first 16 hex digits of the extractor's weights
hash, so new weights never meet stale statistics. They are kept by :class:`genbench.cache.DiskCache`:
written atomically (temporary file, fsync, ``os.replace``) and read with ``weights_only=True``;
a file that fails to load (with a warning) or does not match its key is recomputed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genbench.cache import DiskCache
from genbench.data.datasets import default_cache_root
from genbench.data.splits import split_images
from genbench.features.extractor import Extractor
from genbench.metrics._fidelity_math import fid_features_to_statistics
from genbench.metrics.prdc import knn_radii

FORMAT_VERSION = 1
DEFAULT_KS = (5,)  # k of precision/recall/density/coverage (Naeem et al. 2020)

ProgressFn = Callable[[str, int, int], None]


@dataclass
class ReferenceStats:
    """Real-side statistics for the sample-quality metrics."""

    key: dict[str, str]  # dataset, split, extractor, sha256
    features: Tensor  # [N,D] float32
    mu: np.ndarray  # [D] (float32, as torch-fidelity computes it)
    sigma: np.ndarray  # [D,D] float64
    radii: dict[int, Tensor]  # k -> [N] distance to the k-th nearest other reference point

    @classmethod
    def from_features(
        cls, features: Tensor, key: dict[str, str] | None = None, ks: tuple[int, ...] = DEFAULT_KS
    ) -> ReferenceStats:
        features = features.float().contiguous()
        stats = fid_features_to_statistics(features)
        return cls(dict(key or {}), features, stats["mu"], stats["sigma"], knn_radii(features, ks))

    def to_blob(self) -> dict[str, object]:
        return {
            "version": FORMAT_VERSION,
            "key": self.key,
            "features": self.features,
            "mu": torch.from_numpy(np.asarray(self.mu)),
            "sigma": torch.from_numpy(np.asarray(self.sigma)),
            "radii": {str(k): v for k, v in self.radii.items()},
        }

    @classmethod
    def from_blob(cls, blob: dict) -> ReferenceStats:
        return cls(
            dict(blob["key"]),
            blob["features"],
            blob["mu"].numpy(),
            blob["sigma"].numpy(),
            {int(k): v for k, v in blob["radii"].items()},
        )


def stats_dir() -> Path:
    return default_cache_root() / "stats"


def reference_path(dataset: str, split: str, extractor: Extractor) -> Path:
    return stats_dir() / f"{dataset}-{split}-{extractor.name}-{extractor.sha256[:16]}-v{FORMAT_VERSION}.pt"


# memo key: (file, the k of the radii asked for)
REFERENCE_CACHE: DiskCache[ReferenceStats] = DiskCache("statistics cache", FORMAT_VERSION)


def load_reference(
    dataset: str,
    extractor: Extractor,
    *,
    split: str = "test",
    data_root: str | os.PathLike | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 500,
    progress: ProgressFn | None = None,
) -> ReferenceStats:
    """Statistics of ``dataset``'s ``split`` in ``extractor``'s space (cached; computed on a miss).

    ``split`` is any of :data:`genbench.data.splits.SPLITS`; the metrics use ``test-reference``.
    """
    key = {"dataset": dataset, "split": split, "extractor": extractor.name, "sha256": extractor.sha256}
    path = reference_path(dataset, split, extractor)

    def compute() -> ReferenceStats:
        images = split_images(dataset, split, data_root)
        feats = extractor.extract(images, batch_size=batch_size, progress=progress)
        return ReferenceStats.from_features(feats.features, key, ks)

    def decode(blob: dict) -> ReferenceStats | None:
        ref = ReferenceStats.from_blob(blob)
        return ref if all(k in ref.radii for k in ks) else None  # radii for other k: recomputed

    return REFERENCE_CACHE.get((path, tuple(sorted(ks))), path, key=key, compute=compute,
                               encode=ReferenceStats.to_blob, decode=decode)
