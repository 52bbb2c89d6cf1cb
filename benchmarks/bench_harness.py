"""Harness overhead: a whole budgeted training loop around a trivial model (pytest-benchmark).

The dummy model's step is almost free, so this measures the harness itself:
batching, budget accounting, logging and the final checkpoint.
"""

import torch

from genbench.budget import Budget
from genbench.run.train import train
from tests.conftest import DummyConfig, DummyGenerator


def test_harness_loop_500_steps(benchmark, tmp_path):
    images = torch.randint(0, 256, (4096, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def run():
        train(DummyGenerator(DummyConfig(batch_size=64)), images, Budget(steps=500), seed=0, run_dir=tmp_path)

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["steps_per_s"] = 500 / benchmark.stats.stats.median
