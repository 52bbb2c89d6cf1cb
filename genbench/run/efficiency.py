"""Hardware efficiency: a machine calibration in FLOP/s and FLOPs per training image.

Throughput depends on the machine; dividing it by the machine's achievable FLOP/s
(measured by a matrix product at the start of a suite) gives figures that can be
compared across machines, and FLOPs per image x images/s over that calibration is
the fraction of the machine a model's training actually uses.
"""

from __future__ import annotations

import copy
import time
from functools import lru_cache

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from genbench.protocol import Generator


@lru_cache(maxsize=8)
def calibrate_flops(device: str = "cpu", size: int = 1024, repeats: int = 8, threads: int | None = None) -> float:
    """Achievable float32 FLOP/s of a square matrix product on ``device`` (best of ``repeats``).

    ``threads`` only keys the cache: the product runs with torch's current thread count,
    which the caller passes so that a change of threads measures anew.
    """
    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=g).to(dev)
    b = torch.randn(size, size, generator=g).to(dev)
    if dev.type == "cuda":
        size, repeats = 4096, 20
        a = torch.randn(size, size, device=dev)
        b = torch.randn(size, size, device=dev)
    best = float("inf")
    for _ in range(repeats + 1):  # the first product warms up caches and kernels
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        torch.mm(a, b)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


class _FlopCounter(TorchDispatchMode):
    """Sums torch's registered FLOP formulas (matmuls, convolutions, attention) over every op run.

    ``torch.utils.flop_counter.FlopCounterMode`` does the same but also tracks modules
    with backward hooks, which breaks on ``autograd.grad`` inside a step (the gradient
    penalty of WGAN-GP); only the total is needed here, so no hooks.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def train_flops_per_image(model: Generator, batch: torch.Tensor, steps: int = 5) -> float:
    """FLOPs of ``train_step`` per image, averaged over ``steps`` steps on a throw-away copy.

    Several steps, because some models alternate kinds of steps (a WGAN-GP critic
    takes n_critic steps per generator step).
    Every RNG the step may draw from is saved and restored, and the copy's weights
    are discarded, so counting changes nothing in the run that follows.
    """
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    clone = copy.deepcopy(model)
    clone.train()
    try:
        with _FlopCounter() as counter:
            for step in range(steps):
                clone.train_step(batch, step)
        return counter.total / (steps * batch.shape[0])
    finally:
        del clone
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
