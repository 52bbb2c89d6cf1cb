"""Build every set of every family, score each with the registered metric groups, judge every cell.

Scoring goes through the metric registry (:func:`genbench.metrics.metric_groups`,
:func:`genbench.evaluate.compute_metric_groups`), as ``genbench eval`` does: the domain classifier's
features and logits of a set are extracted once, the self-supervised lens's when a group asks, and
every group reads them against the cached statistics of the reference images. A metric group
registered later is scored here without a change. A group none of whose keys has a direction
(``fid_ci``: the ends of an interval) has nothing to judge and is skipped, and said to be.

Sets that are the same images at the same seed (every family's unchanged set is the seed's base
set) are scored once. Sets are scored in worker processes (one per usable core, one torch thread
each) or, with ``workers=1``, in this process with one torch thread: the numbers do not depend on
the number of workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genbench.data.datasets import dataset_names
from genbench.data.splits import HELD_OUT, REFERENCE, TEST, TRAIN, held_out_mask, split_images, split_labels
from genbench.errors import ConfigError
from genbench.evaluate.settings import EvalConfig
from genbench.sanity.families import (
    FAMILIES,
    NONE,
    ROLES,
    SANITY_HIGHER_IS_BETTER,
    BuiltSet,
    Family,
    Pools,
    clean_rows,
    expectation,
)
from genbench.sanity.judge import Cell, judge

DEFAULT_N = 1000  # images per set: fid_inf needs more than 640 (its smallest subset must exceed 128 features)
QUICK_N = 100
DEFAULT_SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)

ProgressFn = Callable[[int, int, str], None]


def judged_direction(key: str) -> bool | None:
    """A metric's direction as the sanity checks read it: the registry's, else :data:`SANITY_HIGHER_IS_BETTER`."""
    from genbench.metrics import metric_specs

    spec = metric_specs()[key]
    return spec.higher_is_better if spec.higher_is_better is not None else SANITY_HIGHER_IS_BETTER.get(key)


def plan_groups(requested: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``(groups to score, {skipped group: why})``: the requested groups with a judged key, and the groups
    they imply, in registration order."""
    from genbench.evaluate.samples import requested_groups
    from genbench.metrics import metric_groups

    registry = metric_groups()
    wanted = requested_groups(requested)
    skipped = {name: "none of its keys has a direction (nothing to judge)" for name in wanted
               if all(judged_direction(k) is None for k in registry[name].keys)}
    keep = requested_groups([g for g in wanted if g not in skipped]) if len(skipped) < len(wanted) else set()
    return [g for g in registry if g in keep], {g: r for g, r in skipped.items() if g not in keep}


# -- the data --------------------------------------------------------------------------------------

def load_pools(dataset: str, data_root: str | os.PathLike | None = None, device: str = "cpu") -> Pools:
    """Held-out images of ``dataset`` (and of the other dataset), the training split, the reference's class shares
    and the domain classifier's top-1 class."""
    from genbench.features import load_extractor

    if dataset not in dataset_names():
        raise ConfigError(f"unknown dataset {dataset!r}; valid: {', '.join(dataset_names())}")
    other = next(d for d in dataset_names() if d != dataset)
    extractor = load_extractor("genbench", dataset, device)
    test_labels = split_labels(dataset, TEST, data_root)
    reference_labels = split_labels(dataset, REFERENCE, data_root)
    classes = int(test_labels.max()) + 1

    def predict(images: Tensor) -> np.ndarray:
        return extractor.extract(images).logits.argmax(dim=1).numpy()

    return Pools(
        dataset=dataset,
        images=split_images(dataset, HELD_OUT, data_root),
        labels=split_labels(dataset, HELD_OUT, data_root).numpy(),
        test_index=np.flatnonzero(held_out_mask(len(test_labels)).numpy()),
        train=split_images(dataset, TRAIN, data_root),
        other=split_images(other, HELD_OUT, data_root),
        reference_shares=np.bincount(reference_labels.numpy(), minlength=classes) / len(reference_labels),
        predict=predict,
    )


# -- scoring one set -------------------------------------------------------------------------------

