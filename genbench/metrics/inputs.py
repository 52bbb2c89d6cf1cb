"""What a metric group's compute function reads (``MetricInputs``): the samples, a lens's view of
them (``LensView``), the evaluation's settings, and what is loaded only when a group asks."""

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
    (``genbench.features.ReferenceStats``).
    """

    features: Tensor
    logits: Tensor | None
    reference: Any


class MetricInputs:
    """Everything a group may read; the costly parts are loaded on first use and kept.

    ``config`` is the evaluation's ``genbench.evaluate.EvalConfig``; ``seed`` the run's seed;
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
        load_reference_images: Callable[[], Tensor] | None = None,
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
        self.errors: list[str] = []  # one line per failed plug-in metric, each naming its source
        self._loaders = {"ssl_lens": load_ssl_lens, "train": load_train, "reference_images": load_reference_images}
        self._loaded: dict[str, Any] = {}

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Add the block's wall-clock seconds to ``timings[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def loaded(self, name: str) -> bool:
        """Whether ``name`` (``ssl_lens``, ``train``, ``reference_images``) was loaded, i.e. some group used it."""
        return name in self._loaded

    def _load(self, name: str) -> Any:
        if name not in self._loaded:
            if self._loaders[name] is None:
                raise RuntimeError(f"this evaluation was given no {name}")
            self._loaded[name] = self._loaders[name]()
        return self._loaded[name]

    @property
    def ssl_lens(self) -> LensView:
        """The dataset's self-supervised lens's view (loaded on first use)."""
        return self._load("ssl_lens")

    @property
    def train(self) -> Tensor:
        """``[60000,1,28,28] uint8``: the dataset's training images (loaded on first use)."""
        return self._load("train")

    @property
    def reference_images(self) -> Tensor:
        """``[m,1,28,28] uint8``: the reference images the lens statistics describe (loaded on first use)."""
        return self._load("reference_images")
