"""``genbench tune``: the same hyperparameter-search effort for every model, selected on validation data.

Lucic et al. (NeurIPS 2018, "Are GANs Created Equal?") showed that GAN comparisons made
with unequal tuning effort mostly measure the effort. Here every model of a tune gets

- the same number of trials ``K`` and the same per-trial work budget (images or steps;
  never seconds, which would give a faster machine more work);
- values drawn from its own declared ``search_space`` (:mod:`genbench.tune.search_space`),
  by random search (trial ``i``'s values depend on ``(seed, i)`` only) or Optuna's TPE
  (seeded, one trial at a time, so the same trials come out on any executor);
- a score that never touches the test split: each trial trains on ``train-fit`` (the
  first 50,000 training images) and is scored on ``train-validation`` (the last 10,000;
  :mod:`genbench.data.splits`) by the model's ``primary_metric``: FID in the domain features
  against the validation images' statistics, or NLL in bits per dimension.

A trial is one function of ``(task, index, values)`` (:func:`run_trial`), run in-process
(``--executor local``) or as a Ray Tune trial (``--executor ray``). Its record is appended
to ``OUT/MODEL/trials.jsonl`` as it finishes (the file is rewritten atomically, so it always
holds whole trials); that file is the tune's state: ``--resume`` replays it into the
searcher and runs only the trials it lacks. A trial that fails or diverges is recorded
with a null score and counts as one of the ``K``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench.data.splits import FIT, VALIDATION, VALIDATION_SIZE, split_images
from genbench.errors import ConfigError, GenbenchError
from genbench.files.atomic import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text
from genbench.protocol import Generator, Role, RunContext
from genbench.run.budget import Budget, parse_budget_overrides
from genbench.suite import ModelEntry, Suite, load_suite
from genbench.tune.search_space import (
    Distribution,
    describe_distribution,
    from_optuna,
    sample_config,
    to_optuna,
    validate_search_space,
)

TRIALS_FILE = "trials.jsonl"
TUNE_FILE = "tune.json"
CURVE_FILE = "expected_best.csv"
PLOT_FILE = "expected_best.png"
SEARCHES = ("random", "tpe")
BOOTSTRAP_REPS = 1000  # resamples behind each point of the expected-best curve
TRIAL_FIELDS = ("trial", "config", "metric", "score", "status", "error", "images", "steps",
                "train_seconds", "eval_seconds", "seconds")


def _import_tune() -> Any:
    try:
        from ray import tune
    except ImportError:
        raise ConfigError("genbench tune needs Ray Tune and Optuna: pip install 'genbench[tune]'") from None
    return tune


# -- planning: everything checked before a trial starts ----------------------------------------

def tune_budget(suite: Suite, budget: str | None) -> Budget:
    """The per-trial budget: ``--budget`` (images/steps only) or the suite's, refused if it has seconds."""
    if budget is not None:
        values = parse_budget_overrides(budget)
        if "seconds" in values:
            raise ConfigError("--budget for tuning takes images=N or steps=N, not seconds: a seconds limit gives "
                              "faster machines more work (unequal effort)")
        return Budget.from_dict(values)
    b = suite.default_budget
    if b.seconds is not None:
        raise ConfigError(f"suite {suite.name}'s budget has a seconds limit ({b.seconds:g} s), which gives faster "
                          f"machines more work (unequal effort); give --budget images=N or --budget steps=N")
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
) -> TunePlan:
    """Check every input and return the plan; raises :class:`ConfigError` in one line on the first problem."""
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
            raise ConfigError("--search tpe needs Optuna and Ray Tune: pip install 'genbench[tune]'") from None
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
        entry = suite_obj.model(name) or ModelEntry(name, suite_obj.default_budget)
        if cls.role is not Role.COMPETITOR:
            raise ConfigError(f"{name} is a reference row ({cls.role.value}), not a competitor: it is not tuned")
        base = {**(cls.tiny_config if entry.tiny else {}), **entry.settings}
        space = dict(entry.search_space or cls.search_space)
        if not space:
            raise ConfigError(f"{name} declares no search_space: add one to its class or a "
                              f"[model.{name}.search_space] table to the suite file")
        validate_search_space(cls, space, base, where=f"{name} search_space")
        tasks.append(TrialTask(suite_obj, cls, base, space, per_trial, int(seed), device, root, int(threads)))
    out_dir = Path(out) if out is not None else Path("tune") / suite_obj.name
    plan = TunePlan(suite_obj, tuple(tasks), trials, search, int(seed), out_dir)
    for task in tasks:
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
        raise ConfigError(f"{log.path} already holds trials: continue them with --resume, or choose another --out")
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
        old = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        atomic_write_text(self.path, old + json.dumps(record, allow_nan=False) + "\n")


