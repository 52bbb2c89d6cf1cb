"""Train one generator under a budget: seeds, data order, checkpoints, resume, timing.

The harness knows nothing about any model beyond the :class:`~genbench.protocol.Generator`
protocol: it hands uint8 batches to ``train_step`` and records what comes back.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genbench.budget import Budget, BudgetTracker
from genbench.errors import CheckpointError, ConfigError
from genbench.files.atomic import atomic_torch_save, atomic_write_text
from genbench.process import rss_mb, seed_everything
from genbench.protocol import Generator, RunContext
from genbench.run.options import RunOptions
from genbench.stats import MIN_MEDIAN_CI_N, median_ci

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
# Throughput is the median over windows of at least this much train_step time: short enough
# that a run has many (load spikes then move single windows, not the figure), long enough
# to span several steps of the fast models.
SPEED_WINDOW_SECONDS = 0.5


def _rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        # numpy's state holds an ndarray; store plain lists so weights_only loading accepts it.
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "data": data_gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainResult:
    """What training produced; ``status`` is ok | diverged | failed.

    ``train_images_per_s`` is the median throughput over windows of at least
    ``SPEED_WINDOW_SECONDS`` of ``train_step`` time; ``train_images_per_s_ci`` its
    95% interval (None, None with fewer than 6 windows); ``train_windows`` how many.
    """

    status: str
    budget: Budget
    achieved: dict[str, Any]
    train_images_per_s: float
    peak_memory_mb: float
    num_parameters: int
    log: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    resumed_from_step: int | None = None
    train_images_per_s_ci: tuple[float | None, float | None] = (None, None)
    train_windows: int = 0

    def speed_record(self) -> tuple[dict[str, float | None], dict[str, str]]:
        """The interval as run-record metrics, and the reason where it is null."""
        low, high = self.train_images_per_s_ci
        metrics = {"train_images_per_s_ci_low": None if low is None else round(low, 2),
                   "train_images_per_s_ci_high": None if high is None else round(high, 2)}
        reasons = {} if low is not None else {
            k: f"fewer than {MIN_MEDIAN_CI_N} windows of {SPEED_WINDOW_SECONDS:g} s of train_step time "
               f"(a 95% interval of the median needs {MIN_MEDIAN_CI_N})" for k in metrics}
        return metrics, reasons


def window_throughput(rates: list[float], images: int, seconds: float) -> tuple[float, float | None, float | None]:
    """Median images/s over measurement windows with its 95% interval.

    ``rates``: images/s of each full window; ``images``/``seconds``: the whole run,
    used as a single window when the run was too short to fill one.
    """
    if not rates:
        return (images / seconds if seconds > 0 else 0.0), None, None
    return median_ci(rates)


ProgressFn = Callable[[BudgetTracker, dict[str, float], float], None]


def loss_floats(model: Generator, losses: Any) -> dict[str, float]:
    """``train_step``'s ``{name: loss}`` as plain floats, each converted once.

    A loss may be a Python/NumPy number or a one-element tensor (with ``requires_grad``
    or on a GPU too): tensors are read with ``.detach().item()``, so PyTorch does not warn
    about converting a tensor that requires grad. Anything else is refused in one line.
    """
    who = f"{type(model).__name__}.train_step"
    if not isinstance(losses, dict):
        raise TypeError(f"{who} returned a {type(losses).__name__}; return a dict {{loss_name: value}}")
    out: dict[str, float] = {}
    for k, v in losses.items():
        if isinstance(v, Tensor):
            if v.numel() != 1:
                raise TypeError(f"{who} returned loss {k!r} with shape {tuple(v.shape)}; "
                                f"return one number per loss (e.g. loss.mean())")
            out[str(k)] = float(v.detach().item())
        elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
            out[str(k)] = float(v)
        else:
            raise TypeError(f"{who} returned loss {k!r} = {v!r}; losses must be numbers or one-element tensors")
    return out


def _write_log(path: Path, rows: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def checkpoint_identity(model: Generator, seed: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed into ``model``."""
    return {"model": model.name, "config": _plain(asdict(model.config)), "seed": seed}


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def load_checkpoint(path: Path, model: Generator, seed: int) -> dict[str, Any]:
    """Load ``path`` with ``weights_only=True`` and check it belongs to this model, config and seed."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a genbench checkpoint (format {CHECKPOINT_FORMAT})")
    want = checkpoint_identity(model, seed)
    have = ckpt.get("identity", {})
    for key in ("model", "seed", "config"):
        if have.get(key) != want[key]:
            if key == "config":
                diffs = sorted(
                    k for k in set(want["config"]) | set(have.get("config") or {})
                    if want["config"].get(k) != (have.get("config") or {}).get(k)
                )
                detail = f"settings differ: {', '.join(diffs)}"
            else:
                detail = f"checkpoint has {have.get(key)!r}, run has {want[key]!r}"
            raise CheckpointError(f"{path} belongs to another run ({key} mismatch: {detail})")
    return ckpt


def load_trained_run(
    run_dir: str | os.PathLike,
    *,
    generator: type[Generator] | None = None,
    device: torch.device | str = "cpu",
    context: RunContext | None = None,
) -> tuple[Generator, Any]:
    """The model of a finished run folder, rebuilt from its ``run.json`` and ``checkpoint.pt``, in eval mode.

    Returns ``(model, record)``; the checkpoint is checked against the record's model, config and seed.
    ``generator``: the class to rebuild (default: the registered one of the record's name);
    ``context``: passed to ``setup`` before the weights are loaded, as the harness does.
    """
    from genbench.config import make_config
    from genbench.registry import get_generator
    from genbench.results import RUN_FILE, read_run_record

    record = read_run_record(Path(run_dir) / RUN_FILE)
    cls = generator or get_generator(record.model["name"])
    model = cls(make_config(cls, record.model["config"])).to(device)
    if context is not None:
        model.setup(context)
    model.load_checkpoint_state(load_checkpoint(Path(run_dir) / CHECKPOINT_NAME, model, record.seed)["state"])
    return model.eval(), record


def train(
    model: Generator,
    images: Tensor,
    budget: Budget,
    *,
    seed: int,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    checkpoint_every_steps: int | None = None,
    checkpoint_every_seconds: float | None = RunOptions.checkpoint_every_seconds,
    log_every: int = 50,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train ``model`` on ``images`` (uint8 [N,1,28,28]) until ``budget`` is spent.

    Batches of ``model.config.batch_size`` are drawn without replacement from a
    per-epoch permutation of a data RNG seeded by ``seed``; the last partial batch
    of an epoch is dropped so every step sees the same batch size. With ``run_dir``,
    checkpoints (model, optimizers, RNG streams, data position, log) are written
    atomically every ``checkpoint_every_steps`` steps / ``checkpoint_every_seconds``
    seconds and at the end; ``resume=True`` continues from the last one and, on CPU,
    ends in the same state as an uninterrupted run.
    """
    device = model.device
    batch_size = int(model.config.batch_size)
    n = images.shape[0]
    if batch_size <= 0 or batch_size > n:
        raise ConfigError(f"{model.name}: batch_size {batch_size} must be in 1..{n}")
    steps_per_epoch = n // batch_size
    data = images.to(device)

    seed_everything(seed)
    data_gen = torch.Generator().manual_seed(seed)
    tracker = BudgetTracker(budget)
    log: list[dict[str, float]] = []
    epoch, pos = 0, 0
    perm = torch.randperm(n, generator=data_gen)
    resumed_from = None
    ckpt_path = Path(run_dir) / CHECKPOINT_NAME if run_dir is not None else None
    speed_windows: list[float] = []  # images/s of each full measurement window
    speed_images, speed_seconds = 0, 0.0

    if resume and ckpt_path is not None and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, model, seed)
        model.load_checkpoint_state(ckpt["state"])
        prog = ckpt["progress"]
        tracker.steps, tracker.images, tracker.seconds = prog["steps"], prog["images"], prog["seconds"]
        epoch, pos = prog["epoch"], prog["pos"]
        speed_windows = list(prog.get("speed_windows", []))
        perm = ckpt["perm"]
        log = [dict(r) for r in ckpt["log"]]
        _set_rng_state(ckpt["rng"], data_gen)
        resumed_from = tracker.steps

    def save_checkpoint() -> None:
        if ckpt_path is None:
            return
        atomic_torch_save(
            {
                "format": CHECKPOINT_FORMAT,
                "identity": checkpoint_identity(model, seed),
                "state": model.checkpoint_state(),
                "progress": {"steps": tracker.steps, "images": tracker.images, "seconds": tracker.seconds,
                             "epoch": epoch, "pos": pos, "speed_windows": speed_windows},
                "perm": perm,
                "log": log,
                "rng": _rng_state(data_gen),
            },
            ckpt_path,
        )
        _write_log(ckpt_path.parent / "train_log.csv", log)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peak_rss = rss_mb()
    status, error = "ok", None
    last_ckpt_time = time.monotonic()
    window_images, window_seconds = 0, 0.0
    losses: dict[str, float] = {}
    model.train()
    while not tracker.exhausted():
        if pos >= steps_per_epoch:
            epoch, pos = epoch + 1, 0
            perm = torch.randperm(n, generator=data_gen)
        idx = perm[pos * batch_size:(pos + 1) * batch_size]
        batch = data[idx.to(device)] if device.type != "cpu" else data[idx]
        pos += 1
        t0 = time.perf_counter()
        losses = model.train_step(batch, tracker.steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        losses = loss_floats(model, losses)
        tracker.update(batch_size, dt)
        window_images += batch_size
        window_seconds += dt
        speed_images += batch_size
        speed_seconds += dt
        if speed_seconds >= SPEED_WINDOW_SECONDS:
            speed_windows.append(speed_images / speed_seconds)
            speed_images, speed_seconds = 0, 0.0
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad or tracker.steps % log_every == 0 or tracker.exhausted():
            log.append({"step": tracker.steps, "images": tracker.images, "seconds": round(tracker.seconds, 4),
                        **{k: float(v) for k, v in losses.items()}})
            peak_rss = max(peak_rss, rss_mb())
            if progress is not None:
                progress(tracker, losses, window_images / window_seconds if window_seconds > 0 else 0.0)
            window_images, window_seconds = 0, 0.0
        if bad:
            status = "diverged"
            error = f"non-finite loss ({', '.join(bad)}) at step {tracker.steps}"
            break
        due_steps = checkpoint_every_steps is not None and tracker.steps % checkpoint_every_steps == 0
        due_time = (checkpoint_every_seconds is not None
                    and time.monotonic() - last_ckpt_time >= checkpoint_every_seconds)
        if (due_steps or due_time) and not tracker.exhausted():
            save_checkpoint()
            last_ckpt_time = time.monotonic()

    if status == "ok":
        save_checkpoint()
    elif ckpt_path is not None:
        _write_log(ckpt_path.parent / "train_log.csv", log)
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else max(peak_rss, rss_mb())
    )
    median, low, high = window_throughput(speed_windows, tracker.images, tracker.seconds)
    return TrainResult(
        status=status,
        budget=budget,
        achieved=tracker.achieved(),
        train_images_per_s=median,
        train_images_per_s_ci=(low, high),
        train_windows=len(speed_windows),
        peak_memory_mb=round(peak, 1),
        num_parameters=model.num_parameters(),
        log=log,
        error=error,
        resumed_from_step=resumed_from,
    )
