"""pixelcnn: gated PixelCNN with a 256-way softmax per pixel (van den Oord et al. 2016).

"Conditional Image Generation with PixelCNN Decoders" (van den Oord, Kalchbrenner,
Vinyals, Espeholt, Graves, Kavukcuoglu; NeurIPS 2016), unconditional variant:

- The image is modelled in raster order, ``p(x) = prod_i p(x_i | x_<i)``, each factor a
  softmax over the 256 grey levels, so ``log_likelihood`` is exact (a sum of 784
  per-pixel log-probabilities, in nats).
- Two stacks remove the blind spot of the original PixelCNN: a *vertical* stack whose
  features at row ``r`` see every pixel of the rows above (``< r``), and a *horizontal*
  stack whose features at ``(r, c)`` see row ``r`` left of ``c`` plus the vertical
  features of row ``r``.
- Gated activations ``tanh(W_f * x) * sigmoid(W_g * x)``, a 1x1 link from the vertical
  to the horizontal stack in every layer, and a residual connection on the horizontal
  stack (the paper's Figure 2).

The masked convolutions are written as *causal* convolutions: instead of a ``k x k``
kernel with its lower half zeroed (the mask), the vertical stack uses a
``(k//2+1) x k`` kernel on an input padded only at the top, and the horizontal stack a
``1 x (k//2+1)`` kernel padded only on the left. That is the same function class as the
paper's masks without multiplying the zeroed half. The first layer is "mask A"
(strictly above / strictly left, by shifting one row down / one column right); every
later layer is "mask B" (may include its own position of the previous layer).

Sampling. ``sample`` uses the activation cache of Fast PixelCNN++ (Ramachandran et al.
2017, "Fast Generation for Convolutional Autoregressive Models"): the vertical stack is
computed once per row (it depends only on finished rows), and the horizontal stack of
every layer is computed only at the one new position per pixel, from row buffers of the
layer below. That is one network evaluation per image in total, instead of 784.
``sample_naive`` keeps the textbook sampler (a full forward pass per pixel) as the
reference; both draw exactly one uniform per pixel from the generator, in raster order,
and invert the same CDF, so for a seed they return the same images (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench import Capability, Generator, register_generator
from genbench.search_space import Choice, LogUniform

H = W = 28
LEVELS = 256  # 8-bit grey levels: one softmax class each


@dataclass
class PixelCNNConfig:
    channels: int = 32  # feature maps per stack (paper: 128 on CIFAR; 32 fits a minutes-long CPU budget)
    layers: int = 5  # gated layers after the input layer; receptive field grows one row per layer
    kernel: int = 3  # gated layers: vertical (k//2+1) x k, horizontal 1 x (k//2+1)
    first_kernel: int = 7  # input layer (paper: 7x7 mask A); vertical 4x7, horizontal 1x4
    head_channels: int = 64  # hidden 1x1 layer before the 256-way logits
    lr: float = 2e-3  # Adam (Kingma & Ba 2015); high because the budget is a few hundred steps
    grad_clip: float = 1.0  # global norm; keeps the first steps of a fresh softmax stable
    batch_size: int = 32
    sample_batch: int = 500  # images sampled at once (memory of the activation cache)


def _gate(x: Tensor) -> Tensor:
    """Gated activation unit: first half tanh, second half sigmoid, along dim 1."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated PixelCNN layer (mask B): vertical and horizontal stack, 1x1 link, residual."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.kh = kernel // 2 + 1  # vertical kernel height: rows r-kh+1..r of the layer below
        self.kw = kernel // 2 + 1  # horizontal kernel width: columns c-kw+1..c
        self.half = kernel // 2
        self.v_conv = nn.Conv2d(channels, 2 * channels, (self.kh, kernel))
        self.h_conv = nn.Conv2d(channels, 2 * channels, (1, self.kw))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)  # vertical -> horizontal
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``v``, ``h``: ``[B,C,28,28]`` -> next layer's ``(v, h)``, same shapes."""
        v_pre = self.v_conv(F.pad(v, (self.half, self.half, self.kh - 1, 0)))
        h_pre = self.h_conv(F.pad(h, (self.kw - 1, 0, 0, 0))) + self.link(v_pre)
        return _gate(v_pre), h + self.h_out(_gate(h_pre))


