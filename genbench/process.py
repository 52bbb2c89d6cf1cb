"""Process helpers shared by training, evaluation, tuning, speed and the reports: seeding the global
RNGs, the machine's load (at one moment, and sampled over a whole run), this process's memory.
They sit at the bottom of genbench's imports, beside the budget and the search space, so that
every layer can use them without importing the run loop.

The load over a whole run is sampled in the background, so that speed figures say how they were
made. The load is sampled while the run trains and evaluates, not only when it starts: a run that
starts on an idle machine and is then shared gets slow figures, and one that starts while
the machine is busy may run alone afterwards. A run is *under load* when, at any sample
(the first is taken at its start, the last at its end), the 1-minute load average was above
the machine's cores by more than :data:`LOAD_MARGIN`: more threads wanted a core than there
were cores, so its throughput figures are lower than the machine gives a run alone.
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any

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


SAMPLE_SECONDS = 5.0  # the 1-minute load average moves over tens of seconds: finer sampling adds nothing
# A run whose threads fill the cores reads about the core count alone, a little above it with its
# helper threads; half a core of other work sustained over the minute is contention.
LOAD_MARGIN = 0.5


def _one_minute() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # an OS that keeps no load average
        return None


class LoadSampler:
    """Samples the 1-minute load average every ``interval`` seconds between :meth:`start` and :meth:`stop`."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        value = _one_minute()
        if value is not None:
            self.samples.append(value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> LoadSampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="genbench-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop sampling (one last sample) and return what a run record keeps (:func:`summarise`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return summarise(self.samples, os.cpu_count(), self.interval)


def summarise(samples: list[float], cores: int | None, interval: float) -> dict[str, Any]:
    """The record's ``executor.load_average.during``: the samples, their highest and mean value, the cores,
    and whether the run was under load (a sample above the cores plus :data:`LOAD_MARGIN`)."""
    return {
        "interval_s": interval,
        "samples": samples,
        "max": max(samples) if samples else None,
        "mean": round(sum(samples) / len(samples), 2) if samples else None,
        "cores": cores,
        "under_load": bool(samples and cores and max(samples) > cores + LOAD_MARGIN),
    }


def under_load(executor: dict[str, Any] | None, machine: dict[str, Any] | None) -> bool | None:
    """Whether a run record's speed figures were measured under load; None when the record cannot say.

    Records made before the load was sampled over the run have the load at its start and end only;
    those two are judged by the same rule.
    """
    load = (executor or {}).get("load_average") or {}
    during = load.get("during")
    if isinstance(during, dict) and isinstance(during.get("under_load"), bool):
        return during["under_load"]
    cores = (machine or {}).get("cpu_count")
    ends = [v[0] for v in (load.get("start"), load.get("end")) if isinstance(v, list) and v]
    if not ends or not isinstance(cores, int) or cores < 1:
        return None
    return max(ends) > cores + LOAD_MARGIN
