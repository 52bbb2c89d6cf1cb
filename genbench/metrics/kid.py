"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.

Computed by torch-fidelity's ``kid_features_to_metric`` (100 random subsets of 1000,
``rng_seed`` 2020 by default; repeated in :mod:`genbench.metrics._fidelity_math`) on
features genbench extracted once, so it equals
``calculate_metrics(kid=True)`` with the same extractor and settings. The subset size
is clipped to the smaller set, so small sample counts still get a value.
"""

from __future__ import annotations

from torch import Tensor

from genbench.metrics._blas import single_threaded_blas
from genbench.metrics._fidelity_math import kid_features_to_metric
from genbench.metrics.group import GroupValues, MetricGroup, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_KID = "kid"
KEY_KID_STD = "kid_std"

register_metric(MetricSpec(
    KEY_KID, "Kernel Inception Distance: mean unbiased MMD^2 over random subsets (Bińkowski et al. 2018)",
    unit="", higher_is_better=False, kind="distance",
))
register_metric(MetricSpec(
    KEY_KID_STD, "standard deviation of the KID estimate over its subsets",
    unit="", higher_is_better=None, kind="uncertainty", group="info",
))


def kid_from_features(
    generated: Tensor, reference: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 2020
) -> tuple[float, float]:
    """``(kid, kid_std)`` of ``generated [N,D]`` against ``reference [M,D]``."""
    size = min(subset_size, len(generated), len(reference))
    with single_threaded_blas():
        return kid_features_to_metric(generated.float().cpu(), reference.float().cpu(), subsets, size, seed)


def _compute_kid(inputs: MetricInputs) -> GroupValues:
    lens, config = inputs.lens, inputs.config
    with inputs.timer("kid"):
        kid, std = kid_from_features(lens.features, lens.reference.features, config.kid_subsets,
                                     config.kid_subset_size, config.estimator_seed)
    return {KEY_KID: kid, KEY_KID_STD: std}


register_metric_group(MetricGroup(
    "kid", (KEY_KID, KEY_KID_STD), _compute_kid, frozenset({"features"}), "kernel inception distance",
))
