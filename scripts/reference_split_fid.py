"""FID of real and degraded images against the whole test split and against its reference part.

Usage: ``GENBENCH_DATA=DIR python scripts/reference_split_fid.py``

Prints a Markdown table: FID (genbench's MNIST features, 2,000 images unless stated)
against the whole 10,000-image test split (the protocol before reference rows, in
which real-data's held-out images sit inside the reference) and against the 8,000
reference images that exclude them (:mod:`genbench.data.splits`). Rows: the held-out
images as real-data samples them, the same drawn with replacement (seeds 0-2),
training images, blurred training images and independent-pixels samples. Then
``copy_fraction`` of the held-out images against the reference images' threshold,
for the stride split genbench uses and for a block split (the last 2,000 test
images held out): MNIST's test split is ordered by writer population.
"""

from __future__ import annotations

import torch
from torchvision.transforms.functional import gaussian_blur

import genbench.features as gf
from genbench.config import make_config
from genbench.data.splits import HELD_OUT, REFERENCE, TEST, TRAIN, held_out_mask, split_images
from genbench.metrics.copying import copy_fraction_from_distances, copy_threshold, nearest_distances
from genbench.metrics.fid import fid_from_features
from genbench.protocol import RunContext, quantize
from genbench.registry import get_generator


def main() -> None:
    extractor = gf.load_extractor("genbench", "mnist")
    references = {"whole test split (10,000)": gf.load_reference("mnist", extractor, split=TEST),
                  "reference part (8,000)": gf.load_reference("mnist", extractor, split=REFERENCE)}

    def fids(images: torch.Tensor) -> list[float]:
        feats = extractor.extract(images).features
        return [fid_from_features(feats, r.mu, r.sigma) for r in references.values()]

    rows = []
    real = get_generator("real-data")(make_config(get_generator("real-data")))
    real.setup(RunContext("mnist"))
    as_run = quantize(real.sample(2000, torch.Generator().manual_seed(0)))
    rows.append(("real-data as run: the 2,000 held-out images, each once", fids(as_run)))
    held_out = split_images("mnist", HELD_OUT)
    for seed in (0, 1, 2):
        g = torch.Generator().manual_seed(seed)
        drawn = held_out[torch.randint(len(held_out), (2000,), generator=g)]
        distinct = len({bytes(x.numpy()) for x in drawn})
        rows.append((f"2,000 draws with replacement from them (seed {seed}, {distinct:,} distinct)", fids(drawn)))
    train = split_images("mnist", TRAIN)
    rows.append(("2,000 training images", fids(train[:2000])))
    rows.append(("10,000 training images", fids(train[:10000])))
    for sigma in (0.5, 1.0, 1.5):
        blurred = quantize(gaussian_blur(train[:2000].float() / 255, kernel_size=9, sigma=sigma))
        rows.append((f"2,000 training images blurred (sigma {sigma})", fids(blurred)))
    pixels = get_generator("independent-pixels")(make_config(get_generator("independent-pixels")))
    for start in range(0, len(train), 6000):
        pixels.train_step(train[start:start + 6000], start)
    pixel_samples = quantize(pixels.sample(2000, torch.Generator().manual_seed(0)))
    rows.append(("independent-pixels, 2,000 samples (seed 0)", fids(pixel_samples)))
    print("| images | " + " | ".join(f"FID vs {name}" for name in references) + " | change |")
    print("|---|---|---|---|")
    for name, (whole, part) in rows:
        print(f"| {name} | {whole:.3f} | {part:.3f} | {100 * (part - whole) / whole:+.1f}% |")
    test = split_images("mnist", TEST)
    distances, _ = nearest_distances(test, train)
    held = held_out_mask(len(test))
    block = torch.arange(len(test)) >= 8000
    for name, mask in (("stride (every fifth image, genbench)", held), ("block (the last 2,000 images)", block)):
        fraction = copy_fraction_from_distances(distances[mask], copy_threshold(distances[~mask]))
        print(f"copy_fraction of the held-out images, {name}: {fraction:.4f}")


if __name__ == "__main__":
    main()
