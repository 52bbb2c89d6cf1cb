"""Check the VAE's likelihood bounds on a trained checkpoint: ELBO <= IWAE-k, rising with k.

Usage (after `genbench run --suite mnist-small`):

    python scripts/vae_iwae_k.py results/mnist-small/vae/seed0 [--images 500] [--ks 1,10,100,1000]

Loads the run's config from run.json and weights from checkpoint.pt, scores the first
``--images`` 8-bit MNIST test images with the closed-form-KL ELBO and with the IWAE bound
for each k (Burda et al. 2016), and prints bits/dim with the standard error over images;
``--json`` writes the table. Every bound uses the same seeded latent draws per k.
"""

from __future__ import annotations

import argparse
import json
import math
from itertools import pairwise
from pathlib import Path

import torch

from genbench.data.datasets import load_split
from genbench.run.train import load_trained_run

BPD = 784 * math.log(2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--ks", default="1,10,100,1000")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    model, record = load_trained_run(a.run_dir)
    x = load_split(record.dataset or "mnist", "test").images[: a.images]
    rows = []
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = torch.cat([model.elbo(x[i : i + 500]) for i in range(0, len(x), 500)])
    rows.append(("elbo", elbo))
    for k in (int(s) for s in a.ks.split(",")):
        g = torch.Generator().manual_seed(k)
        ll = torch.cat([model.log_likelihood(x[i : i + 100], k=k, generator=g) for i in range(0, len(x), 100)])
        rows.append((f"iwae_{k}", ll))
    out = []
    for name, ll in rows:
        bpd = -ll / BPD
        se = bpd.std().item() / math.sqrt(len(bpd))
        out.append({"bound": name, "nll_bpd": round(bpd.mean().item(), 4), "stderr": round(se, 4), "images": len(bpd)})
        print(f"{name:>10}  {bpd.mean().item():.4f} bits/dim  (se {se:.4f}, {len(bpd)} images)")
    # Paired differences: the per-image gain of each bound over the previous one.
    for (n0, a0), (n1, a1) in pairwise(rows):
        d = (a1 - a0) / BPD
        se = d.std().item() / math.sqrt(len(d))
        print(f"{n1} - {n0}: {d.mean().item():+.4f} bits/dim better (paired se {se:.4f})")
    if a.json:
        a.json.write_text(json.dumps({"run": str(a.run_dir), "rows": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
