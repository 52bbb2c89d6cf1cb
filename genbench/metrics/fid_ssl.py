"""The Fréchet distance (and precision/recall) in the self-supervised lens (:mod:`genbench.features.ssl`).

Same estimators as ``fid``/``precision``/``recall`` (torch-fidelity's FID math; k = 5
k-NN manifolds), computed on the SimCLR encoder's 128-d features instead of the domain
classifier's, against that lens's cached statistics of the test split's reference part.
A second lens tells a reader whether a verdict depends on what a classifier was
trained to see: the classifier ignores style within a class and reacts strongly to
faint background speckle; the SSL encoder was trained to ignore speckle and small
shifts, and nothing else.
"""

from __future__ import annotations

from genbench.metrics.fid import fid_from_features
from genbench.metrics.group import GroupValues, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.prdc import KEY_PRECISION, KEY_RECALL, precision_recall_density_coverage
from genbench.metrics.spec import MetricSpec, register_metric

KEY_FID_SSL = "fid_ssl"
KEY_PRECISION_SSL = "precision_ssl"
KEY_RECALL_SSL = "recall_ssl"

register_metric(MetricSpec(
    KEY_FID_SSL, "Fréchet distance between generated and test-split features of the self-supervised (SimCLR) encoder",
    unit="", higher_is_better=False, kind="distance",
))
register_metric(MetricSpec(
    KEY_PRECISION_SSL, "precision (k=5) in the self-supervised encoder's features (Kynkäänniemi et al. 2019)",
    unit="fraction", higher_is_better=True, kind="fraction",
))
register_metric(MetricSpec(
    KEY_RECALL_SSL, "recall (k=5) in the self-supervised encoder's features (Kynkäänniemi et al. 2019)",
    unit="fraction", higher_is_better=True, kind="fraction",
))


def _compute_ssl(inputs: MetricInputs) -> GroupValues:
    lens, k = inputs.ssl_lens, inputs.config.k_nearest
    with inputs.timer("fid_ssl"):
        out: dict = {KEY_FID_SSL: fid_from_features(lens.features, lens.reference.mu, lens.reference.sigma)}
    with inputs.timer("prdc_ssl"):
        if len(lens.features) > k:
            prdc = precision_recall_density_coverage(lens.features, lens.reference.features, lens.reference.radii[k], k)
            out[KEY_PRECISION_SSL], out[KEY_RECALL_SSL] = prdc[KEY_PRECISION], prdc[KEY_RECALL]
        else:
            out[KEY_PRECISION_SSL] = out[KEY_RECALL_SSL] = Null(
                f"needs more than {k} samples for k-NN radii, got {len(lens.features)}")
    return out


register_metric_group(MetricGroup(
    "ssl", (KEY_FID_SSL, KEY_PRECISION_SSL, KEY_RECALL_SSL), _compute_ssl, frozenset({"ssl_lens"}),
    "FID, precision and recall in the [second, self-supervised lens](metrics.md#second-lens-fid_ssl), whatever "
    "`--features` is",
))