class GatedPixelCNN(nn.Module):
    """Maps images in [-1, 1] ``[B,1,28,28]`` to logits ``[B,256,28,28]``; logits at
    ``(r, c)`` depend only on pixels before ``(r, c)`` in raster order."""

    def __init__(self, cfg: PixelCNNConfig) -> None:
        super().__init__()
        c, k0 = cfg.channels, cfg.first_kernel
        self.kh0 = k0 // 2 + 1  # input layer sees rows r-kh0..r-1 (mask A: strictly above)
        self.kw0 = k0 // 2 + 1  # and columns c-kw0..c-1 of the same row
        self.half0 = k0 // 2
        self.v_in = nn.Conv2d(1, c, (self.kh0, k0))
        self.h_in = nn.Conv2d(1, c, (1, self.kw0))
        self.layers = nn.ModuleList(GatedLayer(c, cfg.kernel) for _ in range(cfg.layers))
        self.head_hidden = nn.Conv2d(c, cfg.head_channels, 1)
        self.head_out = nn.Conv2d(cfg.head_channels, LEVELS, 1)

    def input_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # Negative padding crops: pad kh0 rows on top, drop the last row -> shift down by one.
        v = self.v_in(F.pad(x, (self.half0, self.half0, self.kh0, -1)))
        h = self.h_in(F.pad(x, (self.kw0, -1, 0, 0)))
        return v, h

    def head(self, h: Tensor) -> Tensor:
        return self.head_out(F.relu(self.head_hidden(F.relu(h))))

    def forward(self, x: Tensor) -> Tensor:
        v, h = self.input_features(x)
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)


def _as_input(x: Tensor) -> Tensor:
    """uint8 (or float grey levels 0..255) ``[B,1,28,28]`` -> float in [-1, 1]."""
    return x.float() * (2.0 / 255.0) - 1.0


