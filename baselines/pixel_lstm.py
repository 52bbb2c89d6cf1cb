"""pixel-lstm: an LSTM over the pixels in raster order with a 256-way softmax.

After "Pixel Recurrent Neural Networks" (van den Oord, Kalchbrenner, Kavukcuoglu;
ICML 2016), which models ``p(x) = prod_i p(x_i | x_<i)`` with a softmax over the 256
grey levels of each pixel, and "Generative Image Modeling Using Spatial LSTMs" (Theis &
Bethge; NeurIPS 2015), which feeds an LSTM the causal neighbourhood of each pixel.

Model. The 784 pixels form one sequence. The input at step ``t`` (which predicts pixel
``t``) is the sum of embeddings of

- the already-generated neighbours of pixel ``t``: left, up-left, up, up-right (a
  reserved "outside" token where a neighbour falls off the image), and
- the row and column of pixel ``t``.

A stack of LSTM layers carries everything else, and a linear layer maps its state to
256 logits. ``log_likelihood`` is exact: the sum of the 784 log-probabilities, in nats.

Why a sequence LSTM and not the paper's Row LSTM or Diagonal BiLSTM: those process a
whole row (or diagonal) per step with convolutional state-to-state maps, which is
parallel in training but makes sampling as costly as a PixelCNN's, and the Row LSTM has a
triangular receptive field that misses part of the context. A sequence LSTM samples with
one cell step per pixel with its state carried (784 steps, each a small matrix product on
the whole batch), trains at a similar cost per image on a CPU, and the neighbourhood
embedding gives it the pixel above directly instead of asking it to remember 28 steps
back -- the single most useful cue for strokes, which is what makes it learn within a
budget of minutes.
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
N = H * W
LEVELS = 256  # 8-bit grey levels: one softmax class each
OUTSIDE = LEVELS  # token for a neighbour outside the image
# Causal neighbours of pixel (r, c) as (row offset, column offset): all precede it in raster order.
NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1))


@dataclass
class PixelLSTMConfig:
    embed_dim: int = 64  # size of the summed neighbour and position embeddings
    hidden: int = 128  # LSTM state size; the 784 sequential cell steps are the cost
    lstm_layers: int = 1  # a second layer doubles the cost of the 784 sequential steps
    lr: float = 2e-3  # Adam (Kingma & Ba 2015); high because the budget is a few hundred steps
    grad_clip: float = 1.0  # global norm; LSTMs over 784 steps need it (Pascanu et al. 2013)
    batch_size: int = 32
    sample_batch: int = 1000  # images sampled at once


def _neighbour_tokens(x: Tensor) -> Tensor:
    """uint8 ``[B,1,28,28]`` -> tokens ``[B,784,4]`` (long): the neighbours of every pixel.

    Token ``k*257 + v`` is value ``v`` (256 = outside) of neighbour ``k``, so one
    embedding table serves all four neighbours.
    """
    padded = F.pad(x[:, 0].long(), (1, 1, 1, 0), value=OUTSIDE)  # [B,29,30]: a row on top, a column each side
    tokens = [padded[:, 1 + dr : 1 + dr + H, 1 + dc : 1 + dc + W] for dr, dc in NEIGHBOURS]
    tokens = torch.stack(tokens, dim=-1).reshape(x.shape[0], N, len(NEIGHBOURS))
    # All four neighbours precede the pixel in raster order (left: same row; the others:
    # the row above), so nothing at or after the pixel itself is read.
    return tokens + torch.arange(len(NEIGHBOURS), device=x.device) * (LEVELS + 1)


def _neighbour_tokens_at(x: Tensor, t: int) -> Tensor:
    """Tokens ``[B,4]`` of pixel ``t`` only, from uint8 ``x [B,1,28,28]`` (same values as above)."""
    r, c = divmod(t, W)
    out = []
    for k, (dr, dc) in enumerate(NEIGHBOURS):
        rr, cc = r + dr, c + dc
        if 0 <= rr < H and 0 <= cc < W:
            v = x[:, 0, rr, cc].long()
        else:
            v = torch.full((x.shape[0],), OUTSIDE, dtype=torch.long, device=x.device)
        out.append(v + k * (LEVELS + 1))
    return torch.stack(out, dim=1)


def _draw(logits: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw: ``logits [B,256]``, ``u [B]`` uniform in [0,1) -> levels ``[B]`` (long)."""
    cdf = torch.softmax(logits, dim=-1).cumsum(dim=-1)
    # Scaling u by the last CDF value absorbs a total that rounds to slightly below 1.
    return (cdf < (u * cdf[:, -1]).unsqueeze(1)).sum(dim=1).clamp_(max=LEVELS - 1)


