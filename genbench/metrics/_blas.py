"""Keep numpy's BLAS single-threaded around the small matrix work of the metrics.

torch-fidelity's FID and KID run in numpy. With a multi-threaded OpenBLAS, a 128x128
eigendecomposition or a 1000x128 product is dominated by thread hand-offs, and on a
machine whose cores are shared it can slow down by orders of magnitude (the measured
case is in ``results/speed/README.md``). One thread is close to optimal for these
sizes. threadpoolctl (a scikit-learn dependency) is used when installed; without it
nothing changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: results are identical, only speed differs
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
