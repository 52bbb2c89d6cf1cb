"""Negative log-likelihood in bits per dimension on 8-bit test images.

``nll_bpd = NLL_nats / (784 ln 2)`` per image, averaged over test images (discrete
likelihood of the 8-bit values). Exact for autoregressive models; an upper bound for
VAEs (ELBO, IWAE) and diffusion models (VLB), flagged by ``nll_is_bound``.
``nll_bpd_stderr`` is the standard error of the mean over images.
"""

from __future__ import annotations

import math

from torch import Tensor

from genbench.metrics.spec import MetricSpec, register_metric
from genbench.protocol import NUM_PIXELS, Capability

KEY_NLL_BPD = "nll_bpd"
KEY_NLL_IS_BOUND = "nll_is_bound"
KEY_NLL_BPD_STDERR = "nll_bpd_stderr"

register_metric(MetricSpec(
    KEY_NLL_BPD, "negative log-likelihood of test images in bits per dimension (an upper bound if nll_is_bound)",
    unit="bits/dim", higher_is_better=False, kind="likelihood", requires=Capability.LOG_LIKELIHOOD, group="likelihood",
))
register_metric(MetricSpec(
    KEY_NLL_IS_BOUND, "true when nll_bpd is a bound (ELBO/IWAE/VLB) rather than an exact likelihood",
    unit="bool", higher_is_better=None, kind="info", requires=Capability.LOG_LIKELIHOOD, group="likelihood",
))
register_metric(MetricSpec(
    KEY_NLL_BPD_STDERR, "standard error of nll_bpd over test images",
    unit="bits/dim", higher_is_better=None, kind="uncertainty", requires=Capability.LOG_LIKELIHOOD, group="info",
))


def bits_per_dim(nll_nats: Tensor, num_pixels: int = NUM_PIXELS) -> Tensor:
    """Per-image NLL in nats -> bits per dimension."""
    return nll_nats.double() / (num_pixels * math.log(2.0))


def nll_summary(log_likelihood_nats: Tensor) -> dict[str, float | None]:
    """``nll_bpd`` and ``nll_bpd_stderr`` (None for one image) from log-likelihoods ``[N]`` in nats."""
    bpd = bits_per_dim(-log_likelihood_nats.detach().cpu().flatten())
    n = bpd.numel()
    stderr = float(bpd.std(unbiased=True) / math.sqrt(n)) if n > 1 else None
    return {KEY_NLL_BPD: float(bpd.mean()), KEY_NLL_BPD_STDERR: stderr}
