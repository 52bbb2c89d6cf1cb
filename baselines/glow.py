"""glow: a multi-scale normalizing flow with invertible 1x1 convolutions (Kingma & Dhariwal 2018).

"Glow: Generative Flow with Invertible 1x1 Convolutions" (Kingma & Dhariwal; NeurIPS 2018), built on
the multi-scale affine-coupling architecture of RealNVP ("Density estimation using Real NVP", Dinh,
Sohl-Dickstein & Bengio; ICLR 2017), sized for minutes of CPU:

- **Dequantization and units.** The 8-bit image ``x`` becomes ``y = (x + u) / 256`` in [0, 1] with
  ``u ~ U[0, 1)^784`` (uniform dequantization, Theis, van den Oord & Bethge 2016), then
  ``v = logit(alpha + (1 - 2 alpha) y)`` (RealNVP, Sec. 4.1), whose log-Jacobian is added. The flow
  gives the density of ``y`` on [0, 1]; subtracting ``784 ln 256`` turns it into nats per image of the
  discrete 8-bit values (each value's bin is 1/256 wide), and by Jensen's inequality over ``u`` the
  result is a lower bound on ``log P(x)``: ``likelihood_is_bound = True`` (docs/your-own-model.md,
  "Likelihoods").
- **Architecture.** ``[1,28,28]`` is squeezed to ``[4,14,14]`` (each 2x2 patch into channels), and
  ``steps`` flow steps follow: actnorm, an invertible 1x1 convolution, an affine coupling. Half the
  channels are then factored out under a Gaussian whose mean and scale the kept half predicts
  (Glow's split prior), the kept half is squeezed to ``[8,7,7]``, and ``steps`` more flow steps end in
  a standard normal.
- **Flow step** (Glow, Table 1): actnorm ``(h + b) * exp(s)`` per channel, initialised from the first
  training batch so its output has zero mean and unit variance per channel; ``W h`` with ``W`` a
  random rotation at the start, ``log|det| = H W log|det W|``; affine coupling
  ``h_b -> (h_b + t(h_a)) * sigmoid(r(h_a) + 2)``, the network's last layer zero so each step starts
  as (nearly) the identity.

Sampling inverts every step from a standard normal draw at temperature 1, maps ``v`` back through the
sigmoid and reads each pixel's 8-bit value from its bin (the inverse of the dequantization).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench import Capability, Generator, register_generator
from genbench.search_space import Choice, LogUniform

PIXELS = 784
LEVELS = 256  # 8-bit values: the dequantized data's bins are 1/256 wide
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class GlowConfig:
    steps: int = 8  # flow steps per scale (Glow: 32 on CIFAR-10; 8 fits a minutes-long CPU budget)
    channels: int = 64  # hidden width of each coupling's network (Glow: 512)
    # logit transform's squeeze away from 0 and 1, where logit is infinite: MAF's 1e-6 for MNIST
    # (Papamakarios et al. 2017), not RealNVP's 0.05 for natural images, which packs MNIST's many
    # 0 and 255 pixels into a sliver of logit space that the flow must then stretch back out.
    alpha: float = 1e-6
    lr: float = 2e-3  # Adam; Glow's 1e-3 learns slower in a one-epoch budget, 3e-3 leaves less margin to diverge
    pixel_lr_scale: float = 10.0  # the per-pixel affine's learning rate over lr: its init sees one batch only
    warmup_steps: int = 200  # linear learning-rate warm-up (Glow warms up too): actnorm'd flows diverge without it
    grad_clip: float = 100.0  # global norm: caps the rare exploding first-epoch step, otherwise inactive
    batch_size: int = 64
    sample_batch: int = 500  # images per inverse pass when sampling: bounds memory only


def _gaussian_log_prob(z: Tensor, mean: Tensor | float = 0.0, log_std: Tensor | float = 0.0) -> Tensor:
    """Elementwise ``log N(z; mean, exp(log_std)^2)``."""
    log_std = torch.as_tensor(log_std, device=z.device)
    return -0.5 * (_LOG_2PI + 2 * log_std + ((z - mean) * torch.exp(-log_std)) ** 2)


def squeeze(h: Tensor) -> Tensor:
    """``[B,C,H,W] -> [B,4C,H/2,W/2]``: each 2x2 patch into channels (RealNVP, Fig. 3)."""
    b, c, hh, ww = h.shape
    h = h.view(b, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return h.reshape(b, 4 * c, hh // 2, ww // 2)


def unsqueeze(h: Tensor) -> Tensor:
    """Inverse of :func:`squeeze`."""
    b, c, hh, ww = h.shape
    h = h.view(b, c // 4, 2, 2, hh, ww).permute(0, 1, 4, 2, 5, 3)
    return h.reshape(b, c // 4, 2 * hh, 2 * ww)


class ActNorm(nn.Module):
    """Per-channel affine ``(h + bias) * exp(log_scale)``, data-initialised by :meth:`initialize`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    @torch.no_grad()
    def initialize(self, h: Tensor) -> None:
        self.bias.copy_(-h.mean(dim=(0, 2, 3), keepdim=True))
        self.log_scale.copy_(-torch.log(h.std(dim=(0, 2, 3), keepdim=True) + 1e-6))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        log_det = self.log_scale.sum() * h.shape[2] * h.shape[3]
        return (h + self.bias) * torch.exp(self.log_scale), log_det.expand(h.shape[0])

    def inverse(self, h: Tensor) -> Tensor:
        return h * torch.exp(-self.log_scale) - self.bias