# -- one trial ---------------------------------------------------------------------------------

_VAL_MEMO: dict[Path, tuple[np.ndarray, np.ndarray]] = {}


def validation_statistics(dataset: str, data_root: str | None, extractor: Any) -> tuple[np.ndarray, np.ndarray]:
    """FID statistics ``(mu [D], sigma [D,D])`` of the validation images in ``extractor``'s space.

    Cached under the stats folder by the images' content hash and the extractor's weights
    hash, so other data under the same name never meets stale statistics.
    """
    from genbench.features.reference import stats_dir
    from genbench.metrics._fidelity_math import fid_features_to_statistics

    images = split_images(dataset, VALIDATION, data_root)
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]
    path = stats_dir() / f"{dataset}-{VALIDATION}-{digest}-{extractor.name}-{extractor.sha256[:16]}.pt"
    if path in _VAL_MEMO:
        return _VAL_MEMO[path]
    stats = None
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            stats = (blob["mu"].numpy(), blob["sigma"].numpy())
        except Exception:  # a damaged cache file is recomputed, never trusted
            stats = None
    if stats is None:
        feats = extractor.extract(images).features
        s = fid_features_to_statistics(feats.float())
        stats = (np.asarray(s["mu"]), np.asarray(s["sigma"]))
        atomic_torch_save({"mu": torch.from_numpy(stats[0]), "sigma": torch.from_numpy(stats[1])}, path)
    _VAL_MEMO[path] = stats
    return stats


def validation_score(model: Generator, task: TrialTask, device: torch.device) -> float | None:
    """The model's ``primary_metric`` on the validation split (lower is better); None if not finite.

    ``fid``: the suite's ``n_samples`` samples against the validation images' statistics in
    the domain features. ``nll_bpd``: mean NLL of the first ``nll_images`` validation images
    (all 10,000 when the suite sets none).
    """
    from genbench.evaluate.model import _likelihood, _sample, _seed_model_calls
    from genbench.evaluate.settings import EvalConfig
    from genbench.features import load_extractor
    from genbench.metrics.fid import fid_from_features
    from genbench.metrics.likelihood import KEY_NLL_BPD, nll_summary

    model.eval()
    dataset = task.suite.dataset
    if task.metric == "nll_bpd":
        images = split_images(dataset, VALIDATION, task.data_root)
        n = task.suite.eval.nll_images
        images = images if n is None else images[:n]
        _seed_model_calls(task.seed)
        ll = _likelihood(model, images, device, None)
        return nll_summary(ll)[KEY_NLL_BPD] if bool(torch.isfinite(ll).all()) else None
    n = task.suite.eval.n_samples
    samples = _sample(model, n, task.seed, device, n if model.sample_in_one_call else EvalConfig().sample_batch_size,
                      None)
    extractor = load_extractor("genbench", dataset, device)
    mu, sigma = validation_statistics(dataset, task.data_root, extractor)
    fid = fid_from_features(extractor.extract(samples).features, mu, sigma)
    return fid if math.isfinite(fid) else None


