"""Run a suite: for every (model, seed), train under the budget, evaluate, write the record.

Runs are independent trials: each builds its model from the registry and the suite
alone, so an executor could run them in separate processes or machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torchvision.utils as vutils
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

import genbench
from genbench.budget import Budget, parse_budget_overrides
from genbench.data import load_split
from genbench.device import resolve_device
from genbench.efficiency import calibrate_flops, train_flops_per_image
from genbench.errors import ConfigError
from genbench.harness import CHECKPOINT_NAME, seed_everything, train
from genbench.errors import GenbenchError
from genbench.io import FileLock, atomic_write_bytes
from genbench.protocol import Generator
from genbench.registry import get_generator, make_config
from genbench.report import write_report
from genbench.results import RUN_FILE, SCHEMA_VERSION, git_hash, machine_info, utc_now, write_run_record
from genbench.suite import ModelEntry, Suite, load_suite

Evaluator = Callable[..., Any]


@dataclass
class RunSpec:
    """Everything one run needs; nothing else from the process is read."""

    suite: Suite
    entry: ModelEntry
    generator_cls: type[Generator]
    seed: int
    budget: Budget
    settings: dict[str, Any] = field(default_factory=dict)


def run_dir_for(out: str | os.PathLike, suite: str, model: str, seed: int) -> Path:
    return Path(out) / suite / model / f"seed{seed}"


def save_grid(samples_u8: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Save up to 64 uint8 samples as one PNG grid (written atomically)."""
    grid = vutils.make_grid(samples_u8[:nrow * nrow].float() / 255.0, nrow=nrow, padding=2, pad_value=1.0)
    buf = io.BytesIO()
    vutils.save_image(grid, buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _add_efficiency(record: dict[str, Any], calibration: float) -> None:
    """Derived speed figures: achieved FLOP/s, its fraction of the machine, normalised throughputs."""
    m = record["metrics"]
    tflops = calibration / 1e12
    if m.get("train_images_per_s") and m.get("train_flops_per_image"):
        m["train_flops_per_s"] = m["train_flops_per_image"] * m["train_images_per_s"]
        m["flops_utilization"] = round(m["train_flops_per_s"] / calibration, 5)
    if m.get("train_images_per_s"):
        m["train_images_per_s_norm"] = round(m["train_images_per_s"] / tflops, 3)
    if m.get("sample_images_per_s"):
        m["sample_images_per_s_norm"] = round(m["sample_images_per_s"] / tflops, 3)


def save_samples(samples_u8: torch.Tensor, path: Path) -> None:
    """Save the scored uint8 samples as ``(N,1,28,28)`` in a compressed .npz (atomically).

    They sit in a folder of their own so that ``genbench eval --samples <run>/samples``
    rescores exactly what the run scored.
    """
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, samples=samples_u8.cpu().numpy())
    atomic_write_bytes(path, buf.getvalue())


def _default_evaluator() -> Evaluator:
    from genbench.evaluate import evaluate_model

    return evaluate_model


def _rich_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=False,
    )


