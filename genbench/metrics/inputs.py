"""What a metric group's compute function reads (:class:`MetricInputs`): the samples, a lens's view of
them (:class:`LensView`), the evaluation's settings, and what is loaded only when a group asks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import Tensor


@dataclass(frozen=True)
class LensView:
    """The samples and the reference images seen through one feature extractor.

    ``features [n,d]`` and ``logits [n,c]`` (None for a lens without classes) are the samples';
    ``reference`` holds the reference images' ``features``, ``mu``, ``sigma`` and k-NN ``radii``
    (:class:`genbench.features.ReferenceStats`).
    """

    features: Tensor
    logits: Tensor | None
    reference: Any


class MetricInputs:
    """Everything a group may read; the costly parts are loaded on first use and kept.

    ``config`` is the evaluation's :class:`genbench.evaluate.EvalConfig`; ``seed`` the run's seed;
    ``values`` the metrics computed so far (a group reads those of the groups it implies).
    """

    def __init__(
        self,
        *,
        samples: Tensor | None,
        config: Any,
        seed: int,
        lens: LensView | None = None,
        reference_labels: Tensor | None = None,
        load_ssl_lens: Callable[[], LensView] | None = None,
        load_train: Callable[[], Tensor] | None = None,
        dataset: str | None = None,
        data_root: Any = None,
        timings: dict[str, float] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.samples, self.config, self.seed = samples, config, seed
        self.lens, self.reference_labels = lens, reference_labels
        self.dataset, self.data_root, self.progress = dataset, data_root, progress
        self.timings = {} if timings is None else timings
        self.values: dict[str, Any] = {}
        self._load_ssl_lens, self._load_train = load_ssl_lens, load_train
        self._ssl_lens: LensView | None = None
        self._train: Tensor | None = None

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Add the block's wall-clock seconds to ``timings[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    @property
    def ssl_lens(self) -> LensView:
        """The dataset's self-supervised lens's view (loaded on first use)."""
        if self._ssl_lens is None:
            if self._load_ssl_lens is None:
                raise RuntimeError("this evaluation was given no self-supervised lens")
            self._ssl_lens = self._load_ssl_lens()
        return self._ssl_lens

    @property
    def train(self) -> Tensor:
        """``[60000,1,28,28] uint8``: the dataset's training images (loaded on first use)."""
        if self._train is None:
            if self._load_train is None:
                raise RuntimeError("this evaluation was given no training images")
            self._train = self._load_train()
        return self._train
