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