def _draw(logits: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw: ``logits [B,256]``, ``u [B]`` uniform in [0,1) -> levels ``[B]`` (long).

    Both samplers go through here with one uniform per pixel, so equal logits and equal
    uniforms give equal samples.
    """
    cdf = torch.softmax(logits, dim=-1).cumsum(dim=-1)
    # Scaling u by the last CDF value absorbs a total that rounds to slightly below 1.
    return (cdf < (u * cdf[:, -1]).unsqueeze(1)).sum(dim=1).clamp_(max=LEVELS - 1)


def _linear_at(conv: nn.Conv2d, window: Tensor) -> Tensor:
    """Apply ``conv`` to one output position: ``window [B,C_in,kh,kw]`` -> ``[B,C_out]``."""
    return F.linear(window.reshape(window.shape[0], -1), conv.weight.reshape(conv.out_channels, -1), conv.bias)


@register_generator
class PixelCNN(Generator):
    """Gated PixelCNN (van den Oord et al. 2016) with exact likelihood and cached sampling."""

    name = "pixelcnn"
    Config = PixelCNNConfig
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD | Capability.COMPLETE
    likelihood_is_bound = False
    tiny_config = {"channels": 4, "layers": 2, "head_channels": 8, "batch_size": 4, "sample_batch": 8}
    # Exact likelihood, and sampling costs 784 network calls: tuned on validation NLL.
    primary_metric = "nll_bpd"
    search_space = {"lr": LogUniform(1e-4, 1e-2), "batch_size": Choice((16, 32, 64))}

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        # channels_last: oneDNN's CPU convolutions run faster on these small maps (results/speed/README.md).
        self.net = GatedPixelCNN(config).to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)

    # -- likelihood and training ---------------------------------------------------
    def logits(self, x: Tensor) -> Tensor:
        """uint8 ``[B,1,28,28]`` -> logits ``[B,256,28,28]`` of each pixel given the ones before."""
        return self.net(_as_input(x).contiguous(memory_format=torch.channels_last))

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` in nats per image, ``[B]``, for uint8 ``x [B,1,28,28]``."""
        with torch.no_grad():
            logp = F.log_softmax(self.logits(x), dim=1)
            return logp.gather(1, x.long()).flatten(1).sum(dim=1)

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        # Mean per-pixel cross entropy in nats; /ln 2 gives the usual bits/dim.
        loss = F.cross_entropy(self.logits(batch), batch[:, 0].long())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.opt.step()
        return {"loss": loss.item(), "bits_per_dim": loss.item() / math.log(2.0)}

    # -- sampling ------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``[n,1,28,28]`` float in [0,1] (multiples of 1/255), by the cached sampler."""
        x = torch.zeros(n, 1, H, W, dtype=torch.uint8, device=self.device)
        return self._fill(x, 0, generator)

    @torch.no_grad()
    def complete(self, x: Tensor, known_rows: int, generator: torch.Generator) -> Tensor:
        """Keep rows ``< known_rows`` of uint8 ``x [B,1,28,28]``, sample the rest; float [0,1]."""
        if not 0 <= known_rows <= H:
            raise ValueError(f"known_rows must be in [0, {H}], got {known_rows}")
        return self._fill(x.to(self.device, torch.uint8).clone(), known_rows, generator)

    def _fill(self, x: Tensor, start_row: int, generator: torch.Generator) -> Tensor:
        """Sample rows ``>= start_row`` of uint8 ``x`` in chunks of ``sample_batch``.

        The uniforms are drawn per chunk, pixel by pixel, so the chunk size changes which
        images get which draws; ``sample_naive`` uses the same chunking and order.
        """
        out = [self._fill_cached(chunk, start_row, generator) for chunk in x.split(self.config.sample_batch)]
        return torch.cat(out).float().div_(255.0)

    @torch.no_grad()
    def sample_naive(self, n: int, generator: torch.Generator, x: Tensor | None = None, start_row: int = 0) -> Tensor:
        """Reference sampler: a full forward pass per pixel (784 per image). Same draws as ``sample``."""
        if x is None:
            x = torch.zeros(n, 1, H, W, dtype=torch.uint8, device=self.device)
        x = x.clone()
        for chunk in x.split(self.config.sample_batch):
            for r in range(start_row, H):
                for c in range(W):
                    u = torch.rand(chunk.shape[0], generator=generator, device=self.device)
                    chunk[:, 0, r, c] = _draw(self.logits(chunk)[:, :, r, c], u).to(torch.uint8)
        return x.float().div_(255.0)

    def _fill_cached(
        self, x: Tensor, start_row: int, generator: torch.Generator, logits_out: Tensor | None = None
    ) -> Tensor:
        """Fast PixelCNN++-style sampling of rows ``>= start_row`` of uint8 ``x [B,1,28,28]`` (in place).

        Caches: the full vertical-stack maps of every layer (rows are appended as they are
        computed) and, for the current row, the horizontal-stack inputs of every layer.
        One full forward pass over ``x`` first fills the vertical caches of the known rows.
        ``logits_out`` (``[B,256,28,28]``), if given, receives the logits each pixel was
        drawn from, for comparison with a full forward pass over the result.
        """
        net, b = self.net, x.shape[0]
        xin = _as_input(x)
        # v_pad[l]: the vertical features entering gated layer l, zero-padded the way its
        # convolution pads (kh-1 rows on top, k//2 columns each side). A full pass over x
        # fills the rows < start_row; the rows from start_row on are overwritten below.
        v, _ = net.input_features(xin)
        v_pad = []
        for layer in net.layers:
            v_pad.append(F.pad(v, (layer.half, layer.half, layer.kh - 1, 0)))
            v = _gate(layer.v_conv(v_pad[-1]))
        xpad = F.pad(xin, (net.half0, net.half0, net.kh0, 0))  # the input padded for the input layer
        for r in range(start_row, H):
            # Vertical stack of row r: depends only on rows < r, all final by now.
            v_row = net.v_in(xpad[:, :, r : r + net.kh0])  # padded rows r..r+kh0-1 = rows r-kh0..r-1
            links = []
            for k, layer in enumerate(net.layers):
                v_pad[k][:, :, r + layer.kh - 1, layer.half : layer.half + W] = v_row[:, :, 0]
                v_pre = layer.v_conv(v_pad[k][:, :, r : r + layer.kh])  # [B,2C,1,W]
                links.append(layer.link(v_pre)[:, :, 0])  # [B,2C,W]
                v_row = _gate(v_pre)  # (the last layer's is unused: the head reads the horizontal stack)
            # Horizontal stack of row r, one column at a time. h_bufs[k] holds the row of the
            # input to layer k with kw-1 zero columns on the left (the causal padding).
            # x_row: row r of the input with kw0 zero columns on the left, for the input layer.
            h_bufs = [xin.new_zeros(b, lay.h_conv.in_channels, lay.kw - 1 + W) for lay in net.layers]
            x_row = xin.new_zeros(b, 1, net.kw0 + W)
            for c in range(W):
                h = _linear_at(net.h_in, x_row[:, :, c : c + net.kw0])  # x[r, c-kw0..c-1]
                for k, layer in enumerate(net.layers):
                    h_bufs[k][:, :, layer.kw - 1 + c] = h
                    window = h_bufs[k][:, :, c : c + layer.kw]
                    h_pre = _linear_at(layer.h_conv, window) + links[k][:, :, c]
                    h = h + _linear_at(layer.h_out, _gate(h_pre).unsqueeze(-1))
                hidden = F.relu(_linear_at(net.head_hidden, F.relu(h).unsqueeze(-1)))
                logits = _linear_at(net.head_out, hidden.unsqueeze(-1))
                if logits_out is not None:
                    logits_out[:, :, r, c] = logits
                u = torch.rand(b, generator=generator, device=x.device)
                level = _draw(logits, u)
                x[:, 0, r, c] = level.to(torch.uint8)
                value = level.float() * (2.0 / 255.0) - 1.0
                x_row[:, 0, net.kw0 + c] = value
                xpad[:, 0, r + net.kh0, net.half0 + c] = value
        return x
