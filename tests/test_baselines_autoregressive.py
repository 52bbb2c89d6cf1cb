"""Model-specific tests of the autoregressive baselines pixelcnn and pixel-lstm (CPU, seconds).

The protocol contract shared by every generator is tested elsewhere; here each test
checks a property of an exact autoregressive likelihood or of its samplers.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genbench.config import make_config
from genbench.data.datasets import load_split
from genbench.registry import get_generator
from genbench_baselines.pixel_lstm import PixelLSTM, _neighbour_tokens_at
from genbench_baselines.pixelcnn import PixelCNN

NAMES = ["pixelcnn", "pixel-lstm"]


def _tiny(cls, **overrides):
    torch.manual_seed(0)
    return cls(make_config(cls, {**cls.tiny_config, **overrides}))


@pytest.fixture(scope="module")
def digits(data_root: str) -> torch.Tensor:
    """Eight fixed MNIST test digits, uint8 ``[8,1,28,28]``."""
    return load_split("mnist", "test", data_root=data_root).images[:8].clone()


def _sharpen(model: torch.nn.Module) -> None:
    """Scale a fresh model's weights up so its conditionals are far from uniform.

    With default init the logits are nearly flat and a bug that mixes up pixels could
    still give almost the same numbers; sharp conditionals make such bugs visible.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)