class Scorer:
    """Scores sets of one dataset with the given groups (extractors and statistics loaded once)."""

    def __init__(self, dataset: str, groups: Sequence[str], data_root: str | os.PathLike | None = None,
                 device: str = "cpu", config: EvalConfig = EvalConfig()) -> None:
        from genbench.features import load_extractor, load_reference
        from genbench.metrics.group import NEEDS

        self.dataset, self.groups, self.data_root, self.device, self.config = dataset, list(groups), data_root, \
            device, config
        self.extractor = load_extractor("genbench", dataset, device)
        self.reference = load_reference(dataset, self.extractor, split=REFERENCE, data_root=data_root,
                                        ks=(config.k_nearest,))
        self.reference_labels = split_labels(dataset, REFERENCE, data_root)
        self.available = set(NEEDS)
        self._ssl: Any = None
        self._train: Tensor | None = None

    def _ssl_view(self, images: Tensor):
        from genbench.features import load_reference
        from genbench.features.ssl import load_ssl_extractor
        from genbench.metrics.inputs import LensView

        if self._ssl is None:
            extractor = load_ssl_extractor(self.dataset, self.device)
            self._ssl = (extractor, load_reference(self.dataset, extractor, split=REFERENCE, data_root=self.data_root,
                                                   ks=(self.config.k_nearest,)))
        extractor, reference = self._ssl
        return LensView(extractor.extract(images, self.config.feature_batch_size).features, None, reference)

    def _train_images(self) -> Tensor:
        if self._train is None:
            self._train = split_images(self.dataset, TRAIN, self.data_root)
        return self._train

    def score(self, images: Tensor, seed: int, groups: Sequence[str] | None = None,
              ) -> tuple[dict[str, Any], dict[str, str], dict[str, float]]:
        """``(metrics, null reasons, seconds per group)`` of ``images [n,1,28,28] uint8`` by ``groups`` (default:
        the scorer's; each group's implied groups must be among them)."""
        groups = self.groups if groups is None else list(groups)
        from genbench.evaluate.samples import compute_metric_groups
        from genbench.metrics import metric_groups
        from genbench.metrics.inputs import LensView, MetricInputs

        seconds: dict[str, float] = {}
        start = time.perf_counter()
        feats = self.extractor.extract(images, self.config.feature_batch_size)
        seconds["features"] = time.perf_counter() - start
        inputs = MetricInputs(
            samples=images, config=self.config, seed=seed, dataset=self.dataset, data_root=self.data_root,
            lens=LensView(feats.features, feats.logits, self.reference), reference_labels=self.reference_labels,
            load_ssl_lens=lambda: self._ssl_view(images), load_train=self._train_images,
            load_reference_images=lambda: split_images(self.dataset, REFERENCE, self.data_root),
        )
        registry = metric_groups()
        values: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        for name in groups:
            start = time.perf_counter()
            out, why = compute_metric_groups(inputs, groups, self.available, [registry[name]])
            seconds[name] = time.perf_counter() - start
            values.update(out)
            reasons.update(why)
        return values, reasons, seconds


_WORKER: Scorer | None = None


def _init_worker(dataset: str, groups: list[str], data_root: Any, device: str) -> None:
    global _WORKER
    torch.set_num_threads(1)
    _WORKER = Scorer(dataset, groups, data_root, device)


def _score_in_worker(images: Tensor, seed: int, groups: list[str]):
    assert _WORKER is not None
    return _WORKER.score(images, seed, groups)


# -- the whole run ---------------------------------------------------------------------------------

@dataclass
class SetResult:
    family: str
    level: float
    seed: int
    n: int
    metrics: dict[str, Any]
    null_reasons: dict[str, str]
    scored_as: int  # index of the scored set whose values these are (identical images at the same seed)


@dataclass
class SanityResult:
    dataset: str
    n: int
    seeds: list[int]
    quick: bool
    groups: list[str]
    skipped_groups: dict[str, str]
    families: list[Family]
    levels: dict[str, tuple[float, ...]]
    sets: list[SetResult]
    cells: dict[tuple[str, str], Cell]
    keys: list[str]
    undeclared: list[str]
    group_seconds: dict[str, float] = field(default_factory=dict)
    build_seconds: float = 0.0
    scored_sets: int = 0
    workers: int = 1


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(device: str) -> int:
    """One worker process per usable core on the CPU (at most 4); one on a GPU."""
    return 1 if str(device).startswith("cuda") else max(1, min(4, _usable_cores()))


