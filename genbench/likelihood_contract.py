"""The likelihood contract, checked at the door and on every batch: units named, never repaired.

``Generator.log_likelihood(x)`` takes uint8 test images ``[B, 1, 28, 28]`` and returns a
float tensor ``[B]``: each image's log-probability of its 8-bit values, in nats (a lower
bound when ``likelihood_is_bound``). A probability of discrete values is at most 1, so
every value is finite and at most 0. :func:`likelihood_problem` is the one rule, used

- before training, on two test images and the freshly built model
  (:func:`precheck_likelihood`), so that a unit or shape mistake fails a run in seconds
  instead of after its budget;
- after training, on the same two images before evaluation samples anything (a density
  that only training lifts above 0 nats is refused then, not after the sample metrics),
  and on every batch evaluation scores (:func:`check_log_likelihood`). There, non-finite
  values are counted into a null ``nll_bpd`` with its reason rather than refused: a
  trained model that gives a test image probability 0 has a measured, infinite NLL.

A value that keeps the contract can still be in the wrong units. Outside
:data:`PLAUSIBLE_BPD` bits/dim, :func:`implausible_bpd` names the likely mistake: the
run keeps its number, with that warning in its record and :func:`bpd_mark` in the
leaderboard.

``log_likelihood`` may take a ``generator`` (a ``torch.Generator`` on the model's device)
for its noise, e.g. dequantization or an ELBO's latents, so that a bound is reproducible
wherever it is computed; :func:`call_log_likelihood` passes one to a model whose method
has that parameter and calls the others as before.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import Tensor, nn

from genbench.errors import GenbenchError
from genbench.protocol import NUM_PIXELS
from genbench.sample_contract import model_device, preserved_state

PRECHECK_IMAGES = 2  # test images scored before training: enough to see shape and units, cheap for a VLB
# The change of units between a density of pixels scaled to [0, 1] and a probability of their 8-bit
# values: each pixel's bin is 1/256 wide, so log P(x) ~ log p(x / 256) - 784 ln 256 (Theis et al. 2016).
UNIT_CUBE_NATS = NUM_PIXELS * math.log(256.0)
# Below the lower end lies no published 8-bit MNIST result (the best are near 1 bit/dim); above the
# upper end a model is worse than the uniform distribution over 8-bit values (exactly 8).
PLAUSIBLE_BPD = (0.5, 8.0)
_BPD_ROUNDING = 1e-9  # a uniform model's 8 bits/dim, divided out in float, may land a hair above 8


class LikelihoodContractError(GenbenchError, ValueError):
    """``log_likelihood()`` returned something other than a float ``[B]`` of finite values <= 0 (nats)."""


def takes_generator(model: nn.Module) -> bool:
    """Whether ``model.log_likelihood`` has a parameter named ``generator`` (for its noise)."""
    try:
        parameters = inspect.signature(model.log_likelihood).parameters
    except (TypeError, ValueError):  # a builtin or C-implemented callable has no signature to read
        return False
    parameter = parameters.get("generator")
    return parameter is not None and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)


def call_log_likelihood(model: nn.Module, x: Tensor, generator: torch.Generator) -> Any:
    """``model.log_likelihood(x, generator=generator)`` if it takes one; else ``log_likelihood(x)``.

    A model without the parameter draws any noise from torch's global RNG, which the
    harness seeds before evaluation, as it always has.
    """
    if takes_generator(model):
        return model.log_likelihood(x, generator=generator)
    return model.log_likelihood(x)


def _bits_per_dim(nats: float) -> float:
    return nats / (NUM_PIXELS * math.log(2.0))


def likelihood_problem(ll: Any, n: int, finite: bool = True) -> str | None:
    """What breaks the likelihood contract in ``ll`` (for ``n`` images), phrased to follow "returned ", or None.

    ``finite=False`` lets non-finite values pass (evaluation records them as a null
    ``nll_bpd`` with the count); the sign rule then applies to the finite ones.
    """
    per_image = f"log_likelihood must return [{n}], one log-likelihood in nats per image"
    if not isinstance(ll, Tensor):
        if isinstance(ll, (int, float)):
            return f"a Python {type(ll).__name__}; {per_image}: return a tensor, not .item() of a batch mean"
        return f"a {type(ll).__name__}; {per_image}: return a torch.Tensor"
    shape = tuple(ll.shape)
    if shape != (n,):
        if not shape:
            fix = "keep the batch dimension (return log_px, not log_px.mean() or log_px.sum())"
        elif shape[0] == n and ll[0].numel() > 1:
            fix = "sum each image's pixels, e.g. log_px.flatten(1).sum(1)"
        elif shape[0] == n:
            fix = "drop the trailing dimensions with log_px.view(-1)"
        else:
            fix = "return one value per image of x"
        return f"{'a scalar (shape ())' if not shape else f'shape {shape}'}; {per_image}: {fix}"
    if not ll.is_floating_point():
        return f"dtype {ll.dtype}; log-likelihoods must be float: return a float tensor of log-probabilities"
    values = ll.detach()
    is_finite = torch.isfinite(values)
    if not bool(is_finite.all()):
        if finite:
            bad = values[~is_finite]
            n_nan, n_inf = int(torch.isnan(bad).sum()), int(torch.isinf(bad).sum())
            return (f"{n_nan + n_inf} non-finite values (NaN: {n_nan}, inf: {n_inf}) for {n} images; log-likelihoods "
                    f"must be finite: take logs with log_softmax or logsumexp, not log() of a probability that can "
                    f"underflow to 0")
        values = values[is_finite]
    if values.numel() and float(values.max()) > 0:
        top = float(values.max())
        return (f"{top:+.1f} nats for a test image (nll_bpd {-_bits_per_dim(top):.2f}), a negative NLL, which 8-bit "
                f"images cannot have: a density of pixels in [0, 1] must subtract 784·ln 256 = "
                f"{UNIT_CUBE_NATS:.1f} nats per image to be a likelihood of their 8-bit values, and set "
                f"likelihood_is_bound = True under uniform dequantization")
    return None


def check_log_likelihood(ll: Any, n: int, who: str, finite: bool = True) -> Tensor:
    """Return ``ll`` if it keeps the contract for ``n`` images; else raise :class:`LikelihoodContractError`.

    ``who``: the class name the message starts with (``RealNVP.log_likelihood(x) returned ...``).
    """
    problem = likelihood_problem(ll, n, finite)
    if problem is not None:
        raise LikelihoodContractError(f"{who}.log_likelihood(x) returned {problem}")
    return ll


def precheck_likelihood(model: nn.Module, images: Tensor, seed: int, finite: bool = True) -> None:
    """Score ``images`` (uint8 ``[B,1,28,28]``, test images) with ``model`` and check the contract.

    Before training (finiteness included: a fresh model has no excuse for a log of 0) and
    again before evaluation (``finite=False``: a trained model's non-finite values are
    recorded, not refused). Changes nothing a run computes afterwards
    (:func:`genbench.sample_contract.preserved_state`). Raises
    :class:`LikelihoodContractError` with the fix.
    """
    device = model_device(model)
    with preserved_state(model):
        ll = call_log_likelihood(model, images.to(device), torch.Generator(device).manual_seed(seed))
        check_log_likelihood(ll, len(images), type(model).__name__, finite)


def implausible_bpd(bpd: float | None) -> str | None:
    """The record's warning for a mean ``nll_bpd`` outside :data:`PLAUSIBLE_BPD`, naming the likely unit mistake."""
    if bpd is None or not math.isfinite(bpd):
        return None
    low, high = PLAUSIBLE_BPD
    if bpd < low:
        return (f"nll_bpd {bpd:.3g} is below {low} bits/dim, under every published 8-bit MNIST result: likely nats "
                f"per dimension (a mean over pixels) where log_likelihood must return nats per image (the sum over "
                f"its 784 pixels)")
    if bpd > high + _BPD_ROUNDING:
        return (f"nll_bpd {bpd:.3g} is above {high:g} bits/dim, worse than the uniform distribution over 8-bit "
                f"values: likely bits instead of nats (log2 where log_likelihood must use ln), or 784·ln 256 "
                f"subtracted from a density of values in [0, 256) rather than [0, 1]; an untrained model reads "
                f"this high too")
    return None


def bpd_mark(bpd: float | None) -> str | None:
    """The leaderboard's short mark for a mean ``nll_bpd`` outside :data:`PLAUSIBLE_BPD`, or None."""
    if bpd is None or implausible_bpd(bpd) is None:
        return None
    low, high = PLAUSIBLE_BPD
    return f"< {low:g}: nats per dimension?" if bpd < low else f"> {high:g}: bits instead of nats?"
