"""The unit of work: one run spec in, one finished run directory and :class:`RunRecord` out.

Every executor calls :func:`execute_run` (the local loop in-process, Ray as a task in
a worker process), so a run's numbers never depend on where it ran: the function
reads nothing from the process but its :class:`RunSpec` (and the files under the
run's folder), and writes nothing outside that folder.

A run always continues from its own checkpoint when one is there. Whether an
existing run folder may be continued or must be refused is decided by the driver
(``genbench run --resume/--overwrite``) before any spec reaches an executor; so a
worker that Ray retries after a crash resumes where the dead one left off.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from genbench.allocator import keep_freed_memory
from genbench.budget import Budget
from genbench.config import make_config
from genbench.data.datasets import load_split
from genbench.errors import ConfigError, GenbenchError
from genbench.features.user_lens import load_lens
from genbench.files.atomic import atomic_write_bytes
from genbench.likelihood_contract import PRECHECK_IMAGES, precheck_likelihood
from genbench.metrics import metric_specs
from genbench.metrics.user_metric import load_user_metric
from genbench.process import LoadSampler, load_average, seed_everything
from genbench.protocol import Capability, Generator, RunContext
from genbench.results import (
    RUN_FILE,
    RunRecord,
    cap_reason,
    changed_files,
    git_hash,
    machine_info,
    utc_now,
    write_run_record,
)
from genbench.run.efficiency import calibrate_flops, train_flops_per_image
from genbench.run.lock import run_lock
from genbench.run.options import RunOptions
from genbench.run.train import CHECKPOINT_NAME, train
from genbench.sample_contract import precheck_sampling
from genbench.suite import Suite
from genbench.version import __version__

# What evaluates a trained model: called as genbench.evaluate.evaluate_model is, evaluate(model, *, dataset,
# data_root, seed, device, progress, config), config being the suite's EvalConfig; returns an EvalResult.
Evaluator = Callable[..., Any]
_PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class RunProgress(Protocol):
    """Where a run reports how far it is (a rich bar locally, a Ray queue on a cluster)."""

    def __call__(self, fraction: float, info: str) -> None: ...


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; picklable, so that it can travel to a Ray worker.

    ``overrides`` are the settings applied to the generator's config defaults (the
    tiny config of smoke suites, then the suite file, then ``--set``). ``options`` are the
    run's ``RunOptions`` as it uses them (``RunOptions.for_run``: the device
    resolved, paths absolute). Their ``cpus_per_run`` fixes torch's intra-op threads for the
    run: on the CPU the numbers of a run depend on it (reductions are split differently),
    so equal specs give equal numbers with any executor. Plug-in files (``metric_files``,
    ``lens_files``) are imported again where the run executes: a Ray worker cannot
    unpickle a function of a file it never imported.
    """

    suite: Suite
    generator: type[Generator]
    seed: int
    budget: Budget
    overrides: dict[str, Any] = field(default_factory=dict)
    options: RunOptions = field(default_factory=lambda: RunOptions(device="cpu"))
    start_warnings: tuple[str, ...] = ()  # what the driver saw before training (a busy machine), kept in the record

    @property
    def device(self) -> str:
        return self.options.device

    @property
    def data_root(self) -> str | None:
        return self.options.data_root

    @property
    def out(self) -> str:
        return str(self.options.out)

    @property
    def threads(self) -> int | None:
        return self.options.cpus_per_run

    @property
    def model(self) -> str:
        return self.generator.name

    @property
    def key(self) -> str:
        return f"{self.model} seed {self.seed}"

    @property
    def run_dir(self) -> Path:
        return run_dir_for(self.out, self.suite.name, self.model, self.seed)

    def config(self) -> Any:
        return make_config(self.generator, self.overrides)


