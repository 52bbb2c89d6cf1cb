"""real-data: the ceiling row, real images that no model trained on and no metric uses as reference.

Samples are the 2,000 held-out test images (every fifth test image,
:mod:`genbench.data.splits`), drawn without replacement: with 2,000 samples, each one
once. The sample-quality metrics score against the other 8,000, so real-data is
never scored against its own images: its FID, precision and recall are those of
fresh real data at the suite's sample count, the best a model can expect. It is also the
reference point of the copy check: its ``copy_fraction`` is about the nominal 0.05. No
training, no likelihood.
"""

from __future__ import annotations

from genbench import register_generator
from genbench.data.splits import HELD_OUT
from genbench.protocol import Role
from genbench_baselines._empirical import EmpiricalGenerator


@register_generator
class RealData(EmpiricalGenerator):
    name = "real-data"
    role = Role.CEILING
    split = HELD_OUT
