"""Model-specific tests of the dcgan, wgan-gp and vae baselines (CPU, seconds).

The protocol contract shared by every generator is tested elsewhere; here each test
checks a property of one model's losses, bounds or likelihood.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genbench.config import make_config
from genbench.registry import get_generator
from genbench_baselines.dcgan import DCGAN, SNDCGAN
from genbench_baselines.vae import VAE, discretized_logistic_log_prob, discretized_logistic_mean
from genbench_baselines.wgan_gp import WGANGP


def _tiny(cls, **overrides):
    torch.manual_seed(0)
    return cls(make_config(cls, {**cls.tiny_config, **overrides}))


def _digit_like_batch(n: int = 16) -> torch.Tensor:
    """Fixed uint8 ``[n,1,28,28]`` images: a bright vertical bar at a per-image column on black."""
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        col = 6 + i % 16
        x[i, 0, 4:24, col : col + 3] = 255
    return x


@pytest.mark.parametrize("name", ["dcgan", "sn-dcgan", "wgan-gp", "vae"])
def test_sample_shape_range_and_determinism(name: str) -> None:
    model = _tiny(get_generator(name))
    model.train_step(_digit_like_batch(8), 0)
    model.eval()
    a = model.sample(6, torch.Generator().manual_seed(3))
    b = model.sample(6, torch.Generator().manual_seed(3))
    c = model.sample(6, torch.Generator().manual_seed(4))
    assert a.shape == (6, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", ["dcgan", "sn-dcgan", "wgan-gp", "vae"])
def test_training_is_deterministic_for_a_fixed_seed(name: str) -> None:
    logs = []
    for _ in range(2):
        model = _tiny(get_generator(name))
        logs.append([model.train_step(_digit_like_batch(8), s) for s in range(3)])
    assert logs[0] == logs[1]
    assert all(isinstance(v, float) and math.isfinite(v) for log in logs[0] for v in log.values())


# -- dcgan ------------------------------------------------------------------------------

def test_dcgan_discriminator_learns_to_separate_a_fixed_batch() -> None:
    model = _tiny(DCGAN, d_channels=8)
    real = _digit_like_batch().float().div(127.5).sub(1.0)
    with torch.no_grad():
        fake = model.G(torch.randn(real.shape[0], model.config.latent_dim))
    losses = []
    for _ in range(30):
        loss = model.discriminator_loss(real, fake)
        model.opt_d.zero_grad()
        loss.backward()
        model.opt_d.step()
        losses.append(loss.item())
    # Starts near 2 ln 2 (D cannot tell the two apart) and must fall well below it.
    assert losses[0] == pytest.approx(2 * math.log(2), abs=0.15)
    assert losses[-1] < 0.5 * losses[0]


def test_dcgan_train_step_updates_both_players() -> None:
    model = _tiny(DCGAN)
    g0 = [p.detach().clone() for p in model.G.parameters()]
    d0 = [p.detach().clone() for p in model.D.parameters()]
    model.train_step(_digit_like_batch(8), 0)
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.D.parameters(), strict=True))



def test_sn_dcgan_makes_each_discriminator_layer_1_lipschitz() -> None:
    """Miyato et al. 2018: W / sigma_max(W), sigma_max by power iteration (one per training pass),
    with conv kernels reshaped to [out, in*kh*kw]; the discriminator then has no BatchNorm."""
    model = _tiny(SNDCGAN, d_channels=6)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.D.modules())
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    model.D.train()
    for _ in range(30):  # power iterations converge
        model.D(x)
    layers = [m for m in model.D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 3
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        raw = torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=1e-3)
        assert raw != pytest.approx(1.0, abs=0.05)  # the constraint comes from the normalisation


def test_sn_dcgan_differs_from_dcgan_in_the_discriminator_only() -> None:
    """Same config, same seed: identical generators; dcgan's own D is unchanged (BatchNorm, no parametrization)."""
    plain, sn = _tiny(DCGAN), _tiny(SNDCGAN)
    assert sn.config == plain.config
    for a, b in zip(plain.G.state_dict().values(), sn.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.D.modules())
    assert not any(hasattr(m, "parametrizations") for m in plain.D.modules())

# -- wgan-gp ----------------------------------------------------------------------------

class _LinearCritic(nn.Module):
    """``D(x) = <w, x>``: its gradient norm is ||w|| everywhere."""

    def __init__(self, norm: float) -> None:
        super().__init__()
        w = torch.randn(784)
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


@pytest.mark.parametrize("norm, penalty", [(1.0, 0.0), (3.0, 4.0), (0.5, 0.25)])
def test_wgan_gp_penalty_of_a_linear_critic_is_known(norm: float, penalty: float) -> None:
    model = _tiny(WGANGP)
    model.D = _LinearCritic(norm)
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    fake = torch.rand(8, 1, 28, 28) * 2 - 1
    assert model.gradient_penalty(real, fake).item() == pytest.approx(penalty, abs=1e-5)


