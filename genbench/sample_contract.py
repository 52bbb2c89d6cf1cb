"""The sample contract, checked at the door and on every batch: never repaired in silence.

``Generator.sample(n, generator)`` must return a float tensor ``[n, 1, 28, 28]``,
finite, with values in [0, 1]. :func:`sample_problem` is the one rule, used

- before training, on a couple of samples of the freshly built model
  (:func:`precheck_sampling`), so a wrong shape or range fails a run in seconds
  instead of after its budget;
- after training, on every batch evaluation draws (:func:`check_samples`);
- by ``genbench eval`` on float arrays (:mod:`genbench.files.images`).

Values up to ``SAMPLE_TOLERANCE`` outside [0, 1] are float rounding (a sigmoid or
``(x + 1) / 2`` can overshoot by an ulp); they are accepted and clamped when
quantized. Anything further out is an error naming the fix, never a clamp: a tanh
generator whose output is clamped to [0, 1] loses every dark pixel and scores as
another model.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genbench.errors import GenbenchError
from genbench.protocol import IMAGE_SHAPE

SAMPLE_TOLERANCE = 1e-3  # float rounding accepted around [0, 1]; quantize() clamps it away
# A logit flow's inverse, (sigmoid(z) - alpha) / (1 - 2 alpha) (Dinh et al. 2017), spans
# [-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha)]: a little past [0, 1] on both sides, which
# tanh (never above 1) and 8-bit values (far above) do not. Up to this much past 1 reads as a flow.
FLOW_OVERSHOOT = 0.25
# The dequantized pixels such a flow models lie in [0, 1], so the model clamps its samples (the harness never does).
FLOW_FIX = "a flow's inverse logit transform overshoots [0, 1]: clamp its output with x.clamp(0, 1)"
PRECHECK_SAMPLES = 2  # images drawn before training: enough to see shape and range, cheap for slow samplers


class SampleContractError(GenbenchError, ValueError):
    """``sample()`` returned something other than float ``[n,1,28,28]`` finite values in [0, 1].

    A ``ValueError`` too, as sampling errors were before the contract had its own type.
    """


def _bound(value: float, limit: float, below: bool) -> str:
    """``value`` with enough decimals that it visibly lies beyond ``limit`` (2 at least)."""
    for decimals in range(2, 8):
        text = f"{value:.{decimals}f}"
        shown = float(text)
        if (shown < limit) if below else (shown > limit):
            return text
    return f"{value:.3g}"


def range_problem(lo: float, hi: float) -> str | None:
    """The complaint about float values spanning ``[lo, hi]``, or None within [0, 1] +- the tolerance."""
    tol = SAMPLE_TOLERANCE
    if lo >= -tol and hi <= 1 + tol:
        return None
    if -1 - tol <= lo < -tol and hi <= 1 + tol:
        fix = "map tanh output with (x + 1) / 2"
    elif lo >= -tol and 2 < hi <= 255 + tol:
        fix = "divide 8-bit values by 255"
    elif 1 + tol < hi <= 1 + FLOW_OVERSHOOT and lo >= -FLOW_OVERSHOOT:
        fix = FLOW_FIX
    else:
        fix = ("rescale the output to [0, 1]: torch.sigmoid for a GAN, (x + 1) / 2 for tanh, "
               "x.clamp(0, 1) after a flow's inverse logit transform")
    lo_text = _bound(lo, -tol, below=True) if lo < -tol else f"{lo:.2f}"
    hi_text = _bound(hi, 1 + tol, below=False) if hi > 1 + tol else f"{hi:.2f}"
    return f"values in [{lo_text}, {hi_text}]; samples must be in [0, 1]: {fix}"


def sample_problem(x: Tensor | np.ndarray, n: int | None = None) -> str | None:
    """What breaks the sample contract in ``x``, phrased to follow "returned ", or None.

    ``x``: a tensor, or a NumPy array (rows of a saved array, checked in place: no copy).
    ``n``: the number of images asked for; with it the shape must be ``[n, 1, 28, 28]``
    (without it, as for rows of a saved array, only dtype, finiteness and range count).
    """
    if not isinstance(x, (Tensor, np.ndarray)):
        return f"a {type(x).__name__}; samples must be a torch.Tensor [n, 1, 28, 28]: return a tensor"
    if n is not None and tuple(x.shape) != (n, *IMAGE_SHAPE):
        shape = tuple(x.shape)
        if len(shape) == 3 and shape[1:] == IMAGE_SHAPE[1:]:
            fix = "add the channel dimension with x.unsqueeze(1)"
        elif len(shape) == 2 and shape[1:] == (784,):
            fix = "reshape with x.view(n, 1, 28, 28)"
        elif len(shape) != 4 or shape[0] != n:
            fix = f"return exactly n = {n} images"
        elif shape[1] != 1:
            fix = "return one gray channel"
        else:
            fix = "generate 28x28 images (the generator's output layers decide the size)"
        return f"shape {shape}; samples must be [n, 1, 28, 28]: {fix}"
    tensor = isinstance(x, Tensor)
    if not (x.is_floating_point() if tensor else np.issubdtype(x.dtype, np.floating)):
        fix = "divide 8-bit images by 255" if x.dtype in (torch.uint8, np.uint8) else "return a float tensor"
        return f"dtype {x.dtype}; samples must be float in [0, 1]: {fix}"
    lib: Any = torch if tensor else np
    finite = lib.isfinite(x)
    if not bool(finite.all()):
        bad = x[~finite]
        n_nan, n_inf = int(lib.isnan(bad).sum()), int(lib.isinf(bad).sum())
        return (f"{n_nan + n_inf} non-finite values (NaN: {n_nan}, inf: {n_inf}); samples must be finite: "
                f"check the model for divergence (losses, learning rate) or a division by zero")
    if (x.numel() if tensor else x.size) == 0:
        return None
    return range_problem(float(x.min()), float(x.max()))


def check_samples(x: Tensor, n: int, who: str) -> Tensor:
    """Return ``x`` if it keeps the contract for ``sample(n)``; else raise :class:`SampleContractError`.

    ``who``: the class name the message starts with (``ExtLSGAN.sample(2) returned ...``).
    """
    problem = sample_problem(x, n)
    if problem is not None:
        raise SampleContractError(f"{who}.sample({n}) returned {problem}")
    return x


def _modes(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for a model with neither)."""
    return next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Call ``model`` inside this block in eval mode under ``torch.no_grad``, changing nothing a run computes later.

    Every RNG stream (python, numpy, torch on the CPU and the model's CUDA device) is
    forked and restored, each module's train/eval mode is put back, and the model's
    buffers (BatchNorm running statistics among them) are restored in case a call
    changes them. The pre-checks at the door (samples, likelihood) run in it.
    """
    device = model_device(model)
    devices: list[Any] = [device] if device.type == "cuda" else []
    py_state, np_state = random.getstate(), np.random.get_state()
    modes = _modes(model)
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        for module, training in modes:
            module.training = training
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers and b.shape == buffers[name].shape:
                    b.copy_(buffers[name])


def precheck_sampling(model: nn.Module, seed: int, n: int = PRECHECK_SAMPLES) -> None:
    """Draw ``n`` samples from ``model`` (built, set up, not trained) and check the contract.

    Changes nothing a run computes afterwards (:func:`preserved_state`), so ``sample``
    must work on a freshly built model. Raises :class:`SampleContractError` with the fix.
    """
    with preserved_state(model):
        x = model.sample(n, torch.Generator(model_device(model)).manual_seed(seed))
        check_samples(x, n, type(model).__name__)
