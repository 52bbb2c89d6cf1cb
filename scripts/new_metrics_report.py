"""Known answers and cost of cmmd, vendi and alpha_precision/beta_recall/authenticity on real lens features.

2,000 MNIST training images and 2,000 uniform-noise images, against the test split's 8,000 reference
images, in the classifier lens (``--features genbench``) and the self-supervised lens, as a run scores
them; each metric timed three times. Then cmmd's bandwidth (an even-strided subset of 2,000 reference
points) against the median over all reference pairs. Numbers for docs/metrics.md.

    python scripts/new_metrics_report.py
"""

from __future__ import annotations

import time

import torch

from genbench.data.splits import REFERENCE, TRAIN, split_images
from genbench.features import load_extractor, load_reference
from genbench.features.ssl import load_ssl_extractor
from genbench.metrics.alpha_beta import alpha_beta_authenticity
from genbench.metrics.cmmd import _sq_dists, bandwidth, cmmd_from_features
from genbench.metrics.vendi import vendi_score


def main() -> None:
    print("torch threads", torch.get_num_threads())
    real = split_images("mnist", TRAIN)[:2000]
    noise = torch.randint(0, 256, (2000, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    lenses = (("classifier", load_extractor("genbench", "mnist", "cpu")), ("ssl", load_ssl_extractor("mnist", "cpu")))
    for lens, extractor in lenses:
        reference = load_reference("mnist", extractor, split=REFERENCE)
        for what, images in (("real train[:2000]", real), ("uniform noise", noise)):
            feats = extractor.extract(images, 500).features
            print(f"{lens} lens, {what}: features {tuple(feats.shape)}, reference {tuple(reference.features.shape)}")
            y = reference.features
            for name, fn in (("cmmd", lambda x=feats, y=y: cmmd_from_features(x, y)),
                             ("vendi", lambda x=feats: vendi_score(x)),
                             ("alpha_beta", lambda x=feats, y=y: alpha_beta_authenticity(x, y))):
                wall, cpu = [], []
                for _ in range(3):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    value = fn()
                    wall.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                print(f"  {name}: {value}  wall s (3 runs): {', '.join(f'{s:.3f}' for s in wall)}; "
                      f"CPU s (all threads): {', '.join(f'{s:.3f}' for s in cpu)}")
        print(f"  vendi of the reference itself: {vendi_score(reference.features):.2f}")
        y = reference.features
        y_sq = (y * y).sum(1)
        parts = [_sq_dists(y[i : i + 1024], y[i + 1 :], y_sq[i : i + 1024], y_sq[i + 1 :])
                 for i in range(0, len(y), 1024)]
        pairs = torch.cat([p[torch.arange(p.shape[1])[None, :] >= torch.arange(len(p))[:, None]] for p in parts])
        full = float(pairs.median())
        print(f"  cmmd bandwidth sigma²: strided subset {bandwidth(y):.4f}, all {len(pairs)} pairs {full:.4f}, "
              f"ratio {bandwidth(y) / full:.4f}")


if __name__ == "__main__":
    main()
