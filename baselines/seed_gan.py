"""seed-gan: the plain MLP GAN of the article genbench grew from (Goodfellow et al. 2014).

Generator ``Linear 100-256-512-784`` with ReLU, discriminator ``784-512-256-1``,
Adam (lr 2e-4, betas (0.5, 0.999)), batch 64 -- as in the article, with its code
defects fixed:

1. *Sigmoid in the wrong place.* The article's discriminator puts a sigmoid between
   hidden layers and none at the output, yet trains with ``BCELoss``. Here hidden
   layers use LeakyReLU(0.2) (Radford et al. 2016) and the output is a logit fed to
   ``BCEWithLogitsLoss``, which applies the sigmoid in a numerically stable way.
2. *Models used before they exist.* The article builds the optimizers from G and D
   before constructing them; here both networks exist before their optimizers.
3. *One graph, one backward for both players.* The article backpropagates both
   losses through one graph in one step, so D's loss updates G and vice versa.
   Here D is updated on ``G(z).detach()``, then G by a fresh pass through D with the
   non-saturating loss, each with its own optimizer and ``zero_grad``.
4. *Unbounded generator output.* The generator ends in ``tanh`` so samples lie in
   [-1, 1], the range real images are scaled to.
5. *Noise created on cuda while the models stay on the CPU.* Noise is drawn on the
   device the model lives on (``self.device``), so the same code runs on either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench import Capability, Generator, register_generator, to_signed
from genbench.search_space import Choice, LogUniform, Uniform


@dataclass
class SeedGANConfig:
    latent_dim: int = 100  # article: 100-d Gaussian noise
    g_hidden: tuple[int, int] = (256, 512)
    d_hidden: tuple[int, int] = (512, 256)
    lr: float = 2e-4  # article / Radford et al. 2016
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64


@register_generator
class SeedGAN(Generator):
    name = "seed-gan"
    Config = SeedGANConfig
    capabilities = Capability.SAMPLE
    tiny_config = {"g_hidden": (16, 16), "d_hidden": (16, 16), "batch_size": 8}
    search_space = {"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 0.9), "batch_size": Choice((32, 64, 128))}

    def __init__(self, config: SeedGANConfig) -> None:
        super().__init__(config)
        h1, h2 = config.g_hidden
        self.G = nn.Sequential(
            nn.Linear(config.latent_dim, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, 784), nn.Tanh(),
        )
        d1, d2 = config.d_hidden
        self.D = nn.Sequential(
            nn.Linear(784, d1), nn.LeakyReLU(0.2),
            nn.Linear(d1, d2), nn.LeakyReLU(0.2),
            nn.Linear(d2, 1),
        )
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)

    def _generate(self, z: Tensor) -> Tensor:
        return self.G(z)  # [B,784] in [-1,1]

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        real = to_signed(batch).flatten(1)
        b = real.shape[0]
        z = torch.randn(b, self.config.latent_dim, device=real.device)
        fake = self._generate(z)

        # Discriminator: real -> 1, fake -> 0; fake is detached so G gets no gradient.
        logits_real = self.D(real)
        logits_fake = self.D(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            logits_real, torch.ones_like(logits_real)
        ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # Generator: non-saturating loss -log D(G(z)) through a fresh pass of D.
        logits_gen = self.D(fake)
        loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        x = self._generate(z).view(n, 1, 28, 28)
        return (x + 1.0) / 2.0
