"""independent-pixels: the floor row, one 256-way categorical per pixel, pixels independent.

``p(x) = prod_i p_i(x_i)``, where ``p_i(v)`` is the share of training images whose
pixel ``i`` has the 8-bit value ``v``, with add-one (Laplace) smoothing: every count
starts at ``pseudo_count`` = 1, so no value has probability 0 and an untrained
model is uniform (exactly 8 bits/dim). Training counts every image ``train_step``
sees (in ``mnist-small``, one epoch of all 60,000). The likelihood is exact, and
samples are drawn pixel by pixel from the 784 categoricals (independent, so all at
once). Any model that learns dependencies between pixels should beat its NLL: it is
the likelihood a model gets for knowing only where ink tends to be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from genbench import Capability, Generator, register_generator
from genbench.protocol import NUM_PIXELS, Role

LEVELS = 256


@dataclass
class IndependentPixelsConfig:
    batch_size: int = 100  # divides 60,000: one epoch counts every training image
    pseudo_count: float = 1.0  # add-one (Laplace) smoothing


@register_generator
class IndependentPixels(Generator):
    name = "independent-pixels"
    Config = IndependentPixelsConfig
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD
    role = Role.FLOOR
    tiny_config = {"batch_size": 16}

    def __init__(self, config: IndependentPixelsConfig) -> None:
        super().__init__(config)
        if not config.pseudo_count > 0:
            raise ValueError(f"pseudo_count must be positive, got {config.pseudo_count}")
        # counts[i, v]: pseudo-count plus the training images whose pixel i equals v.
        self.register_buffer(
            "counts", torch.full((NUM_PIXELS, LEVELS), float(config.pseudo_count), dtype=torch.float64))

    def total(self) -> Tensor:
        """Pseudo-counts plus images counted: the same for every pixel (each image adds one count per pixel)."""
        return self.counts[0].sum()

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` in nats per image, ``[B]`` float64, for uint8 ``x [B,1,28,28]``."""
        values = x.reshape(len(x), NUM_PIXELS).long()
        return self.counts.gather(1, values.T).log().sum(0) - NUM_PIXELS * self.total().log()

    @torch.no_grad()
    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        # Code length of the batch before counting it (prequential), then count it.
        bits_per_dim = -self.log_likelihood(batch).mean().item() / (NUM_PIXELS * math.log(2.0))
        values = batch.reshape(len(batch), NUM_PIXELS).long()
        cells = (torch.arange(NUM_PIXELS, device=values.device) * LEVELS + values).flatten()
        # Whole counts in float64 are exact, so the order of the additions cannot matter.
        self.counts.view(-1).index_add_(0, cells, torch.ones(len(cells), dtype=self.counts.dtype, device=cells.device))
        return {"bits_per_dim": bits_per_dim}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        probs = self.counts / self.total()
        values = torch.multinomial(probs, n, replacement=True, generator=generator)  # [784, n]
        return values.T.reshape(n, 1, 28, 28).float() / 255.0
