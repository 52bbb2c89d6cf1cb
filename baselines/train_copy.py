"""train-copy: the memorizer row, training images returned verbatim.

Samples are drawn without replacement from all 60,000 training images: the
empirical distribution of the training set, which is what a model that memorizes
its data converges to. It looks excellent to FID, IS and precision, which cannot
tell a copy from a new image; ``copy_fraction`` (1.0 here) is the metric that
catches it. No training, no likelihood.
"""

from __future__ import annotations

from genbench import register_generator
from genbench.data.splits import TRAIN
from genbench.protocol import Role
from genbench_baselines._empirical import EmpiricalGenerator


@register_generator
class TrainCopy(EmpiricalGenerator):
    name = "train-copy"
    role = Role.MEMORIZER
    split = TRAIN
