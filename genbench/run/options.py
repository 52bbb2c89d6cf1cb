"""How to run a suite: every option of ``genbench run`` in one frozen value, validated once, where it is built.

:func:`genbench.run.plan.run_suite` takes a :class:`RunOptions`; the planner reads its
selection (models, seeds, budget, ``--set``), and each :class:`genbench.run.task.RunSpec`
carries the options as they apply to its one run (paths made absolute, the device
resolved), so a default such as ``checkpoint_every_seconds`` is written here alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.budget import Budget, parse_budget_overrides
from genbench.errors import ConfigError
from genbench.protocol import Generator
from genbench.validation import describe, expect_seeds, is_int, is_number

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class RunOptions:
    """The options of one ``genbench run`` (or ``genbench.run_suite`` call), checked when built.

    A wrong value raises ``genbench.errors.ConfigError`` with one line naming the
    option; sequences are kept as tuples and ``budget`` text as its table, so every
    option has one form after construction.
    """

    models: Sequence[str] | None = None
    """A subset of the suite's models to run (other registered generators may be named too); None: all."""
    extra_models: Sequence[type[Generator]] = ()
    """Generator classes of your own (``--model FILE.py:CLASS``); they always run."""
    seeds: Sequence[int] | None = None
    """The seeds to run; None: the suite's."""
    budget: str | Mapping[str, Any] | None = None
    """``--budget``: replaces every model's whole budget (``"images=N,seconds=S"`` or its table); a kind it does
    not name is unset."""
    set_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``--set MODEL.FIELD=VALUE``: per model, settings over the suite file's."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; resolved where the runs execute."""
    data_root: str | os.PathLike | None = None
    """Dataset folder (default: ``$GENBENCH_DATA``, else ``~/.cache/genbench/data``)."""
    out: str | os.PathLike = "results"
    """Results folder: runs go to ``out/SUITE/MODEL/seedK/``."""
    resume: bool = False
    """Keep finished runs and continue interrupted ones from their checkpoints."""
    overwrite: bool = False
    """Start over runs that already have results in ``out``."""
    executor: str = "local"
    """``local`` (one run after another in this process) or ``ray`` (one Ray task per run)."""
    ray_address: str | None = None
    """With ``executor="ray"``: None starts a local instance, ``"auto"`` or ``host:port`` joins a cluster."""
    cpus_per_run: int | None = None
    """torch threads per run and the CPUs Ray reserves (default: every core on the CPU, cores per GPU on CUDA)."""
    gpus_per_run: float | None = None
    """GPUs Ray reserves per run (default: 1 on CUDA, else 0)."""
    checkpoint_every_seconds: float | None = 60.0
    """Save a run's checkpoint at most this often (None: never by time)."""
    checkpoint_every_steps: int | None = None
    """Also save it every this many steps (None: never by steps)."""
    tensorboard_dir: str | os.PathLike | None = None
    """Also log every run for TensorBoard under this folder (the ``tensorboard`` extra)."""
    compare: Sequence[str | os.PathLike] = ()
    """Results folders of the same suite version that join the leaderboard without being rerun."""
    allow_dirty: bool = False
    """Write into a results folder under git from a checkout with uncommitted changes (recorded)."""
    metric_files: Sequence[str] = ()
    """``--metric FILE.py:FUNCTION``: metrics of your own, computed in every run."""
    lens_files: Sequence[str] = ()
    """``--lens FILE.py:CLASS``: lenses of your own, for every run's feature-based metrics."""

    def __post_init__(self) -> None:
        def keep(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}; valid: {', '.join(EXECUTORS)}")
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError("--ray-address needs --executor ray")
        for name in ("resume", "overwrite", "allow_dirty"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {describe(getattr(self, name))}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        if self.cpus_per_run is not None and not (is_int(self.cpus_per_run) and self.cpus_per_run >= 1):
            raise ConfigError(f"--cpus-per-run must be a whole number >= 1, got {self.cpus_per_run!r}")
        if self.gpus_per_run is not None and not (is_number(self.gpus_per_run) and self.gpus_per_run >= 0):
            raise ConfigError(f"--gpus-per-run must be >= 0, got {self.gpus_per_run!r}")
        if self.checkpoint_every_seconds is not None and not (
                is_number(self.checkpoint_every_seconds) and self.checkpoint_every_seconds >= 0):
            raise ConfigError(f"checkpoint_every_seconds must be a number >= 0 or None, "
                              f"got {self.checkpoint_every_seconds!r}")
        if self.checkpoint_every_steps is not None and not (
                is_int(self.checkpoint_every_steps) and self.checkpoint_every_steps >= 1):
            raise ConfigError(f"checkpoint_every_steps must be a whole number >= 1 or None, "
                              f"got {self.checkpoint_every_steps!r}")
        for name in ("models", "extra_models", "compare", "metric_files", "lens_files"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)) or not isinstance(value, (Sequence, type(None))):
                raise ConfigError(f"{name} must be a list, got {describe(value)}")
        if self.models is not None:
            keep("models", tuple(self.models))
        keep("extra_models", tuple(self.extra_models))
        for cls in self.extra_models:
            if not (isinstance(cls, type) and issubclass(cls, Generator)):
                raise ConfigError(f"extra_models must be Generator subclasses, got {describe(cls)}")
        if self.seeds is not None:
            seeds = self.seeds if isinstance(self.seeds, (str, bytes)) or not hasattr(self.seeds, "__iter__") \
                else list(self.seeds)
            keep("seeds", expect_seeds(seeds, "seeds"))
        if isinstance(self.budget, str):
            keep("budget", parse_budget_overrides(self.budget))
        if self.budget is not None:
            if not isinstance(self.budget, Mapping):
                raise ConfigError(f"budget must be text such as 'images=60000' or a table, got {describe(self.budget)}")
            keep("budget", dict(self.budget))
            Budget.from_dict(self.budget)  # its kinds and values, before anything trains
        if not isinstance(self.set_overrides, Mapping):
            raise ConfigError(f"set_overrides must be a table of tables, got {describe(self.set_overrides)}")
        keep("set_overrides", {model: dict(values) for model, values in self.set_overrides.items()})
        keep("compare", tuple(self.compare))
        keep("metric_files", tuple(_absolute_plugin_file(spec) for spec in self.metric_files))
        keep("lens_files", tuple(_absolute_plugin_file(spec) for spec in self.lens_files))

    def for_run(self, device: str, threads: int | None) -> RunOptions:
        """These options as one run uses them, wherever it executes: the device resolved, ``threads`` torch
        threads, every path absolute; the selection (models, seeds, budget, ``--set``), which the plan has
        applied, is left out, so a spec does not carry every other run's classes to a Ray worker."""
        return dataclasses.replace(
            self, models=None, extra_models=(), seeds=None, budget=None, set_overrides={}, device=device,
            cpus_per_run=threads, data_root=_absolute(self.data_root), out=_absolute(self.out),
            tensorboard_dir=_absolute(self.tensorboard_dir), compare=tuple(_absolute(c) for c in self.compare),
        )


def _absolute(path: str | os.PathLike | None) -> str | None:
    return str(Path(path).absolute()) if path else None


def _absolute_plugin_file(spec: str) -> str:
    """``file.py:NAME`` with the file's absolute path, so that a worker in another folder finds it."""
    if not isinstance(spec, str):
        raise ConfigError(f"a plug-in must be given as FILE.py:NAME, got {describe(spec)}")
    path, sep, name = spec.rpartition(":")
    return f"{Path(path).resolve()}:{name}" if sep and path and name and Path(path).is_file() else spec
