"""Evaluation-side counts and speeds (the harness's own speeds are in ``throughput.py``)."""

from genbench.metrics.spec import MetricSpec, register_metric

KEY_N_SAMPLES = "n_samples"
KEY_FEATURE_IMAGES_PER_S = "feature_images_per_s"
KEY_EVAL_IMAGES_PER_S = "eval_images_per_s"

register_metric(MetricSpec(
    KEY_N_SAMPLES, "number of generated samples scored by the sample-quality metrics",
    unit="", higher_is_better=None, kind="info", group="info",
))
register_metric(MetricSpec(
    KEY_FEATURE_IMAGES_PER_S, "feature-extraction throughput on the generated samples",
    unit="img/s", higher_is_better=True, kind="speed", group="speed",
))
register_metric(MetricSpec(
    KEY_EVAL_IMAGES_PER_S, "end-to-end evaluation throughput (reading, features and every metric)",
    unit="img/s", higher_is_better=True, kind="speed", group="speed",
))
