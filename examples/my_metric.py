"""Metrics of your own, given as ``--metric examples/my_metric.py:ink_share`` (and ``:ink_share_gap``).

A metric is a function of the samples, ``uint8 [n,1,28,28]`` (a read-only numpy array),
returning a number; a parameter named ``reference`` receives the reference images FID is
measured against (``uint8 [m,1,28,28]``). The key in results is the function's name.
"""

import numpy as np

INK = 128  # a pixel at or above half intensity is ink


def ink_share(samples: np.ndarray) -> float:
    """Share of pixels that are ink (>= 128) in the samples."""
    return float((samples >= INK).mean())


def ink_share_gap(samples: np.ndarray, reference: np.ndarray) -> float:
    """Absolute difference of the ink share of the samples and of the reference images."""
    return abs(ink_share(samples) - ink_share(reference))
