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
TRAIN_FLOPS_PER_IMAGE = register_metric(MetricSpec(
    "train_flops_per_image", "FLOPs of train_step per training image (torch FlopCounterMode: matmuls and convolutions)",
    unit="FLOP", higher_is_better=None, default_tol=0.0, group="info"))
TRAIN_FLOPS_PER_S = register_metric(MetricSpec(
    "train_flops_per_s", "achieved FLOP/s while training = train_flops_per_image x train_images_per_s",
    unit="FLOP/s", higher_is_better=True, default_tol=0.25, group="speed"))
FLOPS_UTILIZATION = register_metric(MetricSpec(
    "flops_utilization", "train_flops_per_s / this machine's calibrated matmul FLOP/s", unit="fraction",
    higher_is_better=True, default_tol=0.25, group="speed"))
TRAIN_IMAGES_PER_S_NORM = register_metric(MetricSpec(
    "train_images_per_s_norm",
    "train_images_per_s per TFLOP/s of calibrated machine speed (comparable across machines)",
    unit="img/s/TFLOPs", higher_is_better=True, default_tol=0.25, group="speed"))
SAMPLE_IMAGES_PER_S_NORM = register_metric(MetricSpec(
    "sample_images_per_s_norm", "sample_images_per_s per TFLOP/s of calibrated machine speed",
    unit="img/s/TFLOPs", higher_is_better=True, default_tol=0.25, group="speed"))
