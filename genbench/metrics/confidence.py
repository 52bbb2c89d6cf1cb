"""Fraction of samples the domain classifier recognizes confidently.

A sample counts when its top-class softmax probability is at least 0.9. Real test
images score close to 1; blurry or ambiguous samples score low even when FID is
moderate, which makes this a readable companion to IS (which rewards confidence
*and* class diversity together).
"""

from __future__ import annotations

import torch
from torch import Tensor

from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_CONFIDENT_FRACTION = "confident_fraction"
DEFAULT_THRESHOLD = 0.9

register_metric(MetricSpec(
    KEY_CONFIDENT_FRACTION, "fraction of samples whose domain-classifier top-class probability is >= 0.9",
    unit="fraction", higher_is_better=True, kind="fraction",
))


def confident_fraction(logits: Tensor, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Share of rows of ``logits [N,C]`` whose largest softmax probability is ``>= threshold``."""
    top = torch.softmax(logits.double(), dim=1).max(dim=1).values
    return float((top >= threshold).double().mean())


def _compute_confident_fraction(inputs: MetricInputs) -> GroupValues:
    return {KEY_CONFIDENT_FRACTION: confident_fraction(inputs.lens.logits, inputs.config.confident_threshold)}


register_metric_group(MetricGroup(
    "confident_fraction", (KEY_CONFIDENT_FRACTION,), _compute_confident_fraction,
    frozenset({"logits", "domain_classifier"}),
    "share of samples the domain classifier labels with probability ≥ 0.9",
))
