"""Time vae's IWAE bound and training step in this checkout, for A/B runs between checkouts.

Usage, alternating two checkouts in fresh processes (the order flipped every round):

    for r in 1 2 3 4; do for d in A B; do (cd $d && PYTHONPATH=$d python scripts/vae_eval_time.py); done; done

Prints one JSON line: seconds for the IWAE bound (the suite's k = 100) of 1,000 fixed random
uint8 images and the minor page faults it took, milliseconds per training step at batch 128
(the mean of 30 steps after 3 warm-up steps), and the bound's sum, which must be equal on
both sides for the comparison to be of the same work. An untrained model at the default
settings, seed 0, torch's default threads, and the allocator setting of genbench's runs
(genbench.allocator) where the checkout has one; ``GENBENCH_KEEP_FREED_MEMORY=0`` turns it
off for an A/B run in one checkout.
"""

from __future__ import annotations

import json
import resource
import time

import torch

from genbench.config import make_config
from genbench.registry import get_generator


def main() -> None:
    try:  # each checkout's allocator setting, as its own runs would have it
        from genbench.allocator import keep_freed_memory
    except ImportError:  # a checkout from before genbench.allocator
        pass
    else:
        keep_freed_memory()
    cls = get_generator("vae")
    torch.manual_seed(0)
    model = cls(make_config(cls, {}, text=False))
    x = (torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    model.log_likelihood(x[:41])  # warm-up: oneDNN builds its kernels for these shapes once
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    bound = model.log_likelihood(x, generator=torch.Generator().manual_seed(0))
    iwae_s = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    batch = x[:128]
    for i in range(3):
        model.train_step(batch, i)
    start = time.perf_counter()
    for i in range(30):
        model.train_step(batch, i)
    train_ms = (time.perf_counter() - start) / 30 * 1e3
    print(json.dumps({"iwae_s_per_1000": round(iwae_s, 3), "iwae_page_faults": faults, "train_ms": round(train_ms, 2),
                      "bound_sum": bound.double().sum().item()}))


if __name__ == "__main__":
    main()
