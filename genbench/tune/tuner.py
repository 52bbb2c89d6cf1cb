"""``genbench tune``: the same hyperparameter-search effort for every model, selected on validation data.

Lucic et al. (NeurIPS 2018, "Are GANs Created Equal?") showed that GAN comparisons made
with unequal tuning effort mostly measure the effort. Here every model of a tune gets

- the same number of trials ``K`` and the same per-trial work budget (images or steps;
  never seconds, which would give a faster machine more work);
- values drawn from its own declared ``search_space`` (:mod:`genbench.search_space`),
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
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from genbench.errors import ConfigError
from genbench.files.atomic import atomic_write_json
from genbench.search_space import (
    from_optuna,
    sample_config,
    to_optuna,
)
from genbench.tune.plan import TRIALS_FILE, TUNE_FILE, TrialsLog, TrialTask, TunePlan, _jsonable
from genbench.tune.trial import run_trial
from genbench.tune.tuned import write_curve, write_tuned_suite


def _import_tune() -> Any:
    try:
        from ray import tune
    except ImportError:
        raise ConfigError("genbench tune needs Ray Tune and Optuna: pip install -e '.[tune]'") from None
    return tune


# -- the searcher ------------------------------------------------------------------------------

class TrialSource:
    """Hands out trials ``{"trial": i, "values": {...}}`` in index order and learns from their records.

    Random search: trial ``i``'s values are :func:`~genbench.search_space.sample_config`
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
