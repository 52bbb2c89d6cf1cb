"""Speed and size figures recorded for every run (measured by the harness and evaluator)."""

from genbench.registry import MetricSpec, register_metric

TRAIN_IMAGES_PER_S = register_metric(MetricSpec(
    "train_images_per_s", "training images per second (train_step time only, no evaluation or checkpoints)",
    unit="img/s", higher_is_better=True, default_tol=0.25, group="speed"))
SAMPLE_IMAGES_PER_S = register_metric(MetricSpec(
    "sample_images_per_s", "images sampled per second during evaluation", unit="img/s",
    higher_is_better=True, default_tol=0.25, group="speed"))
PEAK_MEMORY_MB = register_metric(MetricSpec(
    "peak_memory_mb", "peak memory while training: process RSS sampled at log steps on CPU, "
    "torch.cuda.max_memory_allocated on GPU", unit="MiB", higher_is_better=False, default_tol=0.5, group="speed"))
NUM_PARAMETERS = register_metric(MetricSpec(
    "num_parameters", "trainable and frozen parameters of the generator", unit="", higher_is_better=None,
    default_tol=0.0, group="info"))