@pytest.mark.parametrize("name", NAMES)
def test_training_steps_decrease_the_loss(name: str, digits: torch.Tensor) -> None:
    model = _tiny(get_generator(name), lr=1e-2)
    model.train()
    losses = [model.train_step(digits, s)["loss"] for s in range(12)]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_8_bit_images_and_deterministic(name: str) -> None:
    model = _tiny(get_generator(name)).eval()
    _sharpen(model)
    a = model.sample(3, torch.Generator().manual_seed(5))
    b = model.sample(3, torch.Generator().manual_seed(5))
    c = model.sample(3, torch.Generator().manual_seed(6))
    assert a.shape == (3, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    levels = a * 255.0
    assert torch.equal(levels, levels.round())
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_uniform_logits_give_exactly_8_bits_per_dim(name: str, digits: torch.Tensor) -> None:
    model = _tiny(get_generator(name)).eval()
    final = model.net.head_out if name == "pixelcnn" else model.out
    with torch.no_grad():
        final.weight.zero_()
        final.bias.zero_()
    bits_per_dim = -model.log_likelihood(digits) / (784 * math.log(2.0))
    torch.testing.assert_close(bits_per_dim, torch.full((8,), 8.0), rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("name", NAMES)
def test_completion_keeps_the_known_rows(name: str, digits: torch.Tensor) -> None:
    model = _tiny(get_generator(name)).eval()
    _sharpen(model)
    out = model.complete(digits[:3], 20, torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 28, 28)
    assert torch.equal(out[:, :, :20], digits[:3, :, :20].float() / 255.0)
    assert not torch.equal(out, digits[:3].float() / 255.0)  # the rest was sampled
    full = model.complete(digits[:3], 28, torch.Generator().manual_seed(0))
    assert torch.equal(full, digits[:3].float() / 255.0)


@pytest.mark.parametrize("name", NAMES)
def test_later_pixels_do_not_change_earlier_conditionals(name: str, digits: torch.Tensor) -> None:
    model = _tiny(get_generator(name)).eval()
    _sharpen(model)
    x = digits[:1]
    with torch.no_grad():
        base = model.logits(x)
        for i in (0, 29, 300, 783):
            changed = x.clone().flatten()
            changed[i:] = torch.randint(0, 256, (784 - i,), generator=torch.Generator().manual_seed(i),
                                        dtype=torch.uint8)
            other = model.logits(changed.view(1, 1, 28, 28))
            if name == "pixelcnn":
                before = (base.flatten(2)[..., :i + 1], other.flatten(2)[..., :i + 1])  # [1,256,784]
            else:
                before = (base[:, :i + 1], other[:, :i + 1])  # [1,784,256]
            # Pixel i's own conditional may not depend on pixel i either.
            assert torch.equal(*before)


# -- pixelcnn ---------------------------------------------------------------------------

def test_pixelcnn_masks_hide_every_pixel_at_or_after_the_output() -> None:
    """d logits[pixel i] / d input[pixel j] == 0 for all j >= i (raster order), all 256 channels."""
    model = _tiny(PixelCNN)
    _sharpen(model)
    # One copy of a random image per output pixel; copy i backpropagates only from pixel i,
    # so a few backward passes give the whole 784 x 784 dependency matrix.
    image = torch.rand(1, 1, 28, 28)
    mix = torch.randn(256, generator=torch.Generator().manual_seed(0))  # no cancellation across channels
    rows = []
    for pixels in torch.arange(784).split(112):  # chunks keep the [n,256,28,28] logits small
        x = image.expand(len(pixels), 1, 28, 28).clone().requires_grad_(True)
        picked = model.net(x).flatten(2)[torch.arange(len(pixels)), :, pixels]  # [n,256]: copy k at its pixel
        (picked @ mix).sum().backward()
        rows.append(x.grad.flatten(1) != 0)
    dep = torch.cat(rows)  # dep[i, j]: logits of pixel i depend on input pixel j
    assert not dep.triu().any()
    # No blind spot next to the pixel: left, up-left, up and up-right neighbours are all seen.
    for i in (29 * 5, 28 * 14 + 3, 28 * 27 + 20):
        assert dep[i, i - 1] and dep[i, i - 29] and dep[i, i - 28] and dep[i, i - 27]


def test_pixelcnn_log_likelihood_is_the_sum_of_its_conditionals(digits: torch.Tensor) -> None:
    """Reference: pixel i's log-prob from an image whose pixels >= i are replaced by noise."""
    model = _tiny(PixelCNN).eval()
    _sharpen(model)
    x = digits[:2]
    noise = torch.randint(0, 256, (784,), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    keep = torch.arange(784).unsqueeze(1) > torch.arange(784).unsqueeze(0)  # [i, j]: j < i
    for b in range(2):
        copies = torch.where(keep, x[b].flatten().unsqueeze(0), noise.unsqueeze(0)).view(784, 1, 28, 28)
        ref = torch.zeros(())
        with torch.no_grad():
            for pixels in torch.arange(784).split(112):
                logp = F.log_softmax(model.logits(copies[pixels]), dim=1).flatten(2)  # [n,256,784]
                ref += logp[torch.arange(len(pixels)), x[b].flatten()[pixels].long(), pixels].sum()
        torch.testing.assert_close(model.log_likelihood(x[b : b + 1])[0], ref, rtol=1e-6, atol=1e-3)


def test_pixelcnn_fast_sampler_equals_the_naive_sampler(digits: torch.Tensor) -> None:
    model = _tiny(PixelCNN).eval()
    _sharpen(model)
    # Sampling from scratch, and the logits each pixel was drawn from.
    logits = torch.zeros(2, 256, 28, 28)
    with torch.no_grad():
        fast = model._fill_cached(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 0,
                                  torch.Generator().manual_seed(11), logits_out=logits)
        reference = model.logits(fast)
    naive = model.sample_naive(2, torch.Generator().manual_seed(11))
    assert torch.equal(fast.float() / 255.0, naive)
    assert torch.equal(model.sample(2, torch.Generator().manual_seed(11)), naive)
    assert len(naive.unique()) > 10  # a real draw, not a constant image
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)

    # Completion: the known rows fill the caches by a full pass, then sampling goes on.
    x = digits[:2]
    fast = model.complete(x, 24, torch.Generator().manual_seed(12))
    naive = model.sample_naive(2, torch.Generator().manual_seed(12), x=x, start_row=24)
    assert torch.equal(fast, naive)


# -- pixel-lstm -------------------------------------------------------------------------

def test_pixel_lstm_log_likelihood_equals_stepping_the_cell_by_hand(digits: torch.Tensor) -> None:
    """Reference: the LSTM cell equations (Hochreiter & Schmidhuber 1997) stepped pixel by pixel."""
    model = _tiny(PixelLSTM).eval()
    _sharpen(model)
    x = digits[:2]
    lstm = model.lstm
    w_ih, w_hh, b = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0
    h = torch.zeros(2, lstm.hidden_size)
    c = torch.zeros(2, lstm.hidden_size)
    ref = torch.zeros(2)
    with torch.no_grad():
        for t in range(784):
            inp = model.neighbour_embed(_neighbour_tokens_at(x, t)).sum(dim=1)
            inp = inp + model.row_embed.weight[t // 28] + model.col_embed.weight[t % 28]
            i, f, g, o = (inp @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            logp = F.log_softmax(model.out(h), dim=1)
            ref += logp[torch.arange(2), x.flatten(1)[:, t].long()]
    torch.testing.assert_close(model.log_likelihood(x), ref, rtol=1e-5, atol=1e-2)
