"""Train glow for a fixed number of seconds outside the harness and print its learning curve.

The trials behind glow's defaults (results/mnist-small/README.md, "glow"): config overrides as
FIELD=VALUE, e.g.

    python scripts/glow_trial.py 150 channels=64 lr=0.001 alpha=0.05

prints the mean training bits/dim of every 100 steps, then the bound on the first 1,000 test
images (one dequantization draw per batch of 250, seed 0). Seconds, not images, end it: a trial, not a record.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import torch

from genbench.data.datasets import load_split
from genbench_baselines.glow import Glow, GlowConfig


def main(argv: list[str]) -> None:
    seconds = float(argv[0])
    types = {f.name: f.type for f in dataclasses.fields(GlowConfig)}
    overrides = dict(a.split("=", 1) for a in argv[1:])
    cfg = GlowConfig(**{k: {"int": int, "float": float}[types[k]](v) for k, v in overrides.items()})
    torch.manual_seed(0)
    model = Glow(cfg)
    train = torch.as_tensor(load_split("mnist", "train").images).view(-1, 1, 28, 28)
    test = torch.as_tensor(load_split("mnist", "test").images).view(-1, 1, 28, 28)[:1000]
    model.train()
    start, step, window = time.time(), 0, []
    while time.time() - start < seconds:
        idx = torch.randint(0, len(train), (cfg.batch_size,))
        window.append(model.train_step(train[idx], step)["bits_per_dim"])
        step += 1
        if step % 100 == 0:
            print(f"step {step} images {step * cfg.batch_size} {time.time() - start:.0f}s "
                  f"train bits/dim {sum(window) / len(window):.3f}", flush=True)
            window = []
    model.eval()
    with torch.no_grad():
        ll = torch.cat([model.log_likelihood(test[i:i + 250], torch.Generator().manual_seed(0))
                        for i in range(0, len(test), 250)])
    print(f"images {step * cfg.batch_size}: test bound {(-ll.mean() / (784 * math.log(2))).item():.3f} bits/dim")


if __name__ == "__main__":
    main(sys.argv[1:])
