"""A diffusion run's test-set bound with and without clipping x0_hat (results/levers/README.md, "Cheap levers").

Usage:

    GENBENCH_DATA=../shared/data python scripts/ddpm_bound_clip.py RUN_DIR [--stride 5]

Loads a finished ddpm/iddpm run folder (``run.json`` and ``checkpoint.pt``) and scores
every ``stride``-th MNIST test image twice with the same Monte-Carlo draws (torch's global
RNG seeded with 0 before each pass): the bound whose reverse mean uses x0_hat as predicted,
and the reported one, which clips x0_hat to [-1, 1] as the ancestral sampler does. Prints
the mean over images in bits/dim with its Monte-Carlo standard error, the median and the
largest single image. A checkpoint written before a config field was added (ddpm before
``learn_sigma``) is rebuilt from the config stored in the checkpoint itself, the new fields
taking their defaults, which reproduce the old model.
"""

from __future__ import annotations

import argparse
import math

import torch

from genbench.config import make_config
from genbench.data.datasets import load_split
from genbench.errors import CheckpointError
from genbench.registry import get_generator
from genbench.run.train import CHECKPOINT_NAME, load_trained_run


def load(run_dir: str):
    try:
        return load_trained_run(run_dir)[0]
    except CheckpointError:
        ckpt = torch.load(f"{run_dir}/{CHECKPOINT_NAME}", map_location="cpu", weights_only=False)
        cls = get_generator(ckpt["identity"]["model"])
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["identity"]["config"].items()}
        model = cls(make_config(cls, config, text=False))
        model.load_checkpoint_state(ckpt["state"])
        return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--stride", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = load(a.run_dir)
    model.eval()
    x = load_split("mnist", "test").images[:: a.stride]
    bits = x[0].numel() * math.log(2)
    for clip in (False, True):
        torch.manual_seed(0)
        with torch.no_grad():
            parts = [model.nll_with_stderr(x[i : i + 500], clip_x0=clip) for i in range(0, len(x), 500)]
        nll, se = torch.cat([q[0] for q in parts]) / bits, torch.cat([q[1] for q in parts]) / bits
        print(f"clip x0_hat={clip!s:5}  images {len(x)}  mean {nll.mean():.4f} +- {se.pow(2).sum().sqrt() / len(x):.4f}"
              f"  median {nll.median():.4f}  largest {nll.max():.2f}  [bits/dim]")


if __name__ == "__main__":
    main()
