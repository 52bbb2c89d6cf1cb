"""Time copy_fraction's exact nearest-neighbour search against the 60,000 MNIST training images.

Usage: ``GENBENCH_DATA=DIR python scripts/copy_search_time.py [--threads N]``

Times ``genbench.metrics.copying.nearest_distances`` for 2,000 queries (an
``mnist-small`` evaluation; median of 3), 10,000 (the ``mnist`` suite) and the 8,000
reference test images (the calibration, computed once per dataset and cached), and
prints the achieved GFLOP/s and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from genbench.data.datasets import load_split
from genbench.data.splits import REFERENCE, TRAIN, split_images
from genbench.metrics.copying import nearest_distances


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    train = split_images("mnist", TRAIN)
    test = load_split("mnist", "test").images
    noise = torch.randint(0, 256, (10000, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    for name, queries, reps in (("2,000 test images (mnist-small)", test[:2000], 3),
                                ("10,000 noise images (mnist suite)", noise, 1),
                                ("8,000 reference images (calibration)", split_images("mnist", REFERENCE), 1)):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            nearest_distances(queries, train)
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        gflops = 2 * len(queries) * len(train) * 784 / median / 1e9
        print(f"{name}: {median:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}), {gflops:.0f} GFLOP/s", flush=True)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