def run_one(
    spec: RunSpec,
    *,
    out: str | os.PathLike,
    device: torch.device,
    data_root: str | os.PathLike | None = None,
    resume: bool = False,
    evaluator: Evaluator | None = None,
    progress: Progress | None = None,
    checkpoint_every_seconds: float | None = 60.0,
    checkpoint_every_steps: int | None = None,
) -> dict[str, Any]:
    """Train and evaluate one (model, seed); write and return its run record."""
    suite, entry, cls, seed = spec.suite, spec.entry, spec.generator_cls, spec.seed
    calibration = calibrate_flops(str(device))
    run_dir = run_dir_for(out, suite.name, cls.name, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob(".*.tmp"):  # left by a process killed mid-write; we hold the run's lock
        stale.unlink(missing_ok=True)
    overrides = {**(cls.tiny_config if entry.tiny else {}), **entry.settings, **spec.settings}
    config = make_config(cls, overrides)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "genbench_version": genbench.__version__,
        "git_hash": git_hash(),
        "created": utc_now(),
        "suite": {"name": suite.name, "version": suite.version, "source": suite.source},
        "dataset": suite.dataset,
        "model": {"name": cls.name, "class": f"{cls.__module__}.{cls.__qualname__}",
                  "config": dataclasses.asdict(config), "capabilities": str(cls.capabilities.name),
                  "likelihood_is_bound": cls.likelihood_is_bound},
        "seed": seed,
        "device": str(device),
        "torch_version": torch.__version__,
        "machine": machine_info(),
        "calibration_flops_per_s": calibration,
        "budget": {"asked": spec.budget.to_dict(), "kind": spec.budget.kind, "achieved": None},
        "status": "failed",
        "error": None,
        "metrics": {},
        "null_reasons": {},
        "metric_meta": {},
        "extractor": None,
        "timings": {},
        "eval": dataclasses.asdict(suite.eval),
    }
    wall0 = time.perf_counter()
    task = progress.add_task(f"{cls.name} seed {seed}", total=1.0, info="") if progress else None

    def on_train(tracker, losses, ips):  # rich progress: budget fraction, losses, images/s
        if progress is not None:
            shown = " ".join(f"{k}={v:.3g}" for k, v in list(losses.items())[:3])
            progress.update(task, completed=tracker.fraction(), info=f"{shown} {ips:,.0f} img/s")

    def on_eval(description: str, completed: int, total: int) -> None:
        if progress is not None:
            progress.update(task, completed=completed / max(total, 1), info=f"eval: {description}")

    try:
        train_split = load_split(suite.dataset, "train", data_root)
        seed_everything(seed)
        model = cls(config).to(device)
        batch = train_split.images[: int(config.batch_size)].to(device)
        flops_per_image = train_flops_per_image(model, batch)
        result = train(
            model, train_split.images, spec.budget, seed=seed, run_dir=run_dir, resume=resume,
            checkpoint_every_seconds=checkpoint_every_seconds, checkpoint_every_steps=checkpoint_every_steps,
            progress=on_train,
        )
        record["budget"]["achieved"] = result.achieved
        record["status"] = result.status
        record["error"] = result.error
        record["resumed_from_step"] = result.resumed_from_step
        record["metrics"].update({
            "train_images_per_s": round(result.train_images_per_s, 2),
            "peak_memory_mb": result.peak_memory_mb,
            "num_parameters": result.num_parameters,
            "train_flops_per_image": flops_per_image,
        })
        _add_efficiency(record, calibration)
        record["timings"]["train_seconds"] = result.achieved["seconds"]
        if result.status == "ok":
            evaluate = evaluator or _default_evaluator()
            t0 = time.perf_counter()
            ev = evaluate(
                model, dataset=suite.dataset, data_root=data_root, n_samples=suite.eval.n_samples, seed=seed,
                device=device, nll_images=suite.eval.nll_images, recon_images=suite.eval.recon_images,
                progress=on_eval,
            )
            record["timings"]["eval_seconds"] = round(time.perf_counter() - t0, 3)
            record["timings"].update({f"eval_{k}_seconds": round(v, 3) for k, v in ev.timings.items()})
            record["metrics"].update(ev.metrics)
            record["null_reasons"].update(ev.null_reasons)
            record["extractor"] = ev.extractor
            _add_efficiency(record, calibration)
            save_grid(ev.samples, run_dir / "samples.png")
            save_samples(ev.samples, run_dir / "samples" / "samples.npz")
    except (KeyboardInterrupt, SystemExit):
        raise
    except ConfigError:
        raise
    except Exception as exc:  # a failing model must not take the suite down: record it
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=8)
    record["timings"]["wall_seconds"] = round(time.perf_counter() - wall0, 3)
    from genbench.registry import METRICS

    record["metric_meta"] = {
        k: {"unit": METRICS[k].unit, "higher_is_better": METRICS[k].higher_is_better, "group": METRICS[k].group}
        for k in record["metrics"] if k in METRICS
    }
    if progress is not None:
        progress.update(task, completed=1.0, info=record["status"])
    try:
        write_run_record(run_dir, record)
    except OSError as exc:
        # Disk full or similar: earlier records are intact (writes are atomic), this one is lost.
        raise GenbenchError(
            f"cannot write {run_dir / RUN_FILE} ({exc.strerror or exc}); run {cls.name} seed {seed} ended "
            f"with status {'failed' if record['status'] == 'ok' else record['status']}"
            + (f" after: {record['error']}" if record.get("error") else "")
        ) from None
    return record


