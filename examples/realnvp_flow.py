"""A small RealNVP (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP") as a
genbench plug-in: the complete flow example of docs/your-own-model.md ("Likelihoods").

    genbench run --suite mnist-small --models realnvp --model examples/realnvp_flow.py:RealNVP --out my-results

The flow models dequantized pixels ``y = (x + u) / 256`` in [0, 1], ``u ~ U[0, 1)^784`` (uniform
dequantization, Theis et al. 2016), through the logit transform of the paper's Sec. 4.1 and a stack
of affine coupling layers with checkerboard masks onto a standard normal ``z``:

    y -> s = alpha + (1 - 2 alpha) y -> logit(s) -> couplings -> z ~ N(0, I)

``log_likelihood`` turns the density of ``y`` into nats per image of the 8-bit values: it subtracts
784·ln 256 (each pixel's bin is 1/256 wide in [0, 1]), and the result is a lower bound on the discrete
log-likelihood (Jensen's inequality over ``u``), hence ``likelihood_is_bound = True``. Its noise comes
from the ``generator`` genbench passes, so the bound is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genbench import Capability, Generator

PIXELS = 784
LEVELS = 256  # 8-bit values: the dequantized data's bins are 1/256 wide


@dataclass
class RealNVPConfig:
    batch_size: int = 64
    lr: float = 1e-3  # Adam
    couplings: int = 8  # affine coupling layers, alternating checkerboard parity (Dinh et al. 2017, Sec. 3.3)
    channels: int = 64  # width of each coupling's convolutional network
    alpha: float = 0.05  # logit transform's squeeze away from 0 and 1, where logit is infinite (Sec. 4.1)


class Coupling(nn.Module):
    """Affine coupling: the pixels of one checkerboard colour set a scale and shift of the others."""

    def __init__(self, parity: int, channels: int) -> None:
        super().__init__()
        rows, cols = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
        self.register_buffer("mask", ((rows + cols) % 2 == parity).float().view(1, 1, 28, 28))
        self.net = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity: a stable first step
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.zeros(1))  # tanh(.) times a learned scale keeps exp(s) tame

    def _scale_shift(self, z: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(torch.cat([z * self.mask, self.mask.expand_as(z)], dim=1))
        s = self.scale * torch.tanh(h[:, :1]) * (1 - self.mask)
        return s, h[:, 1:] * (1 - self.mask)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` -> (coupled ``z``, log|det| per image)."""
        s, t = self._scale_shift(z)
        return z * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, z: Tensor) -> Tensor:
        s, t = self._scale_shift(z)  # the masked half is unchanged, so it gives the same s and t
        return (z - t) * torch.exp(-s)


class RealNVP(Generator):
    name = "realnvp"
    Config = RealNVPConfig
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD
    likelihood_is_bound = True  # uniform dequantization: E_u log p(y) - 784 ln 256 <= log P(x)
    tiny_config = {"couplings": 2, "channels": 8, "batch_size": 16}

    def __init__(self, config: RealNVPConfig) -> None:
        super().__init__(config)
        self.layers = nn.ModuleList(Coupling(i % 2, config.channels) for i in range(config.couplings))
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)

    def _log_density(self, y: Tensor) -> Tensor:
        """``log p(y)`` in nats per image for dequantized pixels ``y`` in [0, 1]."""
        a = self.config.alpha
        s = a + (1 - 2 * a) * y
        z = torch.log(s) - torch.log1p(-s)  # logit
        # d logit(s) / dy = (1 - 2 alpha) / (s (1 - s)): the logit transform's log-Jacobian, per pixel
        log_det = (math.log(1 - 2 * a) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        for layer in self.layers:
            z, ld = layer(z)
            log_det = log_det + ld
        log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).flatten(1).sum(1)
        return log_pz + log_det

    def log_likelihood(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Lower bound on ``log P(x)`` of uint8 images ``[B,1,28,28]``: ``[B]`` nats per image.

        One draw of dequantization noise per image, from ``generator`` (torch's global RNG without one).
        """
        u = torch.rand(x.shape, generator=generator, device=x.device)
        y = (x.float() + u) / LEVELS
        return self._log_density(y) - PIXELS * math.log(LEVELS)  # density on [0, 1] -> 8-bit values

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        nll = -self.log_likelihood(batch).mean()
        self.opt.zero_grad(set_to_none=True)
        nll.backward()
        self.opt.step()
        return {"loss": nll.item(), "bits_per_dim": nll.item() / (PIXELS * math.log(2))}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.randn(n, 1, 28, 28, generator=generator, device=self.device)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        a = self.config.alpha
        y = (torch.sigmoid(z) - a) / (1 - 2 * a)  # overshoots [0, 1] by alpha / (1 - 2 alpha)
        # Undo the dequantization: y's bin of width 1/256 is the 8-bit value; the clamp takes the overshoot.
        return (y * LEVELS).floor().clamp(0, LEVELS - 1) / (LEVELS - 1)
