"""How good a lens is the self-supervised encoder? Numbers for results/levers/ssl_lens.md.

Prints markdown: the linear-probe accuracy (full train split -> test split), the known
answers (real < blur sigma 1 < blur sigma 2 < noise) and real digits with faint
background noise in both lenses (``fid``: the domain classifier; ``fid_ssl``: the SimCLR
encoder), at N = 2,000 against the test split's reference part, as every run scores;
then the committed mnist-small competitors' samples against real and noisy real digits
at the same N in both lenses. The results folders keep only each run's 64-sample grid
(samples.png), so that comparison pools seeds 0-2 (192 images) and scores real digits at
N = 192 as well (FD's small-sample bias is then the same for every row).

    python scripts/ssl_lens_report.py [--results results/mnist-small] [--dataset mnist]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

import genbench.features as gf
from genbench.data.datasets import load_split
from genbench.data.splits import REFERENCE
from genbench.evaluate import ssl_metrics
from genbench.features import ssl
from genbench.metrics.fid import fid_from_features
from genbench.protocol import quantize

N = 2000
GRID = 8  # execute.save_grid: 8 x 8 samples, 2-pixel padding
NOISE_LEVELS = (10, 20, 40)


def grid_images(path: Path) -> torch.Tensor:
    """The 64 uint8 samples of a run's samples.png (exact: save_grid round-trips uint8)."""
    a = np.asarray(Image.open(path).convert("L"))
    cells = [a[2 + r * 30 : 30 + r * 30, 2 + c * 30 : 30 + c * 30] for r in range(GRID) for c in range(GRID)]
    return torch.from_numpy(np.stack(cells)).unsqueeze(1).contiguous()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=Path("results/mnist-small"))
    parser.add_argument("--dataset", default="mnist")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = args.dataset
    lenses = {"fid": gf.load_extractor("genbench", ds), "fid_ssl": ssl.load_ssl_extractor(ds)}
    refs = {k: gf.load_reference(ds, ex, split=REFERENCE) for k, ex in lenses.items()}
    train, test = load_split(ds, "train"), load_split(ds, "test")

    def fds(images: torch.Tensor) -> dict[str, float]:
        return {k: fid_from_features(ex.extract(images).features, refs[k].mu, refs[k].sigma)
                for k, ex in lenses.items()}

    meta = torch.load(ssl.ssl_weights_path(ds), weights_only=True)["meta"]
    t0 = time.perf_counter()
    probe = ssl.linear_probe_accuracy(lenses["fid_ssl"].extract(train.images).features, train.labels,
                                      lenses["fid_ssl"].extract(test.images).features, test.labels)
    probe_s = time.perf_counter() - t0
    print(f"## {ds}\n")
    print(f"SSL weights sha256 {ssl.SSL_WEIGHTS_SHA256[ds]}; recorded train time {meta['train_seconds']} s "
          f"({meta['num_threads']} thread(s)); recorded linear probe {meta['linear_probe_accuracy']:.4f}; "
          f"recomputed {probe:.4f} ({probe_s:.0f} s)\n")

    real = train.images[:N]
    gen = torch.Generator().manual_seed(0)
    rows: list[tuple[str, dict[str, float]]] = [("real train images", fds(real))]
    for s in (1.0, 2.0):
        rows.append((f"blur sigma {s:g}", fds(quantize(gaussian_blur(real.float() / 255, kernel_size=9, sigma=s)))))
    rows.append(("uniform noise", fds(quantize(torch.rand(N, 1, 28, 28, generator=gen)))))
    for level in NOISE_LEVELS:
        rows.append((f"real + background noise <= {level}",
                     fds(ssl.background_noise(real, level, torch.Generator().manual_seed(level)))))
    print(f"### Known answers and background noise (N = {N}, vs test-reference)\n")
    print("| images | fid | fid_ssl |\n|---|---:|---:|")
    for name, v in rows:
        print(f"| {name} | {v['fid']:.3f} | {v['fid_ssl']:.3f} |")

    # Cost per run: what evaluate adds on 2,000 samples (the reference statistics are cached, as after a
    # suite's first run), as the records time it (eval_<phase>_seconds).
    timings: dict[str, float] = {}
    ssl_metrics(real, dataset=ds, timings=timings)
    print(f"\ncost on {N} samples, 1 thread (evaluate.ssl_metrics' timings): "
          + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()) + f"; total {sum(timings.values()):.2f} s\n")

    if not args.results.is_dir():
        return
    n_grid = 3 * GRID * GRID
    print(f"### Committed competitors' samples (seeds 0-2 grids, N = {n_grid}) vs real digits at the same N\n")
    print("| images | fid (N=192) | fid_ssl (N=192) | committed fid (N=2000, mean of seeds) |\n|---|---:|---:|---:|")
    real_rows = [("real train images", train.images[N : N + n_grid])]
    real_rows += [(f"real + background noise <= {lv}",
                   ssl.background_noise(train.images[N : N + n_grid], lv, torch.Generator().manual_seed(lv)))
                  for lv in NOISE_LEVELS]
    out = []
    for name, images in real_rows:
        v = fds(images)
        out.append((v["fid_ssl"], f"| {name} | {v['fid']:.1f} | {v['fid_ssl']:.2f} | |"))
    for model_dir in sorted(p for p in args.results.iterdir() if (p / "seed0" / "samples.png").is_file()):
        seeds = [model_dir / f"seed{s}" for s in range(3)]
        if not all((s / "samples.png").is_file() for s in seeds):
            continue
        images = torch.cat([grid_images(s / "samples.png") for s in seeds])
        committed = [json.loads((s / "run.json").read_text())["metrics"].get("fid") for s in seeds]
        committed = [c for c in committed if c is not None]
        v = fds(images)
        c = f"{np.mean(committed):.2f}" if committed else "-"
        out.append((v["fid_ssl"], f"| {model_dir.name} | {v['fid']:.1f} | {v['fid_ssl']:.2f} | {c} |"))
    for _, line in sorted(out):
        print(line)


if __name__ == "__main__":
    main()
