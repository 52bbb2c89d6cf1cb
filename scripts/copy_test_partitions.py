"""How C_T (copy_ct) depends on the k-means partition, for copies, fresh images and non-copies.

Usage: python scripts/copy_test_partitions.py [--seeds 0,1,2]

Draws 2,000 samples each from the independent-pixels floor (one epoch) and from the VAE
after 8,192 and after 60,000 training images (seed 0, default config), adds held-out real
images, training images (a memorizer) and an 80/20 mix of the two, and prints C_T and its
one-sided p for partitions fitted with each k-means seed, in pixel space (genbench's
protocol) and in the self-supervised lens's 128-d space. The protocol's partition is seed 0.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.cluster.vq import vq
from sklearn.cluster import KMeans

from genbench.config import make_config
from genbench.data.splits import HELD_OUT, REFERENCE, TRAIN, split_images
from genbench.features.ssl import load_ssl_extractor
from genbench.metrics.copy_test import KMEANS_FIT_IMAGES, NUM_CELLS, copy_test
from genbench.protocol import quantize
from genbench_baselines.independent_pixels import IndependentPixels
from genbench_baselines.vae import VAE

N = 2000


def trained_samples(cls, images: torch.Tensor, n_images: int) -> torch.Tensor:
    torch.manual_seed(0)
    model = cls(make_config(cls, {}))
    bs = model.config.batch_size
    for step, start in enumerate(range(0, n_images - bs + 1, bs)):
        model.train_step(images[start:start + bs], step)
    model.eval()
    with torch.no_grad():
        return quantize(model.sample(N, torch.Generator().manual_seed(0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    seeds = [int(s) for s in parser.parse_args().seeds.split(",")]
    train, fresh = split_images("mnist", TRAIN, None), split_images("mnist", REFERENCE, None)
    held = split_images("mnist", HELD_OUT, None)[:N]
    rng = np.random.default_rng(0)
    copies = train[torch.from_numpy(rng.permutation(len(train))[:N])]
    sets = {
        "held-out real": held,
        "train-copy": copies,
        "80/20 held-out/train": torch.cat([held[:N * 4 // 5], copies[:N // 5]]),
        "independent-pixels (1 epoch)": trained_samples(IndependentPixels, train, len(train)),
        "vae after 8,192 images": trained_samples(VAE, train, 8192),
        "vae after 60,000 images": trained_samples(VAE, train, 60000),
    }
    ssl = load_ssl_extractor("mnist", "cpu")
    spaces = {"pixels": lambda x: x.reshape(len(x), -1).double(),
              "ssl": lambda x: ssl.extract(x, 1000).features.double()}
    print(f"{'space':6} {'k-means seed':>12}  " + "  ".join(f"{k:>28}" for k in sets))
    for space, embed in spaces.items():
        t, p = embed(train), embed(fresh)
        xs = {k: embed(v) for k, v in sets.items()}
        for seed in seeds:
            pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:KMEANS_FIT_IMAGES])
            centroids = KMeans(NUM_CELLS, n_init=1, random_state=seed).fit(t[pick].numpy()).cluster_centers_
            t_cells = torch.from_numpy(vq(t.numpy(), centroids)[0].astype(np.int64))

            def cells_and_distances(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                cells = torch.from_numpy(vq(y.numpy(), centroids)[0].astype(np.int64))  # noqa: B023
                out = torch.empty(len(y), dtype=torch.float64)
                for c in torch.unique(cells).tolist():
                    rows = cells == c
                    out[rows] = torch.cdist(y[rows], t[t_cells == c]).min(1).values  # noqa: B023
                return cells, out

            p_cells, p_dist = cells_and_distances(p)
            row = []
            for y in xs.values():
                y_cells, y_dist = cells_and_distances(y)
                result = copy_test(y_cells, y_dist, p_cells, p_dist, len(centroids))
                row.append("null" if result is None else f"{result[0]:+7.2f} (p={result[1]:.1e})")
            print(f"{space:6} {seed:>12}  " + "  ".join(f"{r:>28}" for r in row), flush=True)


if __name__ == "__main__":
    main()