def run_trial(task: TrialTask, index: int, values: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration on ``train-fit`` under the task's budget and score it on ``train-validation``.

    Returns the trial's record (:data:`TRIAL_FIELDS`); a model's own error or a diverged
    loss is recorded (status ``failed``/``diverged``, score None), never raised.
    """
    from genbench.config import make_config, validate_config
    from genbench.device import resolve_device
    from genbench.run.process import seed_everything
    from genbench.run.train import train

    t0 = time.perf_counter()
    rec: dict[str, Any] = {"trial": int(index), "config": _jsonable(values), "metric": task.metric, "score": None,
                           "status": "failed", "error": None, "images": 0, "steps": 0, "train_seconds": None,
                           "eval_seconds": None, "seconds": None}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    try:
        device = resolve_device(task.device)
        config = make_config(task.generator, {**task.base, **values}, text=False)
        fit = split_images(task.suite.dataset, FIT, task.data_root)
        validate_config(task.generator, config, train_size=len(fit))
        seed_everything(task.seed)
        model = task.generator(config).to(device)
        model.setup(RunContext(task.suite.dataset, task.data_root))
        result = train(model, fit, task.budget, seed=task.seed)
        rec.update(status=result.status, error=result.error, images=result.achieved["images"],
                   steps=result.achieved["steps"], train_seconds=result.achieved["seconds"])
        if result.status == "ok":
            t1 = time.perf_counter()
            score = validation_score(model, task, device)
            rec["eval_seconds"] = round(time.perf_counter() - t1, 3)
            if score is None:
                rec.update(status="diverged", error=f"validation {task.metric} is not finite")
            else:
                rec["score"] = float(score)
    except (KeyboardInterrupt, SystemExit):
        raise
    except GenbenchError as exc:
        rec["error"] = str(exc)
    except Exception as exc:  # a failing configuration is a measured outcome of the search, not a crash
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc(limit=6)
    finally:
        torch.set_num_threads(threads_before)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


# -- the searcher ------------------------------------------------------------------------------

class TrialSource:
    """Hands out trials ``{"trial": i, "values": {...}}`` in index order and learns from their records.

    Random search: trial ``i``'s values are :func:`~genbench.tune.search_space.sample_config`
    of ``(seed, i)``. TPE: Ray Tune's ``OptunaSearch`` over Optuna's ``TPESampler(seed)``;
    its suggestions depend on the records told so far, so TPE runs one trial at a time.
    ``done`` (the trials file of a resumed tune) is replayed first: the same suggestions
    are asked again, checked against the file, and told the recorded scores.
    """

    def __init__(self, task: TrialTask, search: str, seed: int, trials: int,
                 done: Sequence[dict[str, Any]] = ()) -> None:
        self.task, self.search, self.seed, self.trials = task, search, seed, trials
        self._optuna = None
        done = sorted(done, key=lambda r: r["trial"])
        if search == "tpe":
            import optuna
            from ray.tune.search.optuna import OptunaSearch

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._optuna = OptunaSearch(space=to_optuna(task.space), metric="score", mode="min",
                                        sampler=optuna.samplers.TPESampler(seed=seed))
            # TPE's suggestions depend on every earlier record: replay them in order, asking again.
            if [r["trial"] for r in done] != list(range(len(done))):
                raise ConfigError(f"--resume: {task.model}'s trials file has gaps in its trial numbers, which a "
                                  f"TPE search cannot replay; choose another --out")
            self._pending = list(range(trials))
            for rec in done:
                tid = f"replay-{rec['trial']}"
                got = self.suggest(tid)
                if got is None or _jsonable(got["values"]) != rec["config"]:
                    raise ConfigError(f"--resume: trial {rec['trial']} of {task.model}'s trials file is not what "
                                      f"this search draws; choose another --out")
                self.complete(tid, rec)
        else:
            # Random search: each trial is a function of (seed, index), so only the missing indices run.
            for rec in done:
                if _jsonable(sample_config(task.space, seed, rec["trial"])) != rec["config"]:
                    raise ConfigError(f"--resume: trial {rec['trial']} of {task.model}'s trials file is not what "
                                      f"this search draws; choose another --out")
            finished = {r["trial"] for r in done}
            self._pending = [i for i in range(trials) if i not in finished]

    @property
    def remaining(self) -> int:
        return len(self._pending)

    @property
    def next_index(self) -> int | None:
        return self._pending[0] if self._pending else None

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self._pending:
            return None
        index = self._pending.pop(0)
        if self._optuna is None:
            values = sample_config(self.task.space, self.seed, index)
        else:
            values = from_optuna(self.task.space, self._optuna.suggest(trial_id))
        return {"trial": index, "values": values}

    def complete(self, trial_id: str, record: dict[str, Any]) -> None:
        if self._optuna is not None:
            score = record.get("score")
            # A failed or diverged trial is told as failed: TPE models only the scored ones.
            self._optuna.on_trial_complete(trial_id, {"score": score} if score is not None else None,
                                           error=score is None)


# -- executors ---------------------------------------------------------------------------------

TrialDone = Callable[[TrialTask, dict[str, Any]], None]


def failed_record(task: TrialTask, index: int, values: dict[str, Any], error: str) -> dict[str, Any]:
    return {"trial": index, "config": _jsonable(values), "metric": task.metric, "score": None, "status": "failed",
            "error": error, "images": 0, "steps": 0, "train_seconds": None, "eval_seconds": None, "seconds": None}


def _tune_local(task: TrialTask, source: TrialSource, log: TrialsLog, on_done: TrialDone) -> None:
    while source.remaining:
        tid = f"local-{source.next_index}"
        suggestion = source.suggest(tid)
        assert suggestion is not None
        rec = run_trial(task, suggestion["trial"], suggestion["values"])
        log.append(rec)
        source.complete(tid, rec)
        on_done(task, rec)


def _ray_trial(config: dict[str, Any], task: TrialTask) -> None:
    """Ray Tune's function trainable: one trial, one report carrying its record."""
    from ray import tune

    # Tune flattens nested results; the record travels as one JSON string.
    tune.report({"record_json": json.dumps(run_trial(task, config["trial"], config["values"]))})


def ray_exec_pickle(task: TrialTask) -> None:
    """Ship a ``--model file.py:Class`` by value: Ray workers cannot import its module."""
    from genbench.run.executors import RayExecutor

    RayExecutor._pickle_user_code(None, [task], None)  # type: ignore[arg-type]


def _tune_ray(plan: TunePlan, task: TrialTask, source: TrialSource, log: TrialsLog, on_done: TrialDone,
              cpus_per_run: int, gpus_per_run: float, slots: int) -> None:
    tune = _import_tune()
    from genbench.tune.ray_search import LIVE, TrialSourceSearcher

    key = f"{task.model}-{id(source)}"
    LIVE[key] = (task, source, log, on_done)
    ray_exec_pickle(task)
    trainable = tune.with_resources(tune.with_parameters(_ray_trial, task=task),
                                    {"cpu": cpus_per_run, "gpu": gpus_per_run})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=TrialSourceSearcher(key), num_samples=source.remaining,
                                    max_concurrent_trials=1 if plan.search == "tpe" else max(1, slots),
                                    reuse_actors=True),  # a trial process imports torch once, not per trial
        run_config=tune.RunConfig(name=f"{task.model}-{int(time.time())}", verbose=0,
                                  storage_path=str((plan.out / ".ray").resolve())),
    )
    try:
        tuner.fit()
    finally:
        LIVE.pop(key, None)


