"""A generator that samples uniformly from a fixed set of real images (shared by two reference rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from genbench import Capability, Generator
from genbench.data.splits import split_images
from genbench.protocol import RunContext


@dataclass
class EmpiricalConfig:
    batch_size: int = 100  # the harness still hands out training batches; nothing is learnt from them


class EmpiricalGenerator(Generator):
    """Draws images from ``split`` of the run's dataset without replacement.

    ``sample(n)`` returns ``n`` distinct images in random order while ``n`` does not
    exceed the pool, then the pool again in a new order, so every image appears as
    evenly as ``n`` allows; evaluation asks for all samples in one call for this.
    (Draws with replacement would repeat about a third of a 2,000-image pool in 2,000
    draws and score the repeats as if they were a smaller sample.) The images come
    from the run (:meth:`setup`), not from training, and are not part of the
    checkpoint: they are the data itself.
    """

    split: ClassVar[str]
    Config = EmpiricalConfig
    capabilities = Capability.SAMPLE
    sample_in_one_call = True

    def __init__(self, config: EmpiricalConfig) -> None:
        super().__init__(config)
        self.register_buffer("pool", torch.empty(0, 1, 28, 28, dtype=torch.uint8), persistent=False)

    def setup(self, context: RunContext) -> None:
        self.pool = split_images(context.dataset, self.split, context.data_root).to(self.pool.device)

    def _require_pool(self) -> Tensor:
        if len(self.pool) == 0:
            raise RuntimeError(f"{self.name} has no images: call setup(RunContext(dataset, data_root)) first "
                               "(the harness does this before training)")
        return self.pool

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        return {"pool_images": float(len(self._require_pool()))}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        pool = self._require_pool()
        rounds = -(-n // len(pool))
        index = torch.cat([torch.randperm(len(pool), generator=generator, device=pool.device) for _ in range(rounds)])
        return pool[index[:n]].float() / 255.0