class PixelAffine(nn.Module):
    """Per-pixel affine ``(v + bias) * exp(log_scale)`` on the logits, before any coupling.

    MNIST's pixels differ wildly: the border is 0 in every image, the centre takes every value. A
    per-channel actnorm cannot give each position its own scale, so the couplings would first have
    to learn the independent-pixels model; this layer starts there (initialised from the first
    training batch) and the couplings spend the budget on what pixels say about each other.
    """

    def __init__(self, shape: tuple[int, ...], min_std: float) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, *shape))
        self.log_scale = nn.Parameter(torch.zeros(1, *shape))
        self.min_std = min_std

    @torch.no_grad()
    def initialize(self, v: Tensor) -> None:
        self.bias.copy_(-v.mean(dim=0, keepdim=True))
        # A position constant in the first batch still spreads over its dequantization bin.
        self.log_scale.copy_(-torch.log(v.std(dim=0, keepdim=True).clamp_min(self.min_std)))

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor]:
        return (v + self.bias) * torch.exp(self.log_scale), self.log_scale.sum().expand(v.shape[0])

    def inverse(self, v: Tensor) -> Tensor:
        return v * torch.exp(-self.log_scale) - self.bias


class InvConv1x1(nn.Module):
    """``h -> W h`` over channels at every position; ``W`` starts as a random rotation (Glow, Sec. 3.2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linalg.qr(torch.randn(channels, channels))[0])

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        log_det = torch.linalg.slogdet(self.weight)[1] * h.shape[2] * h.shape[3]
        return F.conv2d(h, self.weight[:, :, None, None]), log_det.expand(h.shape[0])

    def inverse(self, h: Tensor) -> Tensor:
        return F.conv2d(h, torch.linalg.inv(self.weight)[:, :, None, None])


class Coupling(nn.Module):
    """Affine coupling: the first half of the channels sets a shift and scale of the second half."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.net = nn.Sequential(
            nn.Conv2d(self.half, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * (channels - self.half), 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)  # shift 0, scale sigmoid(2): each step starts near the identity
        nn.init.zeros_(self.net[-1].bias)

    def _shift_log_scale(self, ha: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.net(ha).chunk(2, dim=1)
        # |log scale| <= 2 (RealNVP's tanh bound): the inverse, which sampling runs, can never amplify
        # one step by more than e^2, where Glow's sigmoid scale lets it divide by a near-zero.
        return shift, 2.0 * torch.tanh(raw / 2.0)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        ha, hb = h[:, : self.half], h[:, self.half :]
        shift, log_scale = self._shift_log_scale(ha)
        return torch.cat([ha, (hb + shift) * torch.exp(log_scale)], dim=1), log_scale.flatten(1).sum(1)

    def inverse(self, h: Tensor) -> Tensor:
        ha, hb = h[:, : self.half], h[:, self.half :]
        shift, log_scale = self._shift_log_scale(ha)
        return torch.cat([ha, hb * torch.exp(-log_scale) - shift], dim=1)


class FlowStep(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv1x1(channels)
        self.coupling = Coupling(channels, hidden)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h, ld1 = self.actnorm(h)
        h, ld2 = self.invconv(h)
        h, ld3 = self.coupling(h)
        return h, ld1 + ld2 + ld3

    def inverse(self, h: Tensor) -> Tensor:
        return self.actnorm.inverse(self.invconv.inverse(self.coupling.inverse(h)))


class SplitPrior(nn.Module):
    """Glow's split: the factored-out half is Gaussian with a mean and log-scale the kept half predicts."""

    def __init__(self, kept: int, out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(kept, 2 * out, 3, padding=1)
        nn.init.zeros_(self.conv.weight)  # starts as a standard normal
        nn.init.zeros_(self.conv.bias)

    def forward(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.conv(kept).chunk(2, dim=1)
        return mean, log_std


@register_generator
class Glow(Generator):
    """Two-scale Glow over logit-transformed, uniformly dequantized pixels (Kingma & Dhariwal 2018)."""

    name = "glow"
    Config = GlowConfig
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD
    likelihood_is_bound = True  # uniform dequantization: E_u log p(y) - 784 ln 256 <= log P(x)
    tiny_config = {"steps": 1, "channels": 8, "batch_size": 8, "warmup_steps": 1, "sample_batch": 8}
    # The bound is what a flow is trained on and its samples are not its strength: tuned on validation NLL.
    primary_metric = "nll_bpd"
    search_space = {"lr": LogUniform(1e-4, 3e-3), "batch_size": Choice((32, 64, 128))}

    def __init__(self, config: GlowConfig) -> None:
        super().__init__(config)
        # The spread of a constant-0 pixel after dequantization and the logit: the narrowest a
        # position's initial scale may assume (computed on a fine grid over the bin).
        a = config.alpha
        s = a + (1 - 2 * a) * (torch.arange(4096, dtype=torch.float64) + 0.5) / 4096 / LEVELS
        self.pixel = PixelAffine((1, 28, 28), min_std=float((torch.log(s) - torch.log1p(-s)).std()))
        self.scale1 = nn.ModuleList(FlowStep(4, config.channels) for _ in range(config.steps))
        self.prior1 = SplitPrior(kept=2, out=2)
        self.scale2 = nn.ModuleList(FlowStep(8, config.channels) for _ in range(config.steps))
        pixel = list(self.pixel.parameters())
        rest = [p for p in self.parameters() if all(p is not q for q in pixel)]
        self.opt = torch.optim.Adam(
            [{"params": rest, "lr_scale": 1.0}, {"params": pixel, "lr_scale": config.pixel_lr_scale}], lr=config.lr
        )
        # Actnorm is initialised from the first training batch, not from whatever the harness's
        # pre-checks pass to log_likelihood before training (test images must not set parameters).
        self.register_buffer("actnorm_ready", torch.tensor(False))

    # -- density -------------------------------------------------------------------
    def _log_density(self, y: Tensor, init: bool = False) -> Tensor:
        """``log p(y)`` in nats per image for dequantized pixels ``y [B,1,28,28]`` in [0, 1]."""
        a = self.config.alpha
        s = a + (1 - 2 * a) * y
        v = torch.log(s) - torch.log1p(-s)  # logit
        # d logit(s) / dy = (1 - 2 alpha) / (s (1 - s)): the logit transform's log-Jacobian, per pixel
        log_det = (math.log(1 - 2 * a) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        if init:
            self.pixel.initialize(v)
        v, ld = self.pixel(v)
        log_det = log_det + ld
        h = squeeze(v)
        for step in self.scale1:
            if init:
                step.actnorm.initialize(h)
            h, ld = step(h)
            log_det = log_det + ld
        kept, out = h[:, :2], h[:, 2:]
        mean, log_std = self.prior1(kept)
        log_p = _gaussian_log_prob(out, mean, log_std).flatten(1).sum(1)
        h = squeeze(kept)
        for step in self.scale2:
            if init:
                step.actnorm.initialize(h)
            h, ld = step(h)
            log_det = log_det + ld
        return log_p + _gaussian_log_prob(h).flatten(1).sum(1) + log_det

    def log_likelihood(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Lower bound on ``log P(x)`` of uint8 images ``[B,1,28,28]``: ``[B]`` nats per image.

        One draw of dequantization noise per image, from ``generator`` (torch's global RNG without one).
        """
        u = torch.rand(x.shape, generator=generator, device=x.device)
        y = (x.float() + u) / LEVELS
        return self._log_density(y) - PIXELS * math.log(LEVELS)  # density on [0, 1] -> 8-bit values

    # -- training ------------------------------------------------------------------
    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        y = (batch.float() + torch.rand(batch.shape, device=batch.device)) / LEVELS
        if not bool(self.actnorm_ready):
            with torch.no_grad():
                self._log_density(y, init=True)
            self.actnorm_ready.fill_(True)
        nll = -(self._log_density(y) - PIXELS * math.log(LEVELS)).mean()
        # The warm-up reads the harness's step count, so a resumed run continues it exactly.
        for group in self.opt.param_groups:
            group["lr"] = group["lr_scale"] * self.config.lr * min(1.0, (step + 1) / max(1, self.config.warmup_steps))
        self.opt.zero_grad(set_to_none=True)
        nll.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.grad_clip)
        self.opt.step()
        return {"loss": nll.item(), "bits_per_dim": nll.item() / (PIXELS * math.log(2))}

    # -- sampling ------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``[n,1,28,28]`` float in [0,1] (multiples of 1/255), at temperature 1."""
        chunks = [self._sample(min(self.config.sample_batch, n - i), generator)
                  for i in range(0, n, self.config.sample_batch)]
        return torch.cat(chunks)

    def _sample(self, n: int, generator: torch.Generator) -> Tensor:
        h = torch.randn(n, 8, 7, 7, generator=generator, device=self.device)
        for step in reversed(self.scale2):
            h = step.inverse(h)
        kept = unsqueeze(h)
        mean, log_std = self.prior1(kept)
        eps = torch.randn(mean.shape, generator=generator, device=self.device)
        h = torch.cat([kept, mean + torch.exp(log_std) * eps], dim=1)
        for step in reversed(self.scale1):
            h = step.inverse(h)
        a = self.config.alpha
        # y may overshoot [0, 1] by alpha / (1 - 2 alpha)
        y = (torch.sigmoid(self.pixel.inverse(unsqueeze(h))) - a) / (1 - 2 * a)
        # Undo the dequantization: y's bin of width 1/256 is the 8-bit value; the overshoot beyond
        # [0, 1] is density the bound already leaves out, read as the edge values.
        return (y * LEVELS).floor().clamp(0, LEVELS - 1) / (LEVELS - 1)
