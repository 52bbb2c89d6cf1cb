"""Class coverage from the domain classifier: which digits a model draws, and how well within each.

Each sample is assigned the domain classifier's top class (``argmax`` of its
logits); the real side is the reference part of the test split
(:mod:`genbench.data.splits`) with its true labels. Three numbers:

- ``classes_covered``: how many classes hold at least half of their share in the
  reference (a class with 10% of the test images counts when at least 5% of the
  samples are assigned to it). Real images score 10; a model that draws only
  digits 0-4 scores 5.
- ``class_kl``: ``KL(p_samples || p_test) = sum_c p_s(c) ln(p_s(c) / p_test(c))``
  in nats, with ``0 ln 0 = 0``. This direction needs no smoothing: every class
  has test images, so ``p_test(c) > 0``, and a class the samples miss adds
  nothing, while the mass piled on the classes drawn grows it. Digits 0-4 only
  give about ``ln 2``, one class about ``ln 10``, real images about 0. (The other
  direction would be infinite as soon as one class is missing.)
- ``fid_intra``: intra-class FID (StudioGAN's iFID, Kang et al. 2023): the mean over
  classes of the Fréchet distance between the features of the samples assigned to a
  class and those of that class's reference images. None, with the classes named,
  when a class has fewer than ``MIN_CLASS_SAMPLES`` samples: a Gaussian fit of so
  few points is noise, and leaving the class out would reward dropping it.

All three need logits over the dataset's own classes, so they are None with
``--features inception``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from genbench.metrics.fid import fid_from_features
from genbench.metrics.group import GroupValues, MetricGroup, Null, register_metric_group
from genbench.metrics.inputs import MetricInputs
from genbench.metrics.spec import MetricSpec, register_metric

KEY_CLASSES_COVERED = "classes_covered"
KEY_CLASS_KL = "class_kl"
KEY_FID_INTRA = "fid_intra"
CLASS_KEYS = (KEY_CLASSES_COVERED, KEY_CLASS_KL, KEY_FID_INTRA)
COVERED_SHARE = 0.5  # a class is covered at >= half of its test share
MIN_CLASS_SAMPLES = 50  # samples a class needs for its intra-class FID

register_metric(MetricSpec(
    KEY_CLASSES_COVERED,
    "classes (of the domain classifier's) to which at least half of their test-split share of the samples is "
    "assigned; 10 for real MNIST",
    unit="classes", higher_is_better=True, kind="count",
))
register_metric(MetricSpec(
    KEY_CLASS_KL,
    "KL(p_samples || p_test) of the samples' predicted-class histogram from the test split's labels; 0 for real "
    "images, ln 2 for half of the classes",
    unit="nats", higher_is_better=False, kind="distance",
))
register_metric(MetricSpec(
    KEY_FID_INTRA,
    "intra-class FID: mean over classes of the FID between the samples assigned to a class and that class's test "
    f"images (StudioGAN's iFID); None below {MIN_CLASS_SAMPLES} samples in a class",
    unit="", higher_is_better=False, kind="distance",
))


def class_histogram(labels: Tensor, num_classes: int) -> np.ndarray:
    """Share of each class among ``labels [N]`` (int), ``[num_classes]`` float64 summing to 1."""
    counts = torch.bincount(labels.long().flatten(), minlength=num_classes).double().numpy()
    if len(counts) != num_classes:
        raise ValueError(f"labels reach class {len(counts) - 1}, but there are {num_classes} classes")
    return counts / counts.sum()


def classes_covered(p_samples: np.ndarray, p_test: np.ndarray, share: float = COVERED_SHARE) -> int:
    """Classes whose sample share is at least ``share`` times their test share."""
    return int(np.sum(p_samples >= share * p_test))


def class_kl(p_samples: np.ndarray, p_test: np.ndarray) -> float:
    """``KL(p_samples || p_test)`` in nats (``0 ln 0 = 0``); ``p_test`` must be positive."""
    if np.any(p_test <= 0):
        raise ValueError("class_kl needs every class in the test histogram")
    drawn = p_samples > 0
    return float(np.sum(p_samples[drawn] * np.log(p_samples[drawn] / p_test[drawn])))


def class_metrics(
    logits: Tensor,
    features: Tensor,
    reference_features: Tensor,
    reference_labels: Tensor,
    min_class_samples: int = MIN_CLASS_SAMPLES,
) -> tuple[dict[str, float | int | None], dict[str, str]]:
    """The three class metrics of samples (``logits [N,C]``, ``features [N,D]``) against the reference.

    ``reference_features [M,D]`` and ``reference_labels [M]`` are the reference images'
    features and true labels, row by row. Returns ``(metrics, null_reasons)``.
    """
    num_classes = logits.shape[1]
    if len(reference_features) != len(reference_labels):
        raise ValueError(f"{len(reference_features)} reference features but {len(reference_labels)} labels")
    predicted = logits.argmax(dim=1)
    p_samples = class_histogram(predicted, num_classes)
    p_test = class_histogram(reference_labels, num_classes)
    out: dict[str, float | int | None] = {
        KEY_CLASSES_COVERED: classes_covered(p_samples, p_test),
        KEY_CLASS_KL: class_kl(p_samples, p_test),
    }
    reasons: dict[str, str] = {}
    counts = torch.bincount(predicted, minlength=num_classes)
    short = [c for c in range(num_classes) if counts[c] < min_class_samples]
    if short:
        out[KEY_FID_INTRA] = None
        reasons[KEY_FID_INTRA] = (
            f"class(es) {', '.join(map(str, short))} have fewer than {min_class_samples} samples "
            f"({', '.join(str(int(counts[c])) for c in short)})")
    else:
        fids = [fid_from_features(features[predicted == c], *_class_stats(reference_features, reference_labels, c))
                for c in range(num_classes)]
        out[KEY_FID_INTRA] = math.fsum(fids) / num_classes
    return out, reasons


def _class_stats(features: Tensor, labels: Tensor, c: int) -> tuple[np.ndarray, np.ndarray]:
    x = features[labels == c].double().numpy()
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _compute_classes(inputs: MetricInputs) -> GroupValues:
    lens = inputs.lens
    with inputs.timer("classes"):
        values, reasons = class_metrics(lens.logits, lens.features, lens.reference.features, inputs.reference_labels)
    return {k: Null(reasons[k]) if k in reasons else v for k, v in values.items()}


register_metric_group(MetricGroup(
    "classes", CLASS_KEYS, _compute_classes,
    frozenset({"features", "logits", "domain_classifier", "reference_labels"}),
    "class coverage, class KL and intra-class FID from the domain classifier",
))
