"""dcgan: deep convolutional GAN (Radford, Metz & Chintala 2016, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks"),
and sn-dcgan: the same GAN with a spectrally normalised discriminator (Miyato et al. 2018).

Sized for 28x28 images. Generator: ``z -> Linear -> [2c,7,7] -> ConvT -> [c,14,14]
-> ConvT -> [1,28,28]`` with BatchNorm + ReLU between layers and ``tanh`` at the
output. Discriminator: two stride-2 convolutions ``[1,28,28] -> [c,14,14] ->
[2c,7,7]`` with LeakyReLU(0.2) (BatchNorm on every layer but the input one, as in
the paper) and a linear layer to one logit. Weights start from N(0, 0.02) and both
players use Adam (lr 2e-4, betas (0.5, 0.999)), the paper's settings.

Loss: the non-saturating GAN loss of Goodfellow et al. 2014: D minimises the binary
cross-entropy of real -> 1 and fake -> 0; G minimises ``-log D(G(z))``.
One ``train_step`` = one D update and one G update on one batch.

sn-dcgan differs in D alone: every layer's weight is divided by its largest singular
value (one power iteration per training forward pass, PyTorch's
``parametrizations.spectral_norm``), which bounds D's Lipschitz constant; D then has no
BatchNorm, as in Miyato et al.'s models. Everything else, including the config, is
dcgan's, so the two rows of a leaderboard differ by this one lever (results/levers/README.md, "Cheap levers").

``sample`` runs the generator in whatever mode the caller set; the harness calls
``eval()`` first, so BatchNorm uses its running statistics, which were collected on
the generator's own outputs during training (the same z ~ N(0, I) as at sampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench import Capability, Generator, register_generator, to_signed
from genbench.search_space import Choice, LogUniform, Uniform


@dataclass
class DCGANConfig:
    latent_dim: int = 100  # Radford et al. 2016: 100-d noise
    # c: feature maps at 14x14 (2c at 7x7). 32 rather than the paper's wider nets: on a
    # CPU budget the cheaper step buys more updates, which mattered more than width
    # (learning curves in results/levers/README.md).
    g_channels: int = 32
    d_channels: int = 32
    lr: float = 2e-4  # Radford et al. 2016, both players
    beta1: float = 0.5  # Radford et al. 2016: 0.9 made training oscillate
    beta2: float = 0.999
    batch_size: int = 32  # paper: 128; smaller batches give more updates per image seen


def _init_weights(module: nn.Module) -> None:
    """Radford et al. 2016: every weight from N(0, 0.02); BatchNorm scale from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGenerator(nn.Module):
    """``z [B,latent_dim] -> images [B,1,28,28]`` in [-1, 1]."""

    def __init__(self, latent_dim: int, c: int) -> None:
        super().__init__()
        self.c = c
        self.project = nn.Linear(latent_dim, 2 * c * 7 * 7)
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),  # 7 -> 14
            nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.project(z).view(-1, 2 * self.c, 7, 7))


class DCDiscriminator(nn.Module):
    """``images [B,1,28,28] in [-1,1] -> logits [B]``."""

    def __init__(self, c: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28 -> 14; no BN on the input layer
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),  # 14 -> 7
            nn.BatchNorm2d(2 * c) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


@register_generator
class DCGAN(Generator):
    name = "dcgan"
    Config = DCGANConfig
    capabilities = Capability.SAMPLE
    tiny_config = {"latent_dim": 8, "g_channels": 4, "d_channels": 4, "batch_size": 8}
    # Lucic et al. 2018's ranges for the Adam GANs (their Table 2): lr and beta1; batch size around ours.
    search_space = {"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 0.9), "batch_size": Choice((16, 32, 64))}
    spectral_norm = False  # a property of the model, not a setting: sn-dcgan is its own row

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        self.G = DCGenerator(config.latent_dim, config.g_channels)
        self.D = DCDiscriminator(config.d_channels, batch_norm=not self.spectral_norm)
        self.apply(_init_weights)
        if self.spectral_norm:
            # After the init, so the parametrization keeps the initialised weight as its `original`.
            for m in self.D.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(m)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """BCE of real -> 1 and fake -> 0; both ``[B,1,28,28]`` in [-1, 1].

        Real and fake go through D as separate batches, as in the paper, so
        BatchNorm never mixes their statistics.
        """
        logits_real = self.D(real)
        logits_fake = self.D(fake)
        return F.binary_cross_entropy_with_logits(
            logits_real, torch.ones_like(logits_real)
        ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        real = to_signed(batch)
        z = torch.randn(real.shape[0], self.config.latent_dim, device=real.device)
        fake = self.G(z)

        # Discriminator on G(z).detach(): G gets no gradient from D's loss.
        loss_d = self.discriminator_loss(real, fake.detach())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # Generator: non-saturating loss -log D(G(z)) through the updated D.
        logits_gen = self.D(fake)
        loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return (self.G(z) + 1.0) / 2.0


@register_generator
class SNDCGAN(DCGAN):
    """dcgan with spectral normalisation of every discriminator layer (Miyato et al. 2018)."""

    name = "sn-dcgan"
    spectral_norm = True
