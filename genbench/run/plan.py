"""Run a suite: plan its (model, seed) runs, hand them to an executor, rebuild the leaderboard.

The driver owns every decision about the results folder (what exists, what may be
continued, what ``--overwrite`` removes), then hands self-contained :class:`RunSpec`
objects to an executor: ``local`` calls :func:`genbench.run.task.execute_run` in a
loop in this process, ``ray`` calls it as one Ray task per run. The driver alone
writes the leaderboard, from the records on disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import torch
from rich.console import Console

from genbench.budget import Budget
from genbench.config import make_config, validate_config
from genbench.data.datasets import SPLIT_SIZES, load_split
from genbench.errors import ConfigError, GenbenchError
from genbench.features.user_lens import load_lens
from genbench.metrics.user_metric import load_user_metric
from genbench.process import load_average
from genbench.registry import get_generator
from genbench.report.compare import gather
from genbench.report.leaderboard import write_report
from genbench.results import RUN_FILE, RunRecord, git_hash, inside_git_work_tree, read_run_record
from genbench.run.executors import Executor, LocalExecutor, RayExecutor
from genbench.run.lock import leaderboard_lock, run_lock
from genbench.run.options import EXECUTORS, RunOptions
from genbench.run.progress import ProgressBoard
from genbench.run.task import (
    Evaluator,
    RunSpec,
    run_dir_for,
    save_grid,
)
from genbench.run.train import CHECKPOINT_NAME
from genbench.suite import Suite, load_suite
from genbench.term import text

__all__ = ["EXECUTORS", "RunOptions", "RunSpec", "plan_runs", "run_dir_for", "run_suite", "save_grid"]


def plan_runs(
    suite: Suite,
    options: RunOptions | None = None,
    *,
    device: str | None = None,
    threads: int | None = None,
    start_warnings: Sequence[str] = (),
) -> list[RunSpec]:
    """Expand a suite into run specs, applying CLI > suite file > defaults; every config is validated here.

    ``options.models`` selects among the suite's models (other registered generators may be
    named too); ``options.extra_models`` (``--model file.py:Class``) always run, so
    ``models=["my-gen"], extra_models=[MyGen]`` runs just that one. A ``--model``
    class keeps the suite's budget and settings for its name, if the suite has one.
    ``options.budget`` (``--budget``) replaces every model's whole budget: a kind it does
    not name is unset, so ``{"images": N}`` has no seconds cap. ``device`` is the resolved
    device (default: ``options.device``) and ``threads`` the torch threads of every run
    (default: ``options.cpus_per_run``).
    """
    options = options or RunOptions()
    extra_names = [cls.name for cls in options.extra_models]
    duplicates = sorted({n for n in extra_names if extra_names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"--model: several classes are named {', '.join(map(repr, duplicates))}")
    entries = list(suite.models)
    if options.models:
        wanted = list(dict.fromkeys(options.models))
        known = {e.name for e in entries} | set(extra_names)
        for name in wanted:
            if name not in known:
                get_generator(name)  # raises with the valid names if it is not registered at all
        entries = [e for e in entries if e.name in wanted] + [suite.entry_for(name) for name in wanted
                                                              if name not in known]
    entries = [e for e in entries if e.name not in extra_names]  # a --model class replaces a namesake
    classes = [(e, get_generator(e.name)) for e in entries]
    classes += [(suite.entry_for(cls.name), cls) for cls in options.extra_models]
    set_overrides = options.set_overrides
    names = {cls.name for _, cls in classes}
    for target in set_overrides:
        if target not in names:
            raise ConfigError(
                f"--set {target}.…: {target!r} is not a model of this run; models: {', '.join(sorted(names))}")
    run_seeds = options.seeds if options.seeds is not None else suite.seeds
    run_options = options.for_run(device if device is not None else options.device,
                                  threads if threads is not None else options.cpus_per_run)
    specs = []
    for entry, cls in classes:
        budget: Budget = Budget.from_dict(options.budget) if options.budget else entry.budget
        overrides = {**(cls.tiny_config if entry.tiny else {}), **entry.settings, **set_overrides.get(cls.name, {})}
        # Validate before anything trains, the batch size against the training split too.
        validate_config(cls, make_config(cls, overrides), train_size=SPLIT_SIZES["train"])
        for seed in run_seeds:
            spec = RunSpec(suite, cls, int(seed), budget, overrides, run_options, tuple(start_warnings))
            run_dir_for(spec.out, suite.name, spec.model, spec.seed)  # refuses names leading outside --out
            specs.append(spec)
    return specs


DIRTY_ERROR = ("the working tree has uncommitted changes (git status); commit them, or pass --allow-dirty to "
               "record a dirty revision")


def check_clean_revision(out: str | os.PathLike, allow_dirty: bool) -> None:
    """Refuse (:class:`ConfigError`) to write into a results folder under git from a dirty genbench checkout.

    Results committed to a repository must name one clean revision that anyone can check
    out and rerun; ``allow_dirty`` lets the run go on (the records say so). A folder
    outside any git work tree (a scratch or temporary folder) is never refused.
    """
    if allow_dirty:
        return
    revision = git_hash()
    if revision is not None and revision.endswith("-dirty") and inside_git_work_tree(out):
        raise ConfigError(DIRTY_ERROR)


def busy_warning() -> str | None:
    """A warning when the machine is already busy (1-minute load average above its cores), else None."""
    load, cores = load_average(), os.cpu_count()
    if not load or not cores or load[0] <= cores:
        return None
    return (f"the machine was busy when this run started (load average {load[0]:.2f} over {cores} cores): "
            f"training is slower, so seconds caps may cut work budgets short (capped runs) and speed figures "
            f"are low; for numbers to compare, run on an idle machine")


def describe_budget(budget: Budget) -> str:
    """``images=300,000, seconds cap 1,200`` (a seconds-only budget: ``seconds=600``)."""
    work = [f"{kind}={getattr(budget, kind):,}" for kind in ("images", "steps") if getattr(budget, kind) is not None]
    if budget.seconds is None:
        return ", ".join(work) + ", no seconds cap"
    return ", ".join([*work, f"seconds cap {budget.seconds:,g}"]) if work else f"seconds={budget.seconds:,g}"


def _print_plan(specs: Sequence[RunSpec], console: Console) -> None:
    """One line per model: its seeds and effective budget (after the suite file and --budget)."""
    by_model: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_model.setdefault(spec.model, []).append(spec)
    for model, model_specs in by_model.items():
        seeds = ",".join(str(s.seed) for s in model_specs)
        console.print(text(f"plan: {model} seed{'s' if len(model_specs) > 1 else ''} {seeds}: "
                           f"{describe_budget(model_specs[0].budget)}"), soft_wrap=True)


def _finished_ok(run_dir: Path) -> RunRecord | None:
    try:
        rec = read_run_record(run_dir / RUN_FILE)
    except (OSError, ValueError):
        return None
    return rec if rec.status == "ok" else None


def _prepare_out(specs: list[RunSpec], *, resume: bool, overwrite: bool,
                 console: Console) -> tuple[list[RunSpec], list[RunRecord]]:
    """Decide per run: refuse (exists, no flag), keep (finished, --resume), clear (--overwrite) or run.

    ``--overwrite`` first takes the lock of every run it would clear, so that a refused
    overwrite (another process is writing one of them) changes nothing on disk.
    """
    todo: list[RunSpec] = []
    kept: list[RunRecord] = []
    to_clear: list[RunSpec] = []
    for spec in specs:
        run_dir = spec.run_dir
        finished = (run_dir / RUN_FILE).exists()
        started = (run_dir / CHECKPOINT_NAME).exists()
        if (finished or started) and not (resume or overwrite):
            raise ConfigError(
                f"{run_dir} already holds a {'finished' if finished else 'interrupted'} run; "
                f"pass --resume to keep finished runs and continue interrupted ones, or --overwrite to start again"
            )
        if overwrite and (finished or started):
            to_clear.append(spec)
        elif resume and finished and (rec := _finished_ok(run_dir)) is not None:
            console.print(f"[dim]{spec.key}: finished, skipped (--resume)[/dim]", highlight=False, markup=True)
            kept.append(rec)
            continue
        todo.append(spec)
    with ExitStack() as held:
        for spec in to_clear:
            held.enter_context(run_lock(spec.run_dir, "--overwrite changed nothing"))
        for spec in to_clear:
            for name in (RUN_FILE, CHECKPOINT_NAME):
                (spec.run_dir / name).unlink(missing_ok=True)
    return todo, kept


def write_leaderboard(suite_dir: Path, compare: Sequence[str | os.PathLike] = ()) -> None:
    """Rebuild the suite's leaderboard from its records (and the ``compare`` folders'), under the leaderboard lock."""
    try:
        with leaderboard_lock(suite_dir):
            write_report(suite_dir, compare)
    except OSError as exc:
        raise GenbenchError(
            f"cannot write the leaderboard in {suite_dir} ({exc.strerror or exc}); the run records are intact: "
            f"rebuild it with `genbench report {suite_dir}`"
        ) from None


def run_suite(
    suite: str | Suite,
    options: RunOptions | None = None,
    *,
    evaluator: Evaluator | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> list[RunRecord]:
    """Train and evaluate every (model, seed) of ``suite``; return the run records in plan order.

    ``suite`` is a built-in suite's name, a suite file's path or a ``Suite``;
    ``options`` (``genbench.run.options.RunOptions``, default: all defaults) say which
    runs, where, and how. Results go to ``<out>/<suite>/<model>/seed<k>/`` and the
    leaderboard to ``<out>/<suite>/leaderboard.*``. With ``resume``, finished runs are kept and
    interrupted ones continue from their last checkpoint; existing results are never
    overwritten unless ``overwrite``. ``executor="ray"`` runs each (model, seed) as a Ray
    task. ``tensorboard_dir`` also logs every run's losses, throughput, final metrics and
    sample grid for TensorBoard. ``compare`` folders (runs of the same suite version, e.g.
    the committed ``results/mnist-small``) join the leaderboard without being rerun
    (``genbench.report.compare``); they are checked before anything trains, as are
    ``metric_files`` and ``lens_files`` (imported here), the data and the tensorboard extra.
    A results folder inside a git work tree is refused when genbench runs from a checkout
    with uncommitted changes, unless ``allow_dirty`` (``check_clean_revision``). When the
    machine is busy at the start, a warning goes to ``console`` and into every record.
    ``evaluator`` replaces ``genbench.evaluate.evaluate_model`` (tests use a fast one);
    ``show_progress`` draws one progress bar per run on ``console`` (default: stderr).
    """
    options = options or RunOptions()
    if options.tensorboard_dir is not None:
        from genbench.run.tensorboard import check_available

        check_available()
    for spec in options.metric_files:  # a wrong plug-in is refused now, not after the training
        load_user_metric(spec)
    for spec in options.lens_files:
        load_lens(spec)
    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    console = console or Console(stderr=True)
    runner: Executor = (RayExecutor(address=options.ray_address, console=console) if options.executor == "ray"
                        else LocalExecutor())
    dev_name = runner.resolve_device(options.device)
    threads = options.cpus_per_run if options.cpus_per_run is not None else default_threads(dev_name)
    busy = busy_warning()
    try:
        specs = plan_runs(suite_obj, options, device=dev_name, threads=threads, start_warnings=[busy] if busy else [])
        check_clean_revision(options.out, options.allow_dirty)
        suite_dir = Path(options.out) / suite_obj.name
        if options.compare:  # refused before any training, not after it
            gather(suite_dir, options.compare, suite=(suite_obj.name, suite_obj.version))
        load_split(suite_obj.dataset, "train", options.data_root)  # fail fast, before any training, if data is missing
        todo, kept = _prepare_out(specs, resume=options.resume, overwrite=options.overwrite, console=console)
        _print_plan(todo, console)
        if busy and todo:
            console.print(text(f"Warning: {busy}", "yellow"), soft_wrap=True)
        records: list[RunRecord] = list(kept)
        try:
            with ProgressBoard(console, [s.key for s in todo], enabled=show_progress) as board:
                gpus = (options.gpus_per_run if options.gpus_per_run is not None
                        else (1.0 if dev_name.startswith("cuda") else 0.0))
                records += runner.run(todo, board, evaluator=evaluator, cpus_per_run=threads, gpus_per_run=gpus)
        except BaseException:  # Ctrl-C, a held lock, a full disk: still show every run finished so far
            if suite_dir.is_dir():
                with contextlib.suppress(OSError, GenbenchError):  # the first error is the one to report
                    write_leaderboard(suite_dir, options.compare)
            raise
        write_leaderboard(suite_dir, options.compare)
    finally:
        runner.close()
    order = {(s.model, s.seed): i for i, s in enumerate(specs)}
    return sorted(records, key=lambda r: order.get((r.model_name, r.seed), len(order)))


def default_threads(device: str) -> int:
    """torch threads per run: this process's (torch's default, every physical core) on the CPU;
    on CUDA the cores per visible GPU (at least 1), so that Ray can pack one run per GPU."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return max(1, (os.cpu_count() or 1) // max(1, torch.cuda.device_count()))
    return torch.get_num_threads()
