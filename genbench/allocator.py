"""Keep freed tensor memory in the process for reuse (glibc's malloc, on Linux).

glibc serves every block above its mmap threshold with a fresh ``mmap`` and unmaps it on
``free`` (the threshold adapts upwards, but only to 32 MB on 64-bit systems), and it trims
the heap's top back to the OS whenever more than its trim threshold is free there. CPU
tensors in training and evaluation loops are allocated and freed again at every step, so
each step page-faults its activations in from zero, which for large evaluation batches
(vae's importance-weighted bound) can cost more than the arithmetic. jemalloc and
tcmalloc keep such memory, which is why PyTorch's CPU performance guide recommends
preloading them; raising glibc's two thresholds does the same without a second library.
Values do not change, only where their memory comes from; the process keeps up to its peak
in use.

Set ``GENBENCH_KEEP_FREED_MEMORY=0`` to leave the allocator's defaults alone (for example on
a machine short of memory, or to compare).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys

ENV = "GENBENCH_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap, and up to 1 GiB free at its top stays mapped

@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they are raised.

    False, and nothing changed, on a C library other than glibc, or when
    ``GENBENCH_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    # mallopt returns 1 on success.
    return libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1