def run_dir_for(out: str | os.PathLike, suite: str, model: str, seed: int) -> Path:
    """``out/suite/model/seed<k>``; refuses names that would lead outside ``out``."""
    for what, part in (("suite name", suite), ("model name", model)):
        if not isinstance(part, str) or not _PATH_PART.fullmatch(part):
            raise ConfigError(
                f"{what} {part!r} cannot name a results folder: use letters, digits, '-', '_' and '.', "
                f"starting with a letter or digit"
            )
    base = Path(out)
    path = base / suite / model / f"seed{int(seed)}"
    if not path.resolve().is_relative_to(base.resolve()):
        raise ConfigError(f"{path} would lie outside the results folder {base}")
    return path


def save_grid(samples_u8: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Save up to ``nrow**2`` uint8 samples ``[N,1,28,28]`` as one PNG grid (written atomically)."""
    import torchvision.utils as vutils

    grid = vutils.make_grid(samples_u8[:nrow * nrow].float() / 255.0, nrow=nrow, padding=2, pad_value=1.0)
    buf = io.BytesIO()
    vutils.save_image(grid, buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def save_samples(samples_u8: torch.Tensor, path: Path) -> None:
    """Save the scored uint8 samples ``(N,1,28,28)`` in a compressed .npz (atomically).

    They sit in a folder of their own so that ``genbench eval --samples <run>/samples``
    rescores exactly what the run scored.
    """
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, samples=samples_u8.cpu().numpy())
    atomic_write_bytes(path, buf.getvalue())


def _add_efficiency(metrics: dict[str, Any], calibration: float) -> None:
    """Derived speed figures: achieved FLOP/s, its fraction of the machine, normalised throughputs."""
    tflops = calibration / 1e12
    if metrics.get("train_images_per_s") and metrics.get("train_flops_per_image"):
        metrics["train_flops_per_s"] = metrics["train_flops_per_image"] * metrics["train_images_per_s"]
        metrics["flops_utilization"] = round(metrics["train_flops_per_s"] / calibration, 5)
    if metrics.get("train_images_per_s"):
        metrics["train_images_per_s_norm"] = round(metrics["train_images_per_s"] / tflops, 3)
    if metrics.get("sample_images_per_s"):
        metrics["sample_images_per_s_norm"] = round(metrics["sample_images_per_s"] / tflops, 3)


def _metric_meta(keys: list[str]) -> dict[str, Any]:
    specs = metric_specs()
    return {
        k: {"unit": specs[k].unit, "higher_is_better": specs[k].higher_is_better, "group": specs[k].group}
        for k in keys if k in specs
    }


def _tensorboard_logger(spec: RunSpec, run_dir: Path) -> Any:
    """A :class:`genbench.run.tensorboard.RunLogger` for this run, or None without ``--tensorboard``."""
    if spec.options.tensorboard_dir is None:
        return None
    from genbench.run.tensorboard import RunLogger

    purge_step = None
    ckpt = run_dir / CHECKPOINT_NAME
    if ckpt.exists():  # resuming: drop events logged after the checkpoint by the interrupted process
        try:
            purge_step = int(torch.load(ckpt, map_location="cpu", weights_only=True)["progress"]["steps"]) + 1
        except Exception:
            purge_step = None  # train() reports the unusable checkpoint
    return RunLogger(Path(spec.options.tensorboard_dir) / spec.suite.name / spec.model / f"seed{spec.seed}", purge_step)


def _default_evaluator() -> Evaluator:
    from genbench.evaluate import evaluate_model

    return evaluate_model


def new_record(spec: RunSpec, config: Any, executor: dict[str, Any]) -> RunRecord:
    """The record of ``spec`` before anything ran: provenance, config, budget asked; status ``failed``."""
    cls = spec.generator
    return RunRecord(
        suite={"name": spec.suite.name, "version": spec.suite.version, "source": spec.suite.source},
        model={"name": cls.name, "class": f"{cls.__module__}.{cls.__qualname__}",
               "config": dataclasses.asdict(config), "capabilities": str(cls.capabilities.name),
               "likelihood_is_bound": cls.likelihood_is_bound, "role": cls.role.value},
        seed=spec.seed,
        genbench_version=__version__,
        git_hash=git_hash(),
        created=utc_now(),
        dataset=spec.suite.dataset,
        device=spec.device,
        torch_version=torch.__version__,
        machine=dict(machine_info()),
        budget={"asked": spec.budget.to_dict(), "kind": spec.budget.kind, "achieved": None},
        eval=spec.suite.eval.suite_settings(),
        executor=executor,
    )


def execute_run(
    spec: RunSpec,
    *,
    executor: str = "local",
    evaluator: Evaluator | None = None,
    progress: RunProgress | None = None,
) -> RunRecord:
    """Train and evaluate one (model, seed); write ``run.json`` (and grid, samples, log) and return the record.

    Takes the run folder's lock first (``genbench.run.lock.RunLockedError`` if another process holds
    it), continues from the folder's checkpoint if there is one, and records a model's
    own errors as status ``failed`` instead of raising them. Raises only for what no
    record can describe: a held lock, an unusable spec, or a record that cannot be written.
    """
    run_dir = spec.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir, "the same (model, seed) cannot run twice into one results folder"):
        return _execute_locked(spec, run_dir, executor, evaluator, progress)


def _execute_locked(
    spec: RunSpec, run_dir: Path, executor: str, evaluator: Evaluator | None, progress: RunProgress | None
) -> RunRecord:
    for stale in run_dir.glob(".*.tmp"):  # left by a process killed mid-write; we hold the run's lock
        stale.unlink(missing_ok=True)
    keep_freed_memory()  # in this process, be it the CLI's or a Ray worker's
    threads_before = torch.get_num_threads()
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    try:
        return _execute_with_threads(spec, run_dir, executor, evaluator, progress)
    finally:  # the caller's process keeps its own setting
        torch.set_num_threads(threads_before)


def _execute_with_threads(
    spec: RunSpec, run_dir: Path, executor: str, evaluator: Evaluator | None, progress: RunProgress | None
) -> RunRecord:
    device = torch.device(spec.device)
    config = spec.config()
    record = new_record(spec, config, {
        "name": executor, "host": socket.gethostname(), "pid": os.getpid(), "torch_threads": torch.get_num_threads(),
        "resumed_from_step": None, "load_average": {"start": load_average()}, "allow_dirty": spec.options.allow_dirty,
    })
    record.warnings.extend(spec.start_warnings)
    if spec.options.allow_dirty and changed_files():
        record.warnings.append("ran with --allow-dirty from uncommitted changes to " + ", ".join(changed_files()))
    load = LoadSampler().start()  # sampled over training and evaluation, where the speed figures are measured
    calibration = calibrate_flops(str(device), threads=torch.get_num_threads())
    record.calibration_flops_per_s = calibration
    wall0 = time.perf_counter()
    tb = _tensorboard_logger(spec, run_dir)

    def report(fraction: float, info: str) -> None:
        if progress is not None:
            progress(fraction, info)

    def on_train(tracker, losses, ips) -> None:
        shown = " ".join(f"{k}={v:.3g}" for k, v in list(losses.items())[:3])
        done = f"{tracker.images:,}/{spec.budget.images:,} img" if spec.budget.images else f"{tracker.images:,} img"
        report(tracker.fraction(), f"{done} {shown} {ips:,.0f} img/s")
        if tb is not None:
            tb.train(tracker.steps, losses, ips)

    def on_eval(description: str, completed: int, total: int) -> None:
        report(1.0, f"eval: {description} {completed:,}/{total:,}")

    samples = None
    try:
        samples = _train_and_evaluate(spec, config, device, run_dir, record, calibration, evaluator, on_train, on_eval)
    except (KeyboardInterrupt, SystemExit):
        load.stop()
        raise
    except GenbenchError as exc:  # a checkpoint of another run, missing data, ...: say so in one line
        record.status, record.error = "failed", str(exc)
    except Exception as exc:  # a failing model must not take the suite down: record it
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        record.traceback = traceback.format_exc(limit=8)
    record.timings["wall_seconds"] = round(time.perf_counter() - wall0, 3)
    record.executor["load_average"]["during"] = load.stop()
    record.executor["load_average"]["end"] = load_average()
    record.metric_meta = _metric_meta(list(record.metrics))
    if tb is not None:
        tb.final(record.metrics, samples)
        tb.close()
    try:
        write_run_record(run_dir, record)
    except OSError as exc:
        # Disk full or similar: earlier records are intact (writes are atomic), this one is lost.
        raise GenbenchError(
            f"cannot write {run_dir / RUN_FILE} ({exc.strerror or exc}); run {spec.key} ended "
            f"with status {'failed' if record.status == 'ok' else record.status}"
            + (f" after: {record.error}" if record.error else "")
        ) from None
    report(1.0, record.status)
    return record


def _train_and_evaluate(
    spec: RunSpec, config: Any, device: torch.device, run_dir: Path, record: RunRecord, calibration: float,
    evaluator: Evaluator | None, on_train: Callable, on_eval: Callable,
) -> torch.Tensor | None:
    """Fill ``record`` in place; return the scored uint8 samples (None when training did not end ok)."""
    train_split = load_split(spec.suite.dataset, "train", spec.data_root)
    seed_everything(spec.seed)
    model = spec.generator(config).to(device)
    model.setup(RunContext(spec.suite.dataset, spec.data_root))
    t0 = time.perf_counter()
    precheck_sampling(model, spec.seed)  # a wrong shape or range fails now, not after the budget
    record.timings["sample_check_seconds"] = round(time.perf_counter() - t0, 3)
    if model.has(Capability.LOG_LIKELIHOOD):  # so does a likelihood in the wrong shape or units
        t0 = time.perf_counter()
        test_images = load_split(spec.suite.dataset, "test", spec.data_root).images[:PRECHECK_IMAGES]
        precheck_likelihood(model, test_images, spec.seed)
        record.timings["likelihood_check_seconds"] = round(time.perf_counter() - t0, 3)
    batch = train_split.images[: int(config.batch_size)].to(device)
    flops_per_image = train_flops_per_image(model, batch)
    result = train(
        model, train_split.images, spec.budget, seed=spec.seed, run_dir=run_dir,
        resume=(run_dir / CHECKPOINT_NAME).exists(),
        checkpoint_every_seconds=spec.options.checkpoint_every_seconds,
        checkpoint_every_steps=spec.options.checkpoint_every_steps,
        progress=on_train,
    )
    record.budget["achieved"] = result.achieved
    record.status, record.error = result.status, result.error
    record.executor["resumed_from_step"] = result.resumed_from_step
    speed, speed_reasons = result.speed_record()
    record.null_reasons.update(speed_reasons)
    record.metrics.update({
        "train_images_per_s": round(result.train_images_per_s, 2),
        **speed,
        "peak_memory_mb": result.peak_memory_mb,
        "num_parameters": result.num_parameters,
        "train_flops_per_image": flops_per_image,
    })
    _add_efficiency(record.metrics, calibration)
    record.timings["train_seconds"] = result.achieved["seconds"]
    if result.status != "ok":
        return None
    evaluate = evaluator or _default_evaluator()
    for metric_file in spec.options.metric_files:
        load_user_metric(metric_file)
    for lens_file in spec.options.lens_files:
        load_lens(lens_file)
    t0 = time.perf_counter()
    ev = evaluate(model, dataset=spec.suite.dataset, data_root=spec.data_root, seed=spec.seed, device=device,
                  progress=on_eval, config=spec.suite.eval)
    record.timings["eval_seconds"] = round(time.perf_counter() - t0, 3)
    record.timings.update({f"eval_{k}_seconds": round(v, 3) for k, v in ev.timings.items()})
    record.metrics.update(ev.metrics)
    record.null_reasons.update(ev.null_reasons)
    record.extractor = ev.extractor
    record.warnings.extend(getattr(ev, "warnings", []))
    record.warnings.extend(getattr(ev, "errors", []))  # a user metric that failed: its value is null, the run is not
    _add_efficiency(record.metrics, calibration)
    reason = cap_reason(record.budget)
    if reason:  # evaluated, so that its numbers can be seen, but not ok: it did less work than asked
        record.status, record.error = "capped", reason
    save_grid(ev.samples, run_dir / "samples.png")
    save_samples(ev.samples, run_dir / "samples" / "samples.npz")
    return ev.samples
