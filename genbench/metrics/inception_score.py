"""Inception Score (Salimans et al. 2016) over the classifier's logits.

``exp(E_x KL(p(y|x) || p(y)))``, averaged over splits, via torch-fidelity's
``isc_features_to_metric`` (10 splits after a shuffle with ``rng_seed`` 2020 by
default; repeated in :mod:`genbench.metrics._fidelity_math`), so it equals
``calculate_metrics(isc=True)`` with the same extractor. With the domain classifier it
ranges from 1 (one class, or no confidence) to 10.
"""

from __future__ import annotations

from torch import Tensor

from genbench.metrics._fidelity_math import isc_features_to_metric
from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_IS = "is"
KEY_IS_STD = "is_std"

register_metric(MetricSpec(
    KEY_IS, "Inception Score of the samples under the feature network's classifier (Salimans et al. 2016)",
    unit="", higher_is_better=True, kind="score",
))
register_metric(MetricSpec(
    KEY_IS_STD, "standard deviation of the Inception Score over its splits",
    unit="", higher_is_better=None, kind="uncertainty", group="info",
))


def inception_score(logits: Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """``(is, is_std)`` of ``logits [N,C]``; splits are clipped to ``N``."""
    return isc_features_to_metric(logits.float().cpu(), min(splits, len(logits)), seed)


def _compute_is(inputs: MetricInputs) -> GroupValues:
    with inputs.timer("is"):
        score, std = inception_score(inputs.lens.logits, inputs.config.is_splits, inputs.config.estimator_seed)
    return {KEY_IS: score, KEY_IS_STD: std}


register_metric_group(MetricGroup(
    "is", (KEY_IS, KEY_IS_STD), _compute_is, frozenset({"logits"}), "inception score",
))
