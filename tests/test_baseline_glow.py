"""Model-specific tests of the glow baseline (CPU, seconds).

The protocol contract shared by every generator is tested in test_contract.py; here each test
checks a property of a normalizing flow: every layer inverts exactly, every log-determinant equals
the one autograd computes from the layer's Jacobian, and the density's change of units.
"""

from __future__ import annotations

import math

import pytest
import torch

from genbench.config import make_config
from genbench_baselines.glow import (
    PIXELS,
    ActNorm,
    Coupling,
    FlowStep,
    Glow,
    InvConv1x1,
    PixelAffine,
    squeeze,
    unsqueeze,
)


def _tiny(**overrides) -> Glow:
    torch.manual_seed(0)
    return Glow(make_config(Glow, {**Glow.tiny_config, **overrides}))


def _randomise(module: torch.nn.Module) -> None:
    """Move every parameter off its identity initialisation, so the tests see a general layer."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))


def _jacobian_log_det(layer, h: torch.Tensor) -> float:
    """log|det d layer(h) / dh| of one image, from autograd's full Jacobian."""
    jac = torch.autograd.functional.jacobian(lambda t: layer(t.view_as(h))[0].flatten(), h.flatten())
    return torch.linalg.slogdet(jac)[1].item()


@pytest.mark.parametrize("make", [
    lambda: ActNorm(4),
    lambda: InvConv1x1(4),
    lambda: Coupling(4, hidden=8),
    lambda: FlowStep(8, hidden=8),
])
def test_each_layer_inverts_and_its_log_det_is_the_jacobians(make):
    torch.manual_seed(0)
    layer = make().double()
    _randomise(layer)
    h = torch.randn(1, layer.actnorm.bias.shape[1] if isinstance(layer, FlowStep) else 4, 3, 3, dtype=torch.float64)
    out, log_det = layer(h)
    assert torch.allclose(layer.inverse(out), h, atol=1e-10)
    assert log_det.item() == pytest.approx(_jacobian_log_det(layer, h), abs=1e-8)


def test_pixel_affine_inverts_and_its_log_det_is_the_jacobians():
    layer = PixelAffine((1, 2, 2), min_std=0.5).double()
    _randomise(layer)
    v = torch.randn(1, 1, 2, 2, dtype=torch.float64)
    out, log_det = layer(v)
    assert torch.allclose(layer.inverse(out), v, atol=1e-12)
    assert log_det.item() == pytest.approx(_jacobian_log_det(layer, v), abs=1e-10)


def test_pixel_affine_init_whitens_each_position_but_never_below_one_bin():
    layer = PixelAffine((1, 1, 2), min_std=0.5)
    v = torch.tensor([[[[1.0, 3.0]]], [[[3.0, 3.0]]]])  # position 0 spreads (std sqrt 2), position 1 is constant
    layer.initialize(v)
    out, _ = layer(v)
    assert out[:, 0, 0, 0].tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert layer.log_scale[0, 0, 0, 1].item() == pytest.approx(-math.log(0.5))


def test_squeeze_is_inverted_by_unsqueeze_and_keeps_each_patch_together():
    h = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    s = squeeze(h)
    assert s.shape == (2, 4, 2, 2)
    assert sorted(s[0, :, 0, 0].tolist()) == [0.0, 1.0, 4.0, 5.0]  # the top-left 2x2 patch
    assert torch.equal(unsqueeze(s), h)


def test_whole_density_log_det_matches_autograd_on_a_tiny_flow():
    """log p(y) from the model equals the change-of-variables formula with autograd's Jacobian.

    The map y -> (factored-out half, final latent) is the flow; its density is the split prior times
    a standard normal, so log p(y) = log N(out; mean(kept), std(kept)) + log N(z) + log|det J|.
    """
    model = _tiny().double()
    _randomise(model)
    torch.manual_seed(2)
    y = torch.rand(1, 1, 28, 28, dtype=torch.float64) * 0.98 + 0.01

    def flow(flat: torch.Tensor) -> torch.Tensor:
        a = model.config.alpha
        s = a + (1 - 2 * a) * flat.view(1, 1, 28, 28)
        h = squeeze(model.pixel(torch.log(s) - torch.log1p(-s))[0])
        for step in model.scale1:
            h = step(h)[0]
        kept, out = h[:, :2], h[:, 2:]
        h = squeeze(kept)
        for step in model.scale2:
            h = step(h)[0]
        return torch.cat([out.flatten(), h.flatten(), kept.flatten()])

    z = flow(y.flatten())
    jac = torch.autograd.functional.jacobian(flow, y.flatten())[: PIXELS]
    log_det = torch.linalg.slogdet(jac)[1].item()
    out, final, kept = z[:392].view(1, 2, 14, 14), z[392:784], z[784:].view(1, 2, 14, 14)
    mean, log_std = model.prior1(kept)
    log_prior = torch.distributions.Normal(mean, log_std.exp()).log_prob(out).sum() \
        + torch.distributions.Normal(0.0, 1.0).log_prob(final).sum()
    assert model._log_density(y).item() == pytest.approx((log_prior + log_det).item(), abs=1e-6)


def test_log_likelihood_is_the_density_less_784_ln_256_and_reproducible_with_a_generator():
    model = _tiny()
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    a = model.log_likelihood(x, generator=torch.Generator().manual_seed(5))
    b = model.log_likelihood(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    expected = model._log_density((x.float() + u) / 256) - PIXELS * math.log(256)
    assert torch.allclose(a, expected)
    assert Glow.likelihood_is_bound


def test_actnorm_is_initialised_by_the_first_training_batch_not_by_earlier_likelihood_calls():
    model = _tiny()
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    model.log_likelihood(x[:2])  # what the harness's pre-check does before training
    assert not bool(model.actnorm_ready)
    assert torch.count_nonzero(model.scale1[0].actnorm.bias) == 0
    model.train()
    model.train_step(x, 0)
    assert bool(model.actnorm_ready)
    assert torch.count_nonzero(model.scale1[0].actnorm.bias) > 0
