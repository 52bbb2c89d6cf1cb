"""Per-model training and sampling throughput at batch 256 (pytest-benchmark).

Run: ``pytest benchmarks/bench_generators.py --benchmark-enable``; figures are
images/s = 256 / time per call. ``--device cuda`` is not a pytest option: set
``GENBENCH_BENCH_DEVICE=cuda`` to time on a GPU.
"""

import os

import pytest
import torch

from genbench.config import make_config
from genbench.process import seed_everything
from genbench.protocol import Role
from genbench.registry import generator_names, get_generator

BATCH = 256
DEVICE = torch.device(os.environ.get("GENBENCH_BENCH_DEVICE", "cpu"))


# Reference rows (real-data, train-copy, independent-pixels) are not models whose speed matters.
COMPETITORS = [n for n in generator_names() if get_generator(n).role is Role.COMPETITOR]


def _model(name):
    cls = get_generator(name)
    seed_everything(0)
    return cls(make_config(cls, {"batch_size": BATCH})).to(DEVICE)


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (BATCH, 1, 28, 28), dtype=torch.uint8, generator=g).to(DEVICE)


def _sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


@pytest.mark.parametrize("name", COMPETITORS)
def test_train_step_throughput(benchmark, name):
    model = _model(name)
    model.train()
    batch = _batch()
    model.train_step(batch, 0)  # warm-up (allocator, lazy init)
    step = iter(range(1, 10**9))

    def run():
        model.train_step(batch, next(step))
        _sync()

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median
    benchmark.extra_info["device"] = str(DEVICE)


@pytest.mark.parametrize("name", COMPETITORS)
def test_sample_throughput(benchmark, name):
    model = _model(name)
    model.eval()

    def run():
        model.sample(BATCH, torch.Generator(device=DEVICE).manual_seed(0))
        _sync()

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median
    benchmark.extra_info["device"] = str(DEVICE)
