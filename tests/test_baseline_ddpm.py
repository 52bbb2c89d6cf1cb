"""Model-specific tests of the ddpm baseline (CPU, seconds).

The protocol contract shared by every generator is tested elsewhere; here each test
checks a property of the diffusion's schedule, samplers, bound or inversion.
"""

from __future__ import annotations

import math

import pytest
import torch

from genbench.config import make_config
from genbench_baselines.ddpm import (
    DDPM,
    IDDPM,
    NoiseSchedule,
    _betas,
    discretized_gaussian_log_likelihood,
    normal_kl,
)


def _tiny(**overrides) -> DDPM:
    torch.manual_seed(0)
    return DDPM(make_config(DDPM, {**DDPM.tiny_config, **overrides}))


def _digit_like_batch(n: int = 8) -> torch.Tensor:
    """Fixed uint8 ``[n,1,28,28]`` images: a bright vertical bar at a per-image column on black."""
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        col = 6 + (3 * i) % 16
        x[i, 0, 4:24, col : col + 3] = 255
        x[i, 0, 12:15, 4:24] = 128
    return x


def test_training_steps_decrease_the_loss_on_a_fixed_batch() -> None:
    model = _tiny(lr=3e-3, warmup_steps=1)
    x = _digit_like_batch()
    x0 = (x.float() / 255) * 2 - 1
    # A fixed set of (t, noise) pairs, so the before/after losses differ only by the weights.
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, model.schedule.num_timesteps, (4, x.shape[0]), generator=g).flatten()
    noise = torch.randn(4 * x.shape[0], 1, 28, 28, generator=g)
    xs = x0.repeat(4, 1, 1, 1)

    def fixed_loss() -> float:
        with torch.no_grad():
            return torch.mean((model.net(model.schedule.add_noise(xs, t, noise), t) - noise) ** 2).item()

    before = fixed_loss()
    model.train()
    for step in range(40):
        model.train_step(x, step)
    assert fixed_loss() < 0.7 * before


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sample_shape_range_and_determinism(sampler: str) -> None:
    model = _tiny(sampler=sampler)
    model.train_step(_digit_like_batch(), 0)
    model.eval()
    a = model.sample(5, torch.Generator().manual_seed(3))
    b = model.sample(5, torch.Generator().manual_seed(3))
    c = model.sample(5, torch.Generator().manual_seed(4))
    assert a.shape == (5, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_state_dict_carries_the_ema_weights_used_for_sampling() -> None:
    model = _tiny(sample_batch_size=2)  # several chunks, each drawn from the generator in turn
    for step in range(3):
        model.train_step(_digit_like_batch(), step)
    assert any(k.startswith("ema.") for k in model.state_dict())
    torch.manual_seed(123)  # a different initialization, overwritten by the checkpoint
    restored = DDPM(make_config(DDPM, {**DDPM.tiny_config, "sample_batch_size": 2}))
    restored.load_state_dict(model.state_dict())
    model.eval()
    restored.eval()
    a = model.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(a, restored.sample(5, torch.Generator().manual_seed(0)))


def test_sampling_reads_the_ema_weights_only() -> None:
    """Samples come from the EMA network: changing the raw network leaves them as they were, changing the
    EMA does not. At the gate suite's short budget raw weights sample as well as the EMA (the metric gate
    cannot tell them apart: results/baselines/README.md), so this is the guard against sampling the wrong ones."""
    model = _tiny()
    for step in range(3):
        model.train_step(_digit_like_batch(), step)
    model.eval()
    before = model.sample(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in model.net.parameters():
            p.normal_(0.0, 0.5)
    assert torch.equal(before, model.sample(4, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        for p in model.ema.parameters():
            p.normal_(0.0, 0.5)
    assert not torch.equal(before, model.sample(4, torch.Generator().manual_seed(0)))


def test_schedule_closed_forms_match_direct_computation() -> None:
    config = make_config(DDPM, {"num_timesteps": 40})
    s = NoiseSchedule(_betas(config))
    betas = s.betas.double()
    abar = torch.ones(())
    for t in range(40):
        abar = abar * (1 - betas[t])
        assert math.isclose(s.alphas_cumprod[t].item(), abar.item(), rel_tol=1e-5)
    # Posterior q(x_{t-1} | x_t, x_0) by Bayes' rule on the two Gaussians, in precision form.
    x0, xt = torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28)
    for t in (1, 7, 39):
        a_t, ab_prev = 1 - betas[t], s.alphas_cumprod[t - 1].double()
        precision = a_t / betas[t] + 1 / (1 - ab_prev)
        var = 1 / precision
        mean = var * (a_t.sqrt() / betas[t] * xt.double() + ab_prev.sqrt() / (1 - ab_prev) * x0.double())
        got_mean, got_logvar = s.posterior(x0, xt, torch.full((6,), t))
        assert torch.allclose(got_mean.double(), mean, atol=1e-4)
        assert math.isclose(got_logvar[0, 0, 0, 0].exp().item(), var.item(), rel_tol=1e-4)


def test_ddim_with_eta_one_is_the_ddpm_posterior_step() -> None:
    """Song et al. 2021: the generalized step with eta = 1 is the DDPM ancestral step."""
    s = NoiseSchedule(_betas(make_config(DDPM, {})))
    g = torch.Generator().manual_seed(0)
    xt, eps, noise = (torch.randn(4, 1, 28, 28, generator=g) for _ in range(3))
    for t, t_prev in ((999, 949), (500, 499), (20, 0), (0, -1)):
        tt, tp = torch.full((4,), t), torch.full((4,), t_prev)
        ddim = s.ddim_step(xt, eps, tt, tp, eta=1.0, noise=noise, clip_x0=True)
        ddpm = s.ddpm_step(xt, eps, tt, tp, noise)
        assert torch.allclose(ddim, ddpm, atol=1e-4), (t, t_prev)


def test_learned_log_variance_spans_beta_tilde_to_beta() -> None:
    """Nichol & Dhariwal 2021 eq. 15 at the ends of v's range, on the clipped beta_tilde."""
    s = NoiseSchedule(_betas(make_config(DDPM, {"num_timesteps": 100})))
    t = torch.tensor([0, 1, 50, 99])
    zeros, ones = torch.zeros(4, 1, 28, 28), torch.ones(4, 1, 28, 28)
    assert torch.allclose(s.model_log_variance(t, zeros)[:, 0, 0, 0], s.posterior_log_variance[t])
    assert torch.allclose(s.model_log_variance(t, ones)[:, 0, 0, 0], s.betas[t].log())
    half = s.model_log_variance(t, 0.5 * ones)[:, 0, 0, 0]
    assert torch.allclose(half, 0.5 * (s.posterior_log_variance[t] + s.betas[t].log()))


def test_ancestral_step_with_learned_variance() -> None:
    """frac = 0 is the fixed-variance step; frac = 1 draws with the pair's beta; the last step is noiseless."""
    s = NoiseSchedule(_betas(make_config(DDPM, {})))
    g = torch.Generator().manual_seed(0)
    xt, eps, noise = (torch.randn(3, 1, 28, 28, generator=g) for _ in range(3))
    zero_noise = torch.zeros_like(noise)
    for t, t_prev in ((999, 949), (300, 250), (20, 0)):
        tt, tp = torch.full((3,), t), torch.full((3,), t_prev)
        fixed = s.ddpm_step(xt, eps, tt, tp, noise)
        assert torch.allclose(s.ddpm_step(xt, eps, tt, tp, noise, torch.zeros_like(xt)), fixed, atol=1e-5)
        mean = s.ddpm_step(xt, eps, tt, tp, zero_noise, torch.ones_like(xt))
        beta = 1 - s.alphas_cumprod[t] / s.alphas_cumprod[t_prev]
        wide = s.ddpm_step(xt, eps, tt, tp, noise, torch.ones_like(xt))
        assert torch.allclose(wide - mean, beta.sqrt() * noise, atol=1e-5)
    last = (torch.full((3,), 20), torch.full((3,), -1))
    assert torch.equal(s.ddpm_step(xt, eps, *last, noise, torch.full_like(xt, 0.7)),
                       s.ddpm_step(xt, eps, *last, zero_noise, torch.full_like(xt, 0.7)))


def test_hybrid_loss_trains_the_mean_by_l_simple_and_the_variance_by_l_vlb() -> None:
    """Nichol & Dhariwal 2021 sec. 3.1: L_hybrid = L_simple + lambda L_vlb with a stop-gradient on the
    mean inside L_vlb, so the eps output's gradient is L_simple's alone, and the v output's is L_vlb's."""
    model = _tiny(learn_sigma=True, vlb_weight=0.01)
    x0 = _digit_like_batch(4).float() / 127.5 - 1
    t = torch.tensor([0, 3, 20, 49])
    noise = torch.randn_like(x0)
    x_t = model.schedule.add_noise(x0, t, noise)
    out = torch.randn(4, 2, 28, 28, requires_grad=True)
    loss, logs = model.training_loss(x0, x_t, t, noise, out)
    (grad,) = torch.autograd.grad(loss, out)
    assert torch.allclose(grad[:, :1], 2 * (out[:, :1].detach() - noise) / noise.numel(), atol=1e-7)
    frac = (out[:, 1:].detach() + 1) / 2
    frac.requires_grad_(True)
    vlb = model._vlb_terms(x0, x_t, t, out[:, :1].detach(), frac).mean()
    (grad_frac,) = torch.autograd.grad(vlb * 0.01 * 50 / (784 * math.log(2)), frac)
    assert torch.allclose(grad[:, 1:], grad_frac / 2, rtol=1e-4, atol=1e-9)
    assert grad[:, 1:].abs().sum() > 0
    assert math.isclose(logs["loss_simple"] + 0.01 * logs["vlb_bits_per_dim"], loss.item(), rel_tol=1e-5)


def test_discretized_gaussian_masses_sum_to_one() -> None:
    values = torch.arange(256).float() * 2 / 255 - 1  # the 256 pixel levels in [-1, 1]
    for mean in (-1.3, -1.0, -0.2, 0.5, 0.999, 1.4):
        for log_scale in (-7.0, -5.0, -2.0, 0.0, 1.0):
            logp = discretized_gaussian_log_likelihood(
                values, torch.full_like(values, mean), torch.full_like(values, log_scale)
            )
            assert torch.isfinite(logp).all()
            assert math.isclose(logp.double().exp().sum().item(), 1.0, abs_tol=1e-5), (mean, log_scale)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_vlb_estimator_is_unbiased_for_the_full_sum_on_a_tiny_T(learn_sigma: bool) -> None:
    """The stratified importance-sampled bound averages to ``L_T + sum_t L_t`` computed term by term,
    and its reported per-image stderr matches the spread of repeated estimates."""
    model = _tiny(num_timesteps=8, schedule="cosine", nll_timesteps=2, nll_replicates=2, learn_sigma=learn_sigma)
    model.train()
    for step in range(5):
        model.train_step(_digit_like_batch(), step)
    model.eval()
    x = _digit_like_batch(1)
    x0 = (x.float() / 255) * 2 - 1
    torch.manual_seed(0)
    m = 600  # noise draws per term for the reference
    xs = x0.expand(m, 1, 28, 28)
    with torch.no_grad():
        full = model.schedule.prior_kl(x0).double().sum()
        full_var = torch.zeros((), dtype=torch.float64)
        for t in range(8):
            terms = model._vlb_term(xs, torch.full((m,), t), torch.randn_like(xs)).double()
            full += terms.mean()
            full_var += terms.var() / m
    n = 1500  # independent estimates, in chunks to keep memory small
    chunks = [model.nll_with_stderr(x.expand(300, 1, 28, 28)) for _ in range(n // 300)]
    nll = torch.cat([c[0] for c in chunks]).double()
    stderr = torch.cat([c[1] for c in chunks]).double()
    tol = 4 * math.sqrt(full_var.item() + nll.var().item() / n)
    assert abs(nll.mean().item() - full.item()) < tol, (nll.mean().item(), full.item(), tol)
    # E[stderr^2] is the estimator's variance.
    assert 0.75 < stderr.pow(2).mean().item() / nll.var().item() < 1.33
    # log_likelihood is minus the same estimator and leaves the stderr behind.
    ll = model.log_likelihood(x.expand(4, 1, 28, 28))
    assert ll.shape == (4,) and model.last_nll_stderr.shape == (4,)


def test_ddim_inversion_then_generation_reconstructs_with_fine_steps() -> None:
    """DDIM is the Euler discretization of an ODE, and inversion runs the same steps backwards;
    with many small steps the round trip is close to the identity whatever the network,
    so a wrong coefficient, sign or off-by-one timestep in either direction shows up here.
    The weights are randomized so that eps_theta is a non-trivial function of (x, t)."""
    model = _tiny(num_timesteps=1000, reconstruct_steps=100)
    with torch.no_grad():
        for p in model.ema.parameters():
            p.normal_(0.0, 0.2)
    model.eval()
    x = _digit_like_batch(4)
    latent = model.encode(x)
    naive = model.schedule.alpha_bar(torch.tensor([999])).sqrt() * ((x.float() / 255) * 2 - 1)
    assert (latent - naive).abs().mean() > 0.1  # the network moved the latent (eps is not ~0)
    r = model.reconstruct(x)
    mse = ((r - x.float() / 255) ** 2).flatten(1).mean(1)
    psnr = 10 * torch.log10(1 / mse)
    assert psnr.min() > 30.0, psnr  # measured ~35 dB at 100 steps, ~43 dB at 250, ~6 dB at 5
    coarse = model.__class__(make_config(DDPM, {**DDPM.tiny_config, "num_timesteps": 1000, "reconstruct_steps": 5}))
    coarse.load_state_dict(model.state_dict())
    coarse.eval()
    coarse_psnr = 10 * torch.log10(1 / ((coarse.reconstruct(x) - x.float() / 255) ** 2).flatten(1).mean(1))
    assert coarse_psnr.mean() < psnr.mean()  # finer steps -> closer inverse: the error is discretization


def test_iddpm_is_ddpm_with_the_cosine_schedule_and_learned_variances() -> None:
    """``iddpm`` is a name for a configuration, not a second implementation: trained on the same
    batches from the same seed it holds exactly the weights of ddpm with those two settings."""
    torch.manual_seed(0)
    improved = IDDPM(make_config(IDDPM, IDDPM.tiny_config))
    plain = _tiny(schedule="cosine", learn_sigma=True)
    assert (improved.config.schedule, improved.config.learn_sigma) == ("cosine", True)
    assert (DDPM.Config().schedule, DDPM.Config().learn_sigma) == ("linear", False)
    assert improved.net.conv_out.out_channels == 2
    torch.manual_seed(1)
    logs_i = [improved.train_step(_digit_like_batch(), step) for step in range(3)]
    torch.manual_seed(1)
    logs_p = [plain.train_step(_digit_like_batch(), step) for step in range(3)]
    assert logs_i == logs_p and "vlb_bits_per_dim" in logs_i[0]
    for a, b in zip(improved.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_the_reported_bound_is_that_of_the_chain_the_sampler_runs(learn_sigma: bool) -> None:
    """Each KL term of the evaluated bound compares q(x_{t-1} | x_t, x_0) with the reverse step the
    ancestral sampler takes (x0_hat clipped to [-1, 1]), not with an unclipped mean the sampler
    never uses; under the cosine schedule the unclipped one explodes at the last step."""
    model = _tiny(schedule="cosine", learn_sigma=learn_sigma)
    T = model.schedule.num_timesteps
    g = torch.Generator().manual_seed(3)
    x0 = _digit_like_batch(4).float() / 127.5 - 1
    noise = torch.randn(x0.shape, generator=g)
    out = 3 * torch.randn(4, 2 if learn_sigma else 1, 28, 28, generator=g)  # a poor eps, so x0_hat leaves [-1, 1]
    eps, frac = model._split(out)
    model._predict = lambda x_t, t: (eps, frac)
    for t_val in (T - 1, T // 2, 1):
        t = torch.full((4,), t_val)
        x_t = model.schedule.add_noise(x0, t, noise)
        step_mean = model.schedule.ddpm_step(x_t, eps, t, t - 1, torch.zeros_like(x_t), frac)
        mean_q, logvar_q = model.schedule.posterior(x0, x_t, t)
        logvar_p = (model.schedule.posterior(x0, x_t, t)[1] if frac is None
                    else model.schedule.model_log_variance(t, frac))
        expected = normal_kl(mean_q, logvar_q, step_mean, logvar_p).flatten(1).sum(1)
        got = model._vlb_term(x0, t, noise)
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4), t_val
        if t_val == T - 1:  # abar_{T-1} is tiny: the unclipped x0_hat multiplies eps's error
            assert (model._vlb_terms(x0, x_t, t, eps, frac) > 100 * got).all()
