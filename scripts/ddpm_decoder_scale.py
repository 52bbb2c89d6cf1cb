"""Would a sharper decoder at t = 0 lower a trained ddpm's bound? The decoder term L_0 against its scale.

Usage (on a suite run's folder, which holds its record and checkpoint):

    GENBENCH_DATA=../shared/data python scripts/ddpm_decoder_scale.py RUN_DIR [--images 500]

The decoder ``p(x_0 | x_1)`` is a discretized Gaussian around the network's prediction
``x0_hat`` (Ho et al. 2020 eq. 13). Any fixed scale gives a valid bound, so the scale is
a free parameter; this prints ``L_0`` in bits/dim on ``--images`` training and test
images (evenly strided, one noise draw each) for a grid of scales, the model's own
scale among them, and the error of ``x0_hat`` on background pixels (value 0) and on
the rest. A scale picked on the training images is an honest decoder for the test bound.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from genbench.data.datasets import load_split
from genbench.protocol import to_signed
from genbench.run.train import load_trained_run
from genbench_baselines.ddpm import discretized_gaussian_log_likelihood

BITS = 784 * math.log(2)
SCALES = (0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.01, 0.02)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_trained_run(a.run_dir)

    def predict(split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = load_split("mnist", split).images
        x0 = to_signed(x[:: len(x) // a.images][: a.images])
        t = torch.zeros(len(x0), dtype=torch.long)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            x_t = model.schedule.add_noise(x0, t, noise)
            return x0, model.schedule.predict_x0(x_t, t, model._predict(x_t, t)[0])

    train, test = predict("train", 1), predict("test", 2)
    own = math.exp(0.5 * float(model.schedule.posterior_log_variance[0]))
    print(f"{'decoder scale':>14}  L_0 train  L_0 test  [bits/dim]")
    for s in sorted({*SCALES, own}):
        row = []
        for x0, x0_hat in (train, test):
            ll = discretized_gaussian_log_likelihood(x0, x0_hat, torch.full_like(x0_hat, math.log(s)))
            row.append(-ll.flatten(1).sum(1).mean().item() / BITS)
        mark = "  (the model's own)" if s == own else ""
        print(f"{s:14.4f}  {row[0]:9.3f}  {row[1]:8.3f}{mark}")
    x0, x0_hat = test
    err, background = (x0_hat - x0).abs(), x0 == -1
    print(f"|x0_hat - x0| on test: background ({background.float().mean():.1%} of pixels) median "
          f"{err[background].median():.4f}, 99th percentile {err[background].quantile(0.99):.4f}; "
          f"other pixels median {err[~background].median():.4f}; half a bin is {1 / 255:.4f}")


if __name__ == "__main__":
    main()
