"""Speed and size figures recorded for every run (measured by the harness and evaluator).

Throughputs are medians over measurement windows (the harness's windows of
train_step time, the evaluator's sample calls) with a distribution-free 95%
interval of the median (:func:`genbench.stats.median_ci`).
"""

from genbench.metrics.spec import MetricSpec, register_metric

KEY_TRAIN_IMAGES_PER_S = "train_images_per_s"
KEY_TRAIN_IMAGES_PER_S_CI_LOW = "train_images_per_s_ci_low"
KEY_TRAIN_IMAGES_PER_S_CI_HIGH = "train_images_per_s_ci_high"
KEY_SAMPLE_IMAGES_PER_S = "sample_images_per_s"
KEY_SAMPLE_IMAGES_PER_S_CI_LOW = "sample_images_per_s_ci_low"
KEY_SAMPLE_IMAGES_PER_S_CI_HIGH = "sample_images_per_s_ci_high"

TRAIN_IMAGES_PER_S = register_metric(MetricSpec(
    KEY_TRAIN_IMAGES_PER_S, "training images per second: median over measurement windows of train_step "
    "time (no evaluation or checkpoints)", unit="img/s", higher_is_better=True, kind="speed", group="speed"))
SAMPLE_IMAGES_PER_S = register_metric(MetricSpec(
    KEY_SAMPLE_IMAGES_PER_S, "images sampled per second during evaluation: median over sample calls",
    unit="img/s", higher_is_better=True, kind="speed", group="speed"))
for _key, _what in ((KEY_TRAIN_IMAGES_PER_S_CI_LOW, "lower end of the 95% interval of train_images_per_s"),
                    (KEY_TRAIN_IMAGES_PER_S_CI_HIGH, "upper end of the 95% interval of train_images_per_s"),
                    (KEY_SAMPLE_IMAGES_PER_S_CI_LOW, "lower end of the 95% interval of sample_images_per_s"),
                    (KEY_SAMPLE_IMAGES_PER_S_CI_HIGH, "upper end of the 95% interval of sample_images_per_s")):
    register_metric(MetricSpec(_key, _what + " (null with fewer than 6 windows)", unit="img/s",
                               higher_is_better=None, kind="uncertainty", group="speed"))
PEAK_MEMORY_MB = register_metric(MetricSpec(
    "peak_memory_mb", "peak memory while training: process RSS sampled at log steps on CPU, "
    "torch.cuda.max_memory_allocated on GPU", unit="MiB", higher_is_better=False, kind="speed", group="speed"))
NUM_PARAMETERS = register_metric(MetricSpec(
    "num_parameters", "trainable and frozen parameters of the generator", unit="", higher_is_better=None,
    kind="work", group="info"))
TRAIN_FLOPS_PER_IMAGE = register_metric(MetricSpec(
    "train_flops_per_image", "FLOPs of train_step per training image (torch FlopCounterMode: matmuls and convolutions)",
    unit="FLOP", higher_is_better=None, kind="work", group="info"))
TRAIN_FLOPS_PER_S = register_metric(MetricSpec(
    "train_flops_per_s", "achieved FLOP/s while training = train_flops_per_image x train_images_per_s",
    unit="FLOP/s", higher_is_better=True, kind="speed", group="speed"))
FLOPS_UTILIZATION = register_metric(MetricSpec(
    "flops_utilization", "train_flops_per_s / this machine's calibrated matmul FLOP/s", unit="fraction",
    higher_is_better=True, kind="speed", group="speed"))
TRAIN_IMAGES_PER_S_NORM = register_metric(MetricSpec(
    "train_images_per_s_norm",
    "train_images_per_s per TFLOP/s of calibrated machine speed (comparable across machines)",
    unit="img/s/TFLOPs", higher_is_better=True, kind="speed", group="speed"))
SAMPLE_IMAGES_PER_S_NORM = register_metric(MetricSpec(
    "sample_images_per_s_norm", "sample_images_per_s per TFLOP/s of calibrated machine speed",
    unit="img/s/TFLOPs", higher_is_better=True, kind="speed", group="speed"))
