"""How the test split is divided between the metrics and the ``real-data`` reference row.

Every fifth test image (indices 4, 9, 14, ...: 2,000 of 10,000) is *held out*: no
metric uses it as a reference, so it is a set of real images that neither the
models nor the metrics have seen. The other 8,000 are the *reference*: the real
side of FID, KID, precision/recall and density/coverage, and the calibration set of
``copy_fraction``.

``real-data`` samples the held-out images. Scored against the whole test split it
would partly be scored against itself (its own images sit in the reference), which
makes real data look better than any model can; with the two parts disjoint its
scores are those of fresh real images.

The held-out images are taken by a fixed stride, not as a block, because the order
of MNIST's test split is not random: its first 5,000 images come from NIST's SD-3
writers and the last 5,000 from SD-1 writers (LeCun et al.'s MNIST page). A stride
takes 1,000 from each half.

``genbench tune`` never reads the test split: its trials train on ``train-fit`` (the
first 50,000 training images) and are scored on ``train-validation`` (the last 10,000).
The block is fixed, so every model of every tune is selected on the same images.

Likelihood and reconstruction metrics are unchanged: they use the whole test split
(``nll_bpd``) or its first images (``psnr``, ``completion_*``), as before.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from genbench.data.datasets import load_split

TRAIN = "train"
TEST = "test"
REFERENCE = "test-reference"  # FID/KID/PR/DC reference and copy_fraction calibration
HELD_OUT = "test-heldout"  # the images of real-data
HELD_OUT_STRIDE = 5  # one test image in five is held out
FIT = "train-fit"  # what tuning trials train on
VALIDATION = "train-validation"  # what tuning trials are scored on
VALIDATION_SIZE = 10_000  # the last images of the training split
SPLITS = (TRAIN, TEST, REFERENCE, HELD_OUT, FIT, VALIDATION)


def held_out_mask(n: int) -> Tensor:
    """``[n]`` bool: True for the held-out rows of a test split of ``n`` images."""
    return torch.arange(n) % HELD_OUT_STRIDE == HELD_OUT_STRIDE - 1


def split_labels(dataset: str, split: str, data_root: str | os.PathLike | None = None) -> Tensor:
    """Labels ``[N]`` int64 of a split, in the order of :func:`split_images`."""
    if split in (TRAIN, TEST):
        return load_split(dataset, split, data_root).labels
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    labels = load_split(dataset, TEST, data_root).labels
    mask = held_out_mask(len(labels))
    return labels[mask if split == HELD_OUT else ~mask].contiguous()


def split_images(dataset: str, split: str, data_root: str | os.PathLike | None = None) -> Tensor:
    """Images ``[N,1,28,28] uint8`` of ``train``, ``test``, ``test-reference`` or ``test-heldout``."""
    if split in (TRAIN, TEST):
        return load_split(dataset, split, data_root).images
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if split in (FIT, VALIDATION):
        train = load_split(dataset, TRAIN, data_root).images
        cut = len(train) - VALIDATION_SIZE
        return (train[:cut] if split == FIT else train[cut:]).contiguous()
    test = load_split(dataset, TEST, data_root).images
    mask = held_out_mask(len(test))
    return test[mask if split == HELD_OUT else ~mask].contiguous()
