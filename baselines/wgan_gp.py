"""wgan-gp: Wasserstein GAN with gradient penalty (Gulrajani, Ahmed, Arjovsky,
Dumoulin & Courville 2017, "Improved Training of Wasserstein GANs").

The critic D estimates the Wasserstein-1 distance ``E[D(real)] - E[D(fake)]``; the
1-Lipschitz constraint is enforced softly by penalising ``lambda * (||grad_x D(x_hat)|| - 1)^2``
on random interpolates ``x_hat`` of real and fake images (lambda = 10, the paper's
value). The critic has no BatchNorm: the penalty is per example, and BatchNorm would
couple the examples of a batch (the paper drops it from the critic for this reason).

How steps map onto ``train_step`` calls: every call consumes one batch of real images
and makes one critic update on it; every ``n_critic``-th call (``(step + 1) %
n_critic == 0``) also makes one generator update with a fresh batch of noise. So the
paper's "n_critic critic iterations per generator iteration" holds, and a budget in
images seen counts every real image the critic looked at.

Networks sized for 28x28: generator ``z -> Linear -> [2c,7,7] -> ConvT -> [c,14,14]
-> ConvT -> [1,28,28]`` with BatchNorm + ReLU and ``tanh`` out (the paper keeps
BatchNorm in the generator); critic: two stride-2 convolutions with LeakyReLU(0.2)
and a linear layer to one unbounded score.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genbench import Capability, Generator, register_generator, to_signed
from genbench.search_space import Choice, LogUniform, Uniform


@dataclass
class WGANGPConfig:
    latent_dim: int = 128  # Gulrajani et al. 2017 use 128-d noise
    # c: feature maps at 14x14 (2c at 7x7). Paper code: 64. 32 costs less per image, and in
    # the same training time it scored better than 64 (results/levers/README.md).
    g_channels: int = 32
    d_channels: int = 32
    # Paper: n_critic 5, Adam(1e-4, (0.0, 0.9)) [their MNIST code: beta1 0.5] over 200k
    # generator steps. A CPU budget of ~200k images allows ~1,500 generator steps,
    # so fewer critic steps per generator step and a larger lr are used here.
    n_critic: int = 2  # critic updates per generator update (paper: 5)
    gp_lambda: float = 10.0  # gradient-penalty weight (paper: 10)
    lr: float = 6e-4  # paper: 1e-4. Beat 2e-4 at 200k images, c=32 (learning curves, results/levers/README.md)
    beta1: float = 0.5  # paper: 0.0 (Algorithm 1) / 0.5 (their MNIST code)
    beta2: float = 0.9
    batch_size: int = 64  # paper: 64


class WGenerator(nn.Module):
    """``z [B,latent_dim] -> images [B,1,28,28]`` in [-1, 1]."""

    def __init__(self, latent_dim: int, c: int) -> None:
        super().__init__()
        self.c = c
        self.project = nn.Sequential(nn.Linear(latent_dim, 2 * c * 7 * 7), nn.BatchNorm1d(2 * c * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),  # 7 -> 14
            nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.project(z).view(-1, 2 * self.c, 7, 7))


class Critic(nn.Module):
    """``images [B,1,28,28] in [-1,1] -> scores [B]`` (unbounded, no BatchNorm)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


@register_generator
class WGANGP(Generator):
    name = "wgan-gp"
    Config = WGANGPConfig
    capabilities = Capability.SAMPLE
    tiny_config = {"latent_dim": 8, "g_channels": 4, "d_channels": 4, "n_critic": 2, "batch_size": 8}
    # Lucic et al. 2018 search n_critic in {1, 5} and lambda log-uniformly around the paper's 10.
    search_space = {"lr": LogUniform(1e-5, 1e-2), "beta1": Uniform(0.0, 0.9), "n_critic": Choice((1, 2, 5)),
                    "gp_lambda": LogUniform(1.0, 100.0), "batch_size": Choice((32, 64, 128))}

    def __init__(self, config: WGANGPConfig) -> None:
        super().__init__(config)
        if config.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {config.n_critic}")
        self.G = WGenerator(config.latent_dim, config.g_channels)
        self.D = Critic(config.d_channels)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)

    def gradient_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """``mean((||grad D(x_hat)||_2 - 1)^2)`` on ``x_hat = eps*real + (1-eps)*fake``, eps ~ U[0,1] per example."""
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
        # create_graph: the penalty is itself differentiated w.r.t. the critic's weights.
        (grad,) = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()

    def critic_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(loss, E[D(real)], E[D(fake)], penalty)``; loss = E[D(fake)] - E[D(real)] + lambda * penalty."""
        score_real = self.D(real).mean()
        score_fake = self.D(fake).mean()
        penalty = self.gradient_penalty(real, fake)
        return score_fake - score_real + self.config.gp_lambda * penalty, score_real, score_fake, penalty

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        real = to_signed(batch)
        b = real.shape[0]
        with torch.no_grad():
            fake = self.G(torch.randn(b, self.config.latent_dim, device=real.device))
        loss_d, score_real, score_fake, penalty = self.critic_loss(real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        if (step + 1) % self.config.n_critic == 0:
            fake = self.G(torch.randn(b, self.config.latent_dim, device=real.device))
            loss_g = -self.D(fake).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        else:
            # The same quantity from the critic's pass, so every step logs the same keys.
            loss_g = -score_fake
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "wasserstein": (score_real - score_fake).item(),
            "gradient_penalty": penalty.item(),
        }

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return (self.G(z) + 1.0) / 2.0