@register_generator
class PixelLSTM(Generator):
    """Raster-order pixel LSTM (van den Oord et al. 2016; Theis & Bethge 2015), exact likelihood."""

    name = "pixel-lstm"
    Config = PixelLSTMConfig
    capabilities = Capability.SAMPLE | Capability.LOG_LIKELIHOOD | Capability.COMPLETE
    likelihood_is_bound = False
    tiny_config = {"embed_dim": 8, "hidden": 8, "batch_size": 4, "sample_batch": 8}
    primary_metric = "nll_bpd"
    search_space = {"lr": LogUniform(1e-4, 1e-2), "batch_size": Choice((16, 32, 64))}

    def __init__(self, config: PixelLSTMConfig) -> None:
        super().__init__(config)
        e = config.embed_dim
        self.neighbour_embed = nn.Embedding(len(NEIGHBOURS) * (LEVELS + 1), e)
        self.row_embed = nn.Embedding(H, e)
        self.col_embed = nn.Embedding(W, e)
        self.lstm = nn.LSTM(e, config.hidden, num_layers=config.lstm_layers, batch_first=True)
        self.out = nn.Linear(config.hidden, LEVELS)
        self.opt = torch.optim.Adam(self.parameters(), lr=config.lr)

    def _position_embedding(self, t: Tensor) -> Tensor:
        """Pixel indices ``t`` (long, any shape) -> ``[..., E]``."""
        return self.row_embed(t // W) + self.col_embed(t % W)

    # -- likelihood and training ---------------------------------------------------
    def logits(self, x: Tensor) -> Tensor:
        """uint8 ``[B,1,28,28]`` -> logits ``[B,784,256]`` of each pixel given the ones before."""
        inputs = self.neighbour_embed(_neighbour_tokens(x)).sum(dim=2)  # [B,784,E]
        inputs = inputs + self._position_embedding(torch.arange(N, device=x.device))
        states, _ = self.lstm(inputs)
        return self.out(states)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` in nats per image, ``[B]``, for uint8 ``x [B,1,28,28]``."""
        with torch.no_grad():
            logp = F.log_softmax(self.logits(x), dim=-1)
            return logp.gather(2, x.reshape(x.shape[0], N, 1).long()).sum(dim=(1, 2))

    def train_step(self, batch: Tensor, step: int) -> dict[str, float]:
        # Mean per-pixel cross entropy in nats; /ln 2 gives bits/dim.
        loss = F.cross_entropy(self.logits(batch).reshape(-1, LEVELS), batch.reshape(-1).long())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.grad_clip)
        self.opt.step()
        return {"loss": loss.item(), "bits_per_dim": loss.item() / math.log(2.0)}

    # -- sampling ------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``[n,1,28,28]`` float in [0,1] (multiples of 1/255), one LSTM cell step per pixel."""
        x = torch.zeros(n, 1, H, W, dtype=torch.uint8, device=self.device)
        return self._fill(x, 0, generator)

    @torch.no_grad()
    def complete(self, x: Tensor, known_rows: int, generator: torch.Generator) -> Tensor:
        """Keep rows ``< known_rows`` of uint8 ``x [B,1,28,28]``, sample the rest; float [0,1]."""
        if not 0 <= known_rows <= H:
            raise ValueError(f"known_rows must be in [0, {H}], got {known_rows}")
        return self._fill(x.to(self.device, torch.uint8).clone(), known_rows * W, generator)

    def _fill(self, x: Tensor, start: int, generator: torch.Generator) -> Tensor:
        """Sample pixels ``>= start`` (raster index) of uint8 ``x``, in chunks of ``sample_batch``."""
        out = [self._fill_chunk(chunk, start, generator) for chunk in x.split(self.config.sample_batch)]
        return torch.cat(out).float().div_(255.0)

    def _fill_chunk(self, x: Tensor, start: int, generator: torch.Generator) -> Tensor:
        """Run the LSTM over the known prefix, then step it one pixel at a time (in place on ``x``)."""
        state = None
        if start > 0:
            # The prefix in one call: its inputs only read pixels < start, which are known.
            prefix = self.neighbour_embed(_neighbour_tokens(x)[:, :start]).sum(dim=2)
            prefix = prefix + self._position_embedding(torch.arange(start, device=x.device))
            _, state = self.lstm(prefix)
        for t in range(start, N):
            inp = self.neighbour_embed(_neighbour_tokens_at(x, t)).sum(dim=1)
            inp = inp + self._position_embedding(torch.tensor(t, device=x.device))
            hidden, state = self.lstm(inp.unsqueeze(1), state)
            u = torch.rand(x.shape[0], generator=generator, device=x.device)
            x[:, 0, t // W, t % W] = _draw(self.out(hidden[:, 0]), u).to(torch.uint8)
        return x