def run_tune(
    plan: TunePlan,
    *,
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_run: int = 1,
    on_done: TrialDone | None = None,
    console: Any = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run every model's missing trials and write its outputs; returns the trials by model.

    Raises ``KeyboardInterrupt`` after Ctrl-C (finished trials are in the trials files;
    ``--resume`` continues).
    """
    if executor not in ("local", "ray"):
        raise ConfigError(f"unknown executor {executor!r}; valid: local, ray")
    if executor == "ray" or plan.search == "tpe":
        _import_tune()  # fails in one line before anything starts
    on_done = on_done or (lambda task, rec: None)
    ray_exec = None
    if executor == "ray":
        from rich.console import Console

        from genbench.run.executors import RayExecutor

        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        ray_exec = RayExecutor(ray_address, console or Console(stderr=True))
        available = ray_exec.ray.cluster_resources()
        device = ray_exec.resolve_device(plan.tasks[0].device)  # auto: cuda when the cluster has GPUs
        plan = dataclasses.replace(plan, tasks=tuple(dataclasses.replace(t, device=device) for t in plan.tasks))
        gpus_per_run = 1.0 if device.startswith("cuda") else 0.0
        if cpus_per_run > available.get("CPU", 0):
            raise ConfigError(f"one trial asks for {cpus_per_run} CPU(s) but the Ray cluster has "
                              f"{available.get('CPU', 0):g}; lower --cpus-per-run")
        slots = int(available.get("CPU", 1) // cpus_per_run)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for task in plan.tasks:
            folder = plan.model_dir(task.model)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(folder / TUNE_FILE, {**plan.meta(task), "trials": plan.trials})
            log = TrialsLog(folder / TRIALS_FILE)
            source = TrialSource(task, plan.search, plan.seed, plan.trials, log.read())
            if source.remaining:
                if ray_exec is None:
                    _tune_local(task, source, log, on_done)
                else:
                    _tune_ray(plan, task, source, log, on_done, cpus_per_run, gpus_per_run, slots)
            records = sorted(log.read(), key=lambda r: r["trial"])
            if len(records) < plan.trials:  # Ray Tune stops its trials on Ctrl-C and returns
                raise KeyboardInterrupt
            write_curve(folder, records, plan.seed)
            results[task.model] = records
        write_tuned_suite(plan, results)
    finally:
        if ray_exec is not None:
            ray_exec.close()
    return results


# -- outputs -----------------------------------------------------------------------------------

def best_trial(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The lowest-scoring trial (the first on ties); None if no trial has a score."""
    scored = [r for r in records if r.get("score") is not None]
    return min(scored, key=lambda r: (r["score"], r["trial"])) if scored else None


def expected_best_curve(scores: Sequence[float | None], seed: int = 0,
                        reps: int = BOOTSTRAP_REPS) -> list[dict[str, float]]:
    """Expected best (lowest) score after ``k`` trials, ``k = 1..K``, by bootstrap over the ``K`` trials.

    Each of ``reps`` resamples draws ``k`` trials with replacement and keeps the lowest
    score (failed trials count as +inf: a failed trial is a spent trial). Returns rows
    ``{k, mean, low, high}`` with the mean and the 5th/95th percentiles; a mean is inf
    while some resample of size k holds only failed trials (Lucic et al. 2018, fig. 4).
    """
    s = np.array([math.inf if v is None else float(v) for v in scores], dtype=np.float64)
    if s.size == 0:
        return []
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(1, s.size + 1):
        best = s[rng.integers(0, s.size, size=(reps, k))].min(axis=1)
        low, high = np.percentile(best, [5, 95]) if np.isfinite(best).all() else (math.inf, math.inf)
        rows.append({"k": k, "mean": float(best.mean()), "low": float(low), "high": float(high)})
    return rows


def write_curve(folder: Path, records: Sequence[dict[str, Any]], seed: int) -> None:
    """``expected_best.csv`` and ``expected_best.png`` of one model's trials."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = expected_best_curve([r.get("score") for r in records], seed)
    atomic_write_text(folder / CURVE_FILE, "k,mean,low,high\n" + "".join(
        f"{r['k']},{r['mean']!r},{r['low']!r},{r['high']!r}\n" for r in rows))
    metric = records[0]["metric"] if records else ""
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    finite = [r for r in rows if math.isfinite(r["mean"]) and math.isfinite(r["low"])]
    if finite:
        ks = [r["k"] for r in finite]
        ax.plot(ks, [r["mean"] for r in finite], marker="o", label="expected best")
        ax.fill_between(ks, [r["low"] for r in finite], [r["high"] for r in finite], alpha=0.25,
                        label="5-95% over bootstrap resamples")
        ax.legend()
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("trials k")
    ax.set_ylabel(f"best validation {metric} (lower is better)")
    ax.set_title(f"{folder.name}: expected best of k trials")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(folder / PLOT_FILE, buf.getvalue())


def _toml(value: Any) -> str:
    """A TOML value for the settings genbench writes (bool, int, float, str, lists/tuples of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to a suite file")
        return repr(value)  # shortest text that parses back to the same double
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise ValueError(f"cannot write {type(value).__name__} to a suite file")


def tuned_suite_path(plan: TunePlan) -> Path:
    return plan.out / f"{plan.suite.name}-tuned.toml"


def write_tuned_suite(plan: TunePlan, results: dict[str, list[dict[str, Any]]]) -> Path | None:
    """The suite file in which each tuned model carries its best trial's values as settings.

    Models whose every trial failed are left out (named in a comment). Returns the
    path, or None when no model has a scored trial.
    """
    suite = plan.suite
    lines = [
        f"# Written by `genbench tune` from {suite.source} (suite {suite.name} v{suite.version}).",
        f"# Each model's settings are its best of {plan.trials} trials ({plan.search} search, seed {plan.seed}),",
        f"# selected on {VALIDATION} (the last {VALIDATION_SIZE:,} training images; trials trained on {FIT}).",
        "# Train and score them under the normal protocol with: genbench run --suite THIS_FILE",
        f"name = {_toml(suite.name + '-tuned')}",
        f"version = {suite.version}",
        f"description = {_toml(f'{suite.name} with settings chosen by genbench tune ({plan.trials} trials each)')}",
        f"dataset = {_toml(suite.dataset)}",
        f"seeds = {_toml(list(suite.seeds))}",
    ]
    chosen, skipped = [], []
    for task in plan.tasks:
        best = best_trial(results.get(task.model, []))
        (chosen if best is not None else skipped).append((task, best))
    if not chosen:
        return None
    lines.append(f"models = {_toml([t.model for t, _ in chosen])}")
    if skipped:
        lines.append(f"# not tuned (no trial scored): {', '.join(t.model for t, _ in skipped)}")
    lines += ["", "[budget]", *(f"{k} = {_toml(v)}" for k, v in suite.default_budget.to_dict().items()
                                if v is not None)]
    ev = dataclasses.asdict(suite.eval)
    lines += ["", "[eval]", *(f"{k} = {_toml(v)}" for k, v in ev.items() if v is not None)]
    for task, best in chosen:
        entry = suite.model(task.model) or ModelEntry(task.model, suite.default_budget)
        settings = {**entry.settings, **best["config"]}
        trials_file = (plan.model_dir(task.model) / TRIALS_FILE).as_posix()
        lines += [
            "",
            f"[model.{task.model}]",
            f"# tuned: {trials_file}, K = {plan.trials}, per-trial budget "
            f"{', '.join(f'{k}={v}' for k, v in task.budget.to_dict().items() if v is not None)}, "
            f"search {plan.search}, seed {plan.seed}; best trial {best['trial']} "
            f"({task.metric} {best['score']:.6g} on {VALIDATION})",
            f"tiny = {_toml(entry.tiny)}",
        ]
        if entry.budget != suite.default_budget:
            lines.append(f"budget = {_toml({k: v for k, v in entry.budget.to_dict().items() if v is not None})}")
        lines.append(f"settings = {_toml(settings)}")
    path = tuned_suite_path(plan)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
