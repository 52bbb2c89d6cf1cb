"""Plan a tune: the same number of trials and the same per-trial work budget for every model, and
the trials file (``trials.jsonl``) that is a tune's state."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.budget import Budget, parse_budget_overrides
from genbench.data.splits import FIT, VALIDATION, VALIDATION_SIZE
from genbench.errors import ConfigError
from genbench.files.atomic import atomic_write_text
from genbench.protocol import Generator, Role
from genbench.results import git_hash
from genbench.search_space import (
    Distribution,
    describe_distribution,
    validate_search_space,
)
from genbench.suite import Suite, load_suite

TRIALS_FILE = "trials.jsonl"
TUNE_FILE = "tune.json"
CURVE_FILE = "expected_best.csv"
PLOT_FILE = "expected_best.png"
SEARCHES = ("random", "tpe")
TRIAL_FIELDS = ("trial", "config", "metric", "score", "status", "error", "images", "steps",
                "train_seconds", "eval_seconds", "seconds", "git_hash")


# -- planning: everything checked before a trial starts ----------------------------------------

def tune_budget(suite: Suite, budget: str | None) -> Budget:
    """The per-trial budget: ``--budget``, else the suite's default budget (the same for every model).

    The work (images or steps) is the budget; a seconds limit beside it is a guard against a
    runaway trial, as in ``genbench run``: a trial it stops before the work is done is
    ``capped``. A budget of seconds alone is refused: it gives faster machines more work.
    """
    b = Budget.from_dict(parse_budget_overrides(budget)) if budget is not None else suite.default_budget
    if b.images is None and b.steps is None:
        where = "--budget" if budget is not None else f"suite {suite.name}'s budget"
        raise ConfigError(f"{where} for tuning needs images=N or steps=N: a budget of seconds alone gives faster "
                          f"machines more work (unequal effort)")
    return b


@dataclass(frozen=True)
class TrialTask:
    """What every trial of one model shares; picklable, so that it can travel to a Ray worker."""

    suite: Suite
    generator: type[Generator]
    base: dict[str, Any]  # settings under the sampled values: tiny config, then the suite's
    space: dict[str, Distribution]
    budget: Budget
    seed: int
    device: str
    data_root: str | None
    threads: int  # torch intra-op threads: on the CPU a trial's numbers depend on it

    @property
    def model(self) -> str:
        return self.generator.name

    @property
    def metric(self) -> str:
        return self.generator.primary_metric


@dataclass(frozen=True)
class TunePlan:
    """A checked tune: the tasks, K, the searcher and where everything goes."""

    suite: Suite
    tasks: tuple[TrialTask, ...]
    trials: int
    search: str
    seed: int
    out: Path

    def model_dir(self, model: str) -> Path:
        return self.out / model

    def meta(self, task: TrialTask) -> dict[str, Any]:
        """What ``tune.json`` records and ``--resume`` requires to be unchanged."""
        return {
            "suite": {"name": self.suite.name, "version": self.suite.version, "source": self.suite.source},
            "model": task.model, "metric": task.metric, "search": self.search, "seed": self.seed,
            "budget": task.budget.to_dict(), "base_settings": _jsonable(task.base),
            "search_space": {k: describe_distribution(d) for k, d in task.space.items()},
            "fit_split": FIT, "validation_split": VALIDATION, "validation_images": VALIDATION_SIZE,
            "threads": task.threads, "device": task.device,
        }


def plan_tune(
    suite: str | Suite,
    models: Sequence[str],
    *,
    trials: int,
    budget: str | None = None,
    search: str = "random",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    extra_models: Sequence[type[Generator]] = (),
    device: str = "cpu",
    data_root: str | os.PathLike | None = None,
    threads: int = 1,
    resume: bool = False,
    overwrite: bool = False,
) -> TunePlan:
    """Check every input and return the plan; raises :class:`ConfigError` in one line on the first problem.

    ``overwrite`` removes the planned models' earlier trials in ``out`` (after every check passed).
    """
    from genbench.registry import get_generator

    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a whole number >= 1, got {trials!r}")
    if search not in SEARCHES:
        raise ConfigError(f"unknown search {search!r}; valid: {', '.join(SEARCHES)}")
    if search == "tpe":
        try:
            import optuna  # noqa: F401
            from ray.tune.search.optuna import OptunaSearch  # noqa: F401
        except ImportError:
            raise ConfigError("--search tpe needs Optuna and Ray Tune: pip install -e '.[tune]'") from None
    per_trial = tune_budget(suite_obj, budget)
    extra = {cls.name: cls for cls in extra_models}
    names = list(models) + [n for n in extra if n not in models]
    if not names:
        raise ConfigError("--models names no model to tune")
    if len(set(names)) != len(names):
        raise ConfigError(f"--models lists a model twice: {', '.join(names)}")
    root = None if data_root is None else str(Path(data_root).expanduser().resolve())
    tasks = []
    for name in names:
        cls = extra.get(name) or get_generator(name)
        entry = suite_obj.entry_for(name)
        if cls.role is not Role.COMPETITOR:
            raise ConfigError(f"{name} is a reference row ({cls.role.value}), not a competitor: it is not tuned")
        base = {**(cls.tiny_config if entry.tiny else {}), **entry.settings}
        space = dict(entry.search_space or cls.search_space)
        if not space:
            raise ConfigError(f"{name} declares no search_space: add one to its class or a "
                              f"[model.{name}.search_space] table to the suite file")
        validate_search_space(cls, space, base, where=f"{name} search_space")
        tasks.append(TrialTask(suite_obj, cls, base, space, per_trial, int(seed), device, root, int(threads)))
    out_dir = Path(out) if out is not None else Path("runs") / f"{suite_obj.name}-tune"
    plan = TunePlan(suite_obj, tuple(tasks), trials, search, int(seed), out_dir)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    for task in tasks:
        if overwrite:
            shutil.rmtree(plan.model_dir(task.model), ignore_errors=True)
        else:
            _check_existing(plan, task, resume)
    return plan


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _check_existing(plan: TunePlan, task: TrialTask, resume: bool) -> None:
    folder = plan.model_dir(task.model)
    log = TrialsLog(folder / TRIALS_FILE)
    if not log.path.exists():
        return
    if not resume:
        raise ConfigError(f"{log.path} already holds trials: continue them with --resume, start over with "
                          f"--overwrite, or choose another --out")
    meta_path = folder / TUNE_FILE
    try:
        old = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {meta_path} to resume ({exc}); choose another --out") from None
    new = plan.meta(task)
    # K may grow; the device may be named differently (auto vs cpu) on another executor.
    diffs = sorted(k for k in set(old) | set(new) if k not in ("trials", "device") and old.get(k) != new.get(k))
    if diffs:
        raise ConfigError(f"--resume: {folder} was tuned with other {', '.join(diffs)}; "
                          f"rerun with the same options or choose another --out")
    done = len(log.read())
    if done > plan.trials:
        raise ConfigError(f"--resume: {log.path} already holds {done} trials, more than --trials {plan.trials}")


# -- the trials file ---------------------------------------------------------------------------

class TrialsLog:
    """``trials.jsonl``: one JSON object per finished trial, rewritten atomically on every append."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records = []
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rec = json.loads(line)
            except ValueError:
                raise ConfigError(f"{self.path} line {n} is not JSON; it was not written by genbench tune") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("trial"), int):
                raise ConfigError(f"{self.path} line {n} is not a trial record")
            records.append(rec)
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished trial, stamped with the driver's code revision (``git_hash``, as a run
        record names it): a resumed tune may span commits, and each trial says which code made it."""
        old = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        line = json.dumps({**record, "git_hash": git_hash()}, allow_nan=False)
        atomic_write_text(self.path, old + line + "\n")
