"""A small MLP GAN as a genbench plug-in: the "Your own model" example of the README and the docs.

    genbench run --suite mnist-small --models my-gan --model examples/my_gan.py:MyGAN --out my-results

Generator 64 -> 256 -> 784 with tanh, discriminator 784 -> 256 -> 1 giving a logit, trained with
the non-saturating loss of Goodfellow et al. (2014) and Adam at the settings of Radford et al. (2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench import Capability, Generator, to_signed


@dataclass
class MyGANConfig:
    batch_size: int = 64
    latent_dim: int = 64
    hidden: int = 256
    lr: float = 2e-4  # Adam with betas (0.5, 0.999), as Radford et al. 2016


class MyGAN(Generator):
    name = "my-gan"  # --models my-gan; results go to OUT/SUITE/my-gan/seed<k>/
    Config = MyGANConfig
    capabilities = Capability.SAMPLE  # | LOG_LIKELIHOOD | RECONSTRUCT | COMPLETE, each with its method
    tiny_config = {"hidden": 16, "batch_size": 16}  # the seconds-fast size used under the smoke suite

    def __init__(self, config: MyGANConfig) -> None:
        super().__init__(config)
        self.G = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, 784), nn.Tanh(),
        )
        self.D = nn.Sequential(
            nn.Linear(784, config.hidden), nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, 1),
        )
        # Networks and optimizers held as attributes are checkpointed, so --resume continues them.
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=(0.5, 0.999))

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        """One update of each network on ``batch``: uint8 ``[B,1,28,28]`` on the model's device."""
        real = to_signed(batch).flatten(1)  # [B,784] in [-1, 1], the range of tanh
        z = torch.randn(len(real), self.config.latent_dim, device=real.device)
        fake = self.G(z)
        ones = torch.ones(len(real), 1, device=real.device)

        # Discriminator: real -> 1, generated -> 0 (detached: no gradient reaches G).
        loss_d = (F.binary_cross_entropy_with_logits(self.D(real), ones)
                  + F.binary_cross_entropy_with_logits(self.D(fake.detach()), torch.zeros_like(ones)))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # Generator: the non-saturating loss -log D(G(z)).
        loss_g = F.binary_cross_entropy_with_logits(self.D(fake), ones)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``[n,1,28,28]`` float in [0, 1], every random number drawn from ``generator``."""
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return (self.G(z).view(n, 1, 28, 28) + 1) / 2