def run_sanity(
    dataset: str,
    *,
    metric_groups: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    n: int | None = None,
    families: Sequence[str] | None = None,
    data_root: str | os.PathLike | None = None,
    device: str = "cpu",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> SanityResult:
    """Every family's sets for ``dataset`` at every level and seed, scored and judged."""
    from genbench.metrics import metric_groups as registered

    registry = registered()
    groups, skipped = plan_groups(list(registry) if metric_groups is None else metric_groups)
    if not groups:
        raise ConfigError(f"none of the metric groups {', '.join(sorted(skipped))} has a metric with a direction "
                          f"to judge; choose others with --metrics")
    seeds = list(QUICK_SEEDS if quick and seeds is None else DEFAULT_SEEDS if seeds is None else seeds)
    n = n or (QUICK_N if quick else DEFAULT_N)
    unknown = sorted(set(families or ()) - {f.name for f in FAMILIES})
    if unknown:
        raise ConfigError(f"unknown sanity famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                          f"valid: {', '.join(f.name for f in FAMILIES)}")
    chosen = [f for f in FAMILIES if families is None or f.name in families]
    pools = load_pools(dataset, data_root, device)
    started = time.perf_counter()
    levels = {f.name: f.quick_levels() if quick else f.levels for f in chosen}
    built: list[tuple[Family, float, int, BuiltSet]] = []
    for seed in seeds:
        rows = clean_rows(pools, n, seed)
        for family in chosen:
            for level in levels[family.name]:
                built.append((family, level, seed, family.make(pools, rows, level, seed)))
    build_seconds = time.perf_counter() - started
    per_family = {f.name: family_groups(f.name, groups) for f in chosen}
    # One score per distinct (images, seed), with every group some family of those images needs.
    unique: dict[tuple[str, int], int] = {}
    jobs: list[tuple[Tensor, int, list[str]]] = []
    job_labels: list[str] = []
    index = []
    for family, level, seed, s in built:
        key = (hashlib.sha1(s.images.numpy().tobytes()).hexdigest(), seed)
        if key not in unique:
            unique[key] = len(jobs)
            jobs.append((s.images, seed, []))
            job_labels.append(f"{family.name} {level:g} seed {seed}")
        need = jobs[unique[key]][2]
        need.extend(g for g in per_family[family.name] if g not in need)
        index.append(unique[key])
    jobs = [(images, seed, [g for g in groups if g in need]) for images, seed, need in jobs]
    workers = workers or (1 if quick else default_workers(device))  # --quick: starting workers costs more
    scored = _score_all(dataset, groups, data_root, device, jobs, workers, progress, job_labels)
    group_seconds: dict[str, float] = {}
    for _values, _reasons, seconds in scored:
        for g, t in seconds.items():
            group_seconds[g] = group_seconds.get(g, 0.0) + t
    sets = [SetResult(f.name, lv, sd, len(s.images), dict(scored[i][0]), dict(scored[i][1]), i)
            for (f, lv, sd, s), i in zip(built, index, strict=True)]
    keys = [k for g in groups for k in registry[g].keys if judged_direction(k) is not None]
    undeclared = [k for k in keys if k not in ROLES]
    cells: dict[tuple[str, str], Cell] = {}
    for family in chosen:
        fam_levels = levels[family.name]
        fam_sets = {(s.level, s.seed): s for s in sets if s.family == family.name}
        for key in keys:
            exp = expectation(family.name, key)
            if exp is None:
                exp = NONE
            group = next(g for g in groups if key in registry[g].keys)
            if group not in per_family[family.name]:
                cells[(family.name, key)] = Cell(exp, 0, "none", None, None, None, None, None,
                                                 "not computed: no expectation here")
                continue
            table = [[fam_sets[(lv, sd)].metrics[key] for sd in seeds] for lv in fam_levels]
            cells[(family.name, key)] = judge(list(fam_levels), table, fam_levels.index(family.base), exp,
                                              judged_direction(key))
    return SanityResult(dataset, n, seeds, quick, groups, skipped, chosen, levels, sets, cells, keys, undeclared,
                        group_seconds, build_seconds, len(jobs), workers)


def family_groups(family: str, groups: Sequence[str]) -> list[str]:
    """The groups scored in ``family``: all of ``groups`` but those whose every judged key has no expectation
    there (nothing to judge) and no role the family shows anyway; a key without a role (no declaration yet)
    keeps its group."""
    from genbench.evaluate.samples import requested_groups
    from genbench.metrics import metric_groups

    registry = metric_groups()
    show = next(f.show for f in FAMILIES if f.name == family)
    wanted = [g for g in groups
              if any(expectation(family, k) != NONE or ROLES.get(k) in show
                     for k in registry[g].keys if judged_direction(k) is not None)]
    closed = requested_groups(wanted) if wanted else set()
    return [g for g in groups if g in closed]


@contextlib.contextmanager
def _children_skip_main():
    """A 'spawn' child first re-runs the parent's ``__main__`` unless that is a package's ``__main__`` module
    (multiprocessing skips those). The installed ``genbench`` script is a plain file without a ``__name__``
    guard, so a child would run the command again; while workers start, ``__main__`` is named as
    ``python -m genbench.cli`` would name it."""
    import importlib.machinery

    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is not None:
        yield
        return
    main.__spec__ = importlib.machinery.ModuleSpec("genbench.cli.__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None


def _score_all(dataset, groups, data_root, device, jobs, workers, progress, labels):
    total = len(jobs)
    results: list[Any] = [None] * total
    if workers <= 1 or total <= 1:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            scorer = Scorer(dataset, groups, data_root, device)
            for i, (images, seed, need) in enumerate(jobs):
                results[i] = scorer.score(images, seed, need)
                if progress:
                    progress(i + 1, total, labels[i])
        finally:
            torch.set_num_threads(previous)
        return results
    import multiprocessing

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(dataset, list(groups), data_root, device)) as pool:
        with _children_skip_main():  # submitting starts the workers
            futures = {pool.submit(_score_in_worker, images, seed, need): i
                       for i, (images, seed, need) in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if progress:
                progress(done, total, labels[futures[future]])
    return results
