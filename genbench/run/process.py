"""Process helpers shared by training, evaluation and speed: seeding the global RNGs, the machine's
load, this process's memory. Kept apart from the training loop so that evaluation and speed
need not import it."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_average() -> list[float] | None:
    """The machine's 1, 5 and 15-minute load averages (None where the OS keeps none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0