def plan_runs(
    suite: Suite,
    *,
    models: Sequence[str] | None = None,
    extra_models: Sequence[type[Generator]] = (),
    seeds: Sequence[int] | None = None,
    budget_overrides: dict[str, Any] | None = None,
    set_overrides: dict[str, dict[str, Any]] | None = None,
) -> list[RunSpec]:
    """Expand a suite into run specs, applying CLI > suite file > defaults."""
    entries = list(suite.models)
    if models:
        known = {e.name for e in entries}
        unknown = [m for m in models if m not in known]
        for name in unknown:
            get_generator(name)  # raises with the valid names if it is not registered at all
        entries = [e for e in entries if e.name in models] + [
            ModelEntry(name, suite.default_budget) for name in unknown
        ]
    classes = [(e, get_generator(e.name)) for e in entries]
    for cls in extra_models:
        classes.append((ModelEntry(cls.name, suite.default_budget), cls))
    set_overrides = dict(set_overrides or {})
    names = {cls.name for _, cls in classes}
    for target in set_overrides:
        if target not in names:
            raise ConfigError(f"--set {target}.…: {target!r} is not a model of this run; models: {', '.join(sorted(names))}")
    specs = []
    for entry, cls in classes:
        budget = entry.budget.merged(budget_overrides) if budget_overrides else entry.budget
        settings = set_overrides.get(cls.name, {})
        make_config(cls, {**(cls.tiny_config if entry.tiny else {}), **entry.settings, **settings})  # validate early
        for seed in seeds if seeds is not None else suite.seeds:
            specs.append(RunSpec(suite, entry, cls, int(seed), budget, settings))
    return specs


def run_suite(
    suite: str | Suite,
    *,
    models: Sequence[str] | None = None,
    extra_models: Sequence[type[Generator]] = (),
    seeds: Sequence[int] | None = None,
    budget: str | dict[str, Any] | None = None,
    set_overrides: dict[str, dict[str, Any]] | None = None,
    device: str = "auto",
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike = "results",
    resume: bool = False,
    overwrite: bool = False,
    evaluator: Evaluator | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    checkpoint_every_seconds: float | None = 60.0,
) -> list[dict[str, Any]]:
    """Train and evaluate every (model, seed) of ``suite``; return the run records.

    Results go to ``<out>/<suite>/<model>/seed<k>/`` and the leaderboard to
    ``<out>/<suite>/leaderboard.{md,csv}``. With ``resume``, finished runs are kept
    and interrupted ones continue from their last checkpoint; existing results are
    never overwritten unless ``overwrite``.
    """
    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    budget_overrides = parse_budget_overrides(budget) if isinstance(budget, str) else budget
    specs = plan_runs(suite_obj, models=models, extra_models=extra_models, seeds=seeds,
                      budget_overrides=budget_overrides, set_overrides=set_overrides)
    dev = resolve_device(device)
    load_split(suite_obj.dataset, "train", data_root)  # fail fast, before any training, if data is missing
    console = console or Console(stderr=True)
    todo: list[RunSpec] = []
    records: list[dict[str, Any]] = []
    for spec in specs:
        run_dir = run_dir_for(out, suite_obj.name, spec.generator_cls.name, spec.seed)
        finished = (run_dir / RUN_FILE).exists()
        started = (run_dir / CHECKPOINT_NAME).exists()
        if (finished or started) and not (resume or overwrite):
            raise ConfigError(
                f"{run_dir} already holds a {'finished' if finished else 'interrupted'} run; "
                f"pass --resume to keep finished runs and continue interrupted ones, or --overwrite to start again"
            )
        if overwrite:
            for name in (RUN_FILE, CHECKPOINT_NAME):
                (run_dir / name).unlink(missing_ok=True)
        elif resume and finished:
            from genbench.results import read_run_record

            try:
                rec = read_run_record(run_dir / RUN_FILE)
            except (OSError, ValueError):
                rec = None
            if rec is not None and rec.get("status") == "ok":
                console.print(f"[dim]{spec.generator_cls.name} seed {spec.seed}: finished, skipped (--resume)[/dim]")
                records.append(rec)
                continue
        todo.append(spec)
    with (_rich_progress(console) if show_progress else contextlib.nullcontext()) as progress:
        for spec in todo:
            run_dir = run_dir_for(out, suite_obj.name, spec.generator_cls.name, spec.seed)
            try:
                with FileLock(run_dir / ".lock", blocking=False):
                    records.append(run_one(
                        spec, out=out, device=dev, data_root=data_root, resume=resume, evaluator=evaluator,
                        progress=progress if show_progress else None,
                        checkpoint_every_seconds=checkpoint_every_seconds,
                    ))
            except BlockingIOError:  # only the lock raises it: run_one records its own errors
                raise ConfigError(
                    f"{run_dir} is being written by another genbench process "
                    f"(pid {FileLock(run_dir / '.lock').holder()}); "
                    f"the same (model, seed) cannot run twice into one results folder"
                ) from None
    suite_dir = Path(out) / suite_obj.name
    with FileLock(suite_dir / ".leaderboard.lock"):
        write_report(suite_dir)
    return records

