"""Split a run's FID into its mean and covariance terms, in both lenses, from its checkpoint.

Usage (after `genbench run`; checkpoints are not committed, so on the machine that ran it):

    python scripts/fid_terms.py results/fashion-small/iddpm/seed0 results/fashion-small/iddpm/seed1

For each run folder: loads the trained model (``run.json`` + ``checkpoint.pt``), draws the
suite's ``n_samples`` samples exactly as the evaluation did (same seed, same batches),
checks that ``fid`` and ``fid_ssl`` come out equal to the record's (so the samples are the
ones scored), and prints, per lens, FID = ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^1/2):
the mean term and the rest (covariance term). Also the samples' mean pixel value and
fraction of exactly black pixels against the reference images'. A FID that moves between
seeds through its mean term says the samples shifted as a whole (brightness, a texture
present in most samples); through its covariance term, that their spread changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from genbench.data.splits import REFERENCE, split_images
from genbench.evaluate import draw_samples
from genbench.evaluate.settings import EvalConfig
from genbench.features.extractor import load_extractor
from genbench.features.reference import load_reference
from genbench.features.ssl import load_ssl_extractor
from genbench.metrics.fid import fid_from_features
from genbench.run.train import load_trained_run


def _terms(feats: torch.Tensor, mu_r: np.ndarray, sigma_r: np.ndarray) -> tuple[float, float]:
    fid = fid_from_features(feats, mu_r, sigma_r)
    mean_term = float(((feats.double().mean(0).numpy() - mu_r.astype(np.float64)) ** 2).sum())
    return fid, mean_term


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", type=Path, nargs="+")
    a = p.parse_args()
    cfg = EvalConfig()
    ref_pixels_done: set[str] = set()
    print("| run | lens | fid (record) | fid here | mean term | covariance term |")
    print("|---|---|---|---|---|---|")
    pixel_rows = []
    for run_dir in a.run_dirs:
        model, record = load_trained_run(run_dir)
        dataset, seed = record.dataset, record.seed
        n = int(record.eval["n_samples"])
        model.eval()
        samples = draw_samples(model, n, seed, "cpu", batch_size=cfg.sample_batch_size)
        for lens, key, extractor in (("classifier", "fid", load_extractor("genbench", dataset, "cpu")),
                                     ("self-supervised", "fid_ssl", load_ssl_extractor(dataset, "cpu"))):
            ref = load_reference(dataset, extractor, split=REFERENCE, batch_size=cfg.feature_batch_size,
                                 ks=(cfg.k_nearest,))
            feats = extractor.extract(samples, cfg.feature_batch_size).features
            fid, mean_term = _terms(feats, ref.mu, ref.sigma)
            recorded = record.metrics.get(key)
            equal = recorded is not None and abs(fid - recorded) <= 1e-6 * max(1.0, abs(recorded))
            print(f"| {run_dir} | {lens} | {recorded:.3f} | {fid:.3f}{'' if equal else ' (differs!)'} "
                  f"| {mean_term:.3f} | {fid - mean_term:.3f} |")
        x = samples.float()
        pixel_rows.append((str(run_dir), x.mean().item(), (samples == 0).float().mean().item()))
        if dataset not in ref_pixels_done:
            real = split_images(dataset, REFERENCE)
            pixel_rows.append((f"{dataset} {REFERENCE}", real.float().mean().item(), (real == 0).float().mean().item()))
            ref_pixels_done.add(dataset)
    print()
    print("| images | mean pixel (0-255) | fraction of black pixels |")
    print("|---|---|---|")
    for name, mean, black in pixel_rows:
        print(f"| {name} | {mean:.2f} | {black:.3f} |")


if __name__ == "__main__":
    main()