def test_wgan_gp_critic_loss_falls_when_training_the_critic_only() -> None:
    model = _tiny(WGANGP, d_channels=8, lr=1e-3)
    real = _digit_like_batch().float().div(127.5).sub(1.0)
    with torch.no_grad():
        fake = model.G(torch.randn(real.shape[0], model.config.latent_dim))
    losses = []
    for _ in range(30):
        loss, _, _, _ = model.critic_loss(real, fake)
        model.opt_d.zero_grad()
        loss.backward()
        model.opt_d.step()
        losses.append(loss.item())
    # The critic separates the two batches (W estimate up) while keeping the penalty bounded.
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 5.0


def test_wgan_gp_generator_moves_every_n_critic_th_step_only() -> None:
    model = _tiny(WGANGP, n_critic=3)
    batch = _digit_like_batch(8)
    updated = []
    for step in range(6):
        before = [p.detach().clone() for p in model.G.parameters()]
        model.train_step(batch, step)
        updated.append(any(not torch.equal(a, b) for a, b in zip(before, model.G.parameters(), strict=True)))
    assert updated == [False, False, True, False, False, True]


# -- vae --------------------------------------------------------------------------------

@pytest.mark.parametrize("loc, log_scale", [(0.3, -7.0), (0.5, -3.0), (-0.4, -1.0), (1.3, 0.5), (0.0, 4.0)])
def test_discretized_logistic_is_a_distribution_over_256_values(loc: float, log_scale: float) -> None:
    values = torch.arange(256, dtype=torch.uint8).view(256, 1)
    log_p = discretized_logistic_log_prob(values, torch.tensor([loc]), torch.tensor([log_scale])).double()
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-5)
    # Parity with the textbook definition: CDF differences over the bins, edges taking the tails.
    s = math.exp(log_scale)
    cdf = lambda t: torch.sigmoid((t - loc) / s)  # noqa: E731
    v = torch.arange(256, dtype=torch.float64)
    upper = torch.where(v == 255, torch.ones_like(v), cdf((v + 0.5) / 255))
    lower = torch.where(v == 0, torch.zeros_like(v), cdf((v - 0.5) / 255))
    p_ref = upper - lower
    assert torch.allclose(log_p.squeeze(1).exp(), p_ref, atol=1e-6)
    mean_ref = (p_ref * v).sum().item() / 255
    mean = discretized_logistic_mean(torch.tensor([loc]), torch.tensor([log_scale])).item()
    assert mean == pytest.approx(mean_ref, abs=1e-5)


def test_discretized_logistic_is_finite_far_from_the_data() -> None:
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    log_p = discretized_logistic_log_prob(x, torch.tensor([5.0, -4.0, -3.0]), torch.tensor([-7.0, -7.0, -7.0]))
    assert torch.isfinite(log_p).all() and (log_p < -100).all()


def test_vae_negative_elbo_decreases() -> None:
    model = _tiny(VAE, lr=3e-3)
    batch = _digit_like_batch()
    losses = [model.train_step(batch, s)["loss"] for s in range(20)]
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3


def test_vae_iwae_bounds_order_and_match_the_elbo_at_k1() -> None:
    model = _tiny(VAE)
    batch = _digit_like_batch(8)
    for s in range(30):
        model.train_step(batch, s)
    model.eval()
    x = batch[:2].repeat(500, 1, 1, 1)  # many independent draws of the same two images
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = model.elbo(x)
    iwae1 = model.log_likelihood(x, k=1, generator=g)
    # IWAE_1 and the closed-form-KL ELBO are unbiased estimates of the same number.
    se = math.sqrt(elbo.var().item() / len(x) + iwae1.var().item() / len(x))
    assert abs(iwae1.mean().item() - elbo.mean().item()) < 5 * se
    bounds = [model.log_likelihood(batch, k=k, generator=g).mean().item() for k in (1, 10, 100)]
    assert bounds[0] <= bounds[1] <= bounds[2]
    assert bounds[2] >= elbo.mean().item()


def test_vae_iwae_does_not_depend_on_the_chunk_size() -> None:
    batch = _digit_like_batch(6)
    whole = _tiny(VAE, iwae_chunk=10_000).log_likelihood(batch, k=20, generator=torch.Generator().manual_seed(5))
    chunked = _tiny(VAE, iwae_chunk=7).log_likelihood(batch, k=20, generator=torch.Generator().manual_seed(5))
    assert whole.shape == (6,)
    assert torch.allclose(whole, chunked, rtol=1e-6, atol=1e-3)


def test_vae_reconstruct_shape_and_range() -> None:
    model = _tiny(VAE)
    model.eval()
    r = model.reconstruct(_digit_like_batch(5))
    assert r.shape == (5, 1, 28, 28) and r.min() >= 0.0 and r.max() <= 1.0
