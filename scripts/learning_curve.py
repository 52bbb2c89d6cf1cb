"""Sample quality of one baseline as its training budget grows (results/levers/README.md's learning curves).

Usage:

    python scripts/learning_curve.py MODEL SEED 150000,300000 [field=value ...]

Trains MODEL (default config, with ``field=value`` overrides) on MNIST train with
genbench's harness until each budget in images, continuing every stage from the
previous one's checkpoint (an exact resume, so stage k equals a run with that budget),
and after each stage scores 2,000 samples (``torch.Generator`` seed 123) with genbench's
MNIST classifier: ``confident_fraction`` (top-class probability >= 0.9) and the domain
Inception Score (10 splits). One JSON line per stage on stdout (and appended to
``--jsonl``). ``--threads`` sets torch's intra-op threads (1 lets two curves share a
2-core machine without oversubscribing it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from genbench.budget import Budget
from genbench.config import make_config
from genbench.data.datasets import load_split
from genbench.features import load_extractor
from genbench.metrics.confidence import confident_fraction
from genbench.metrics.inception_score import inception_score
from genbench.protocol import quantize
from genbench.registry import get_generator
from genbench.run.task import save_grid
from genbench.run.train import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("seed", type=int)
    p.add_argument("stages", help="comma-separated image budgets, increasing")
    p.add_argument("overrides", nargs="*", help="config field=value")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jsonl", help="also append each stage's line here")
    p.add_argument("--grids", help="folder for a 10x10 sample grid per stage")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    stages = [int(s) for s in a.stages.split(",")]
    overrides = dict(s.split("=", 1) for s in a.overrides)
    cls = get_generator(a.model)
    torch.manual_seed(a.seed)
    model = cls(make_config(cls, overrides))
    images = load_split("mnist", "train").images
    extractor = load_extractor("genbench", "mnist")
    with tempfile.TemporaryDirectory() as run_dir:
        for budget in stages:
            t0 = time.perf_counter()
            result = train(model, images, Budget(images=budget), seed=a.seed, run_dir=run_dir, resume=True,
                           checkpoint_every_seconds=None)
            train_s = time.perf_counter() - t0
            with torch.no_grad():
                samples = quantize(model.sample(2000, torch.Generator().manual_seed(123)))
            logits = extractor.extract(samples).logits
            line = {
                "model": a.model, "seed": a.seed, "overrides": overrides, "images": budget, "status": result.status,
                "train_s": round(train_s, 1), "confident_fraction": round(confident_fraction(logits), 4),
                "is": round(inception_score(logits)[0], 3),
            }
            print(json.dumps(line), flush=True)
            if a.jsonl:
                with open(a.jsonl, "a") as f:
                    f.write(json.dumps(line) + "\n")
            if a.grids:
                tag = "_".join([a.model, str(a.seed), *a.overrides, str(budget)]).replace("=", "")
                save_grid(samples, Path(a.grids) / f"{tag}.png", nrow=10)


if __name__ == "__main__":
    main()
