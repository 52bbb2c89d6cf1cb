"""``genbench speed``: fixed workloads measured as many short windows, on one tree or two interleaved.

Workloads (run by :mod:`genbench.speed.worker` in fresh processes):

- per registered generator, at its config in the suite (``mnist-small``; no tiny
  settings): ``train_images_per_s`` (``train_step`` on real training batches at the
  config's batch size, after warm-up) and ``sample_images_per_s`` (``sample`` at the
  evaluation's sample batch size, ``EvalConfig.sample_batch_size``);
- ``eval``: ``feature_images_per_s`` (the domain classifier over a fixed set of
  training images) and ``metric_images_per_s`` (every sample-quality metric of
  ``genbench eval`` from those features, against the cached test reference).

Each figure is the throughput of many short windows of a fixed number of calls
(sized once so that a window lasts about ``window_seconds``, at least one call);
every figure gets windows until about ``seconds_per_figure`` of them are measured,
and at least ``min_rounds``. On a shared machine the noise of a window hardly
shrinks with its length, so many short windows give a tighter interval than a few
long ones for the same time. Work counts are recorded beside the throughputs and
compared exactly: parameters and FLOPs per image.

With ``against``, the working tree and a git revision each get one worker process,
started with the same interpreter, installed packages and thread count. A round
runs one window of every workload that still needs windows on both sides, in an
order shuffled anew each round (workloads and, within each, which side goes first,
as touchstone does), so that the load of a shared machine falls on both alike and
each round gives one paired ratio. The ratio new/old is the Hodges-Lehmann estimate over rounds with
the signed-rank 95% interval (:func:`genbench.stats.paired_ratio`; Hollander, Wolfe
& Chicken 2014, §3.2-3.3; Bauer 1972). Verdict: ``regressed`` when the whole
interval is below ``1 - tol``, ``improved`` when it is above ``1 + tol``, else
``held``; a changed work count is ``work changed``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.errors import GenbenchError, InputError
from genbench.kv import split_items
from genbench.process import load_average
from genbench.speed.trees import SourceTree, export_revision, repo_root, working_tree
from genbench.speed.worker import EVAL, FEATURES, METRICS, SAMPLE, TRAIN
from genbench.stats import median_ci, paired_ratio
from genbench.verdict import Verdict

FIGURES = {"train": TRAIN, "sample": SAMPLE, "features": FEATURES, "metrics": METRICS}
MODEL_FIGURES = (TRAIN, SAMPLE)
EVAL_FIGURES = (FEATURES, METRICS)
MIN_ROUNDS_AGAINST = 6  # the signed-rank 95% interval needs at least 6 pairs
WARMUP_MAX_SECONDS = 2.0  # workloads with longer windows skip the discarded warm-up window
NEW, OLD, CURRENT = "new", "old", "current"

ProgressFn = Callable[[str, int, int], None]


class WorkerError(GenbenchError):
    """A worker process failed: its tree cannot run a workload."""


@dataclass(frozen=True)
class SpeedConfig:
    """What to measure and how; every field has a CLI option."""

    models: tuple[str, ...] | None = None  # generators and/or "eval"; None: all generators + eval
    figures: tuple[str, ...] = tuple(FIGURES.values())
    window_seconds: float = 0.05  # target length of one window (at least one call)
    seconds_per_figure: float = 5.0  # measured time per figure and side (windows are added up to it)
    min_rounds: int = 8  # windows per figure and side at least, however long a call is
    rounds: int | None = None  # fixed windows per figure and side (overrides the two above)
    threads: int = 1
    device: str = "cpu"
    suite: str = "mnist-small"
    sample_batch: int | None = None  # None: EvalConfig.sample_batch_size of this genbench
    eval_images: int = 2000
    data_root: str | None = None
    seed: int = 0
    clock: str = "auto"  # auto | cpu | wall (see resolve_clock)


@dataclass
class Workload:
    model: str
    figure: str
    calls: int  # calls per window
    images_per_call: int
    est_window_seconds: float
    rounds: int  # windows per side


@dataclass
class Measurement:
    """Raw result of one ``genbench speed`` run: windows per side, work counts, conditions."""

    config: SpeedConfig
    sides: dict[str, dict[str, Any]]  # side -> tree label, commit, imported genbench, torch, threads
    work: dict[str, dict[str, dict[str, float] | None]]  # model -> side -> counts (None: not registered)
    workloads: list[Workload]
    windows: dict[tuple[str, str], dict[str, list[float]]]  # (model, figure) -> side -> img/s per round
    load_average: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def parse_tolerance(text: str) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1; a fraction in [0, 1)."""
    value = text.strip()
    try:
        tol = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        tol = -1.0
    if not (0.0 <= tol < 1.0):
        raise InputError(f"--tol expects a percentage such as 10% (or a fraction such as 0.1), got {text!r}")
    return tol


def parse_figures(text: str | None) -> tuple[str, ...]:
    if not text:
        return tuple(FIGURES.values())
    names = split_items(text)
    unknown = [n for n in names if n not in FIGURES]
    if unknown or not names:
        raise InputError(f"--figures: unknown {', '.join(unknown) or 'empty list'}; valid: {', '.join(FIGURES)}")
    return tuple(FIGURES[n] for n in FIGURES if n in names)


def check_models(models: tuple[str, ...] | None, figures: tuple[str, ...], known: list[str]) -> None:
    """InputError unless every name in ``models`` is ``eval`` or one of the ``known`` generators,
    and at least one of them has a workload among ``figures``."""
    if models is None:
        return
    wants_eval = any(f in EVAL_FIGURES for f in figures)
    wants_models = any(f in MODEL_FIGURES for f in figures)
    names = list(dict.fromkeys(models))
    unknown = [n for n in names if n != EVAL and n not in known]
    if unknown:
        raise InputError(f"unknown generator {unknown[0]!r}; valid: {', '.join(sorted(known))}, {EVAL}")
    if not any((n == EVAL and wants_eval) or (n != EVAL and wants_models) for n in names):
        raise InputError(f"--models {','.join(names)} has no workload among the figures asked for "
                         f"(eval has features and metrics, generators train and sample)")


def resolve_clock(config: SpeedConfig) -> str:
    """``auto``: process CPU time with one thread on the CPU (time taken by other processes is left
    out, as is waiting, so it must be the only thread), otherwise wall-clock time."""
    if config.clock != "auto":
        return config.clock
    return "cpu" if config.device == "cpu" and config.threads == 1 else "wall"


class Worker:
    """One worker process measuring one source tree (``tree=None``: this interpreter's genbench)."""

    def __init__(self, side: str, tree: SourceTree | None, scratch: Path, threads: int) -> None:
        self.side = side
        script = scratch / "speed_worker.py"
        if not script.exists():
            shutil.copyfile(Path(__file__).with_name("worker.py"), script)
        env = dict(os.environ)
        if tree is not None:
            rest = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
            env["PYTHONPATH"] = os.pathsep.join(tree.pythonpath + rest)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        env["PYTHONHASHSEED"] = "0"
        self.log_path = scratch / f"worker-{side}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - the worker writes to it until close()
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, env=env, cwd=scratch,
        )

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(self._died()) from None

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(self._died())
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"{self.side} side: {reply['error']}")
        return reply

    def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.send(msg)
        return self.receive()

    def _died(self) -> str:
        self.proc.wait()
        self._log.flush()
        lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else "no output"
        return f"{self.side} side: worker exited with code {self.proc.returncode}: {last}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "quit"})
                self.proc.wait(timeout=30)
            except (WorkerError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _sample_batch(config: SpeedConfig) -> int:
    if config.sample_batch is not None:
        return config.sample_batch
    from genbench.evaluate import EvalConfig

    return EvalConfig().sample_batch_size


def _plan(config: SpeedConfig, setups: dict[str, dict[str, Any]], models: list[str], clock: str) -> list[Workload]:
    """Calls per window and windows per figure, from the first side's warm-up timings (the same for all sides)."""
    first = next(iter(setups))
    workloads = []
    for model in models:
        if not all(setups[s]["models"].get(model, {}).get("registered") for s in setups):
            continue
        info = setups[first]["models"][model]
        for figure in (EVAL_FIGURES if model == EVAL else MODEL_FIGURES):
            if figure not in config.figures:
                continue
            call = max(info["call_seconds"][figure][clock], 1e-6)
            calls = max(1, math.ceil(config.window_seconds / call))
            window = calls * call
            rounds = config.rounds or max(config.min_rounds, math.ceil(config.seconds_per_figure / window))
            workloads.append(Workload(model, figure, calls, info["images_per_call"][figure], window, rounds))
    return workloads


def measure(
    config: SpeedConfig,
    trees: dict[str, SourceTree | None],
    scratch: Path,
    progress: ProgressFn | None = None,
) -> Measurement:
    """Start one worker per side, set up every model, then run interleaved rounds until every
    figure has its windows.

    The first side of ``trees`` (the working tree, or the only side) decides which
    models exist and sizes the windows.
    """
    import genbench

    clock = resolve_clock(config)
    t_start = time.perf_counter()
    loads: dict[str, Any] = {"start": load_average(), "rounds": []}
    workers: dict[str, Worker] = {}
    first = next(iter(trees))
    try:
        for side, tree in trees.items():
            workers[side] = Worker(side, tree, scratch, config.threads)
        wants_models = any(f in MODEL_FIGURES for f in config.figures)
        wants_eval = any(f in EVAL_FIGURES for f in config.figures)
        generators = None if config.models is None else [m for m in config.models if m != EVAL]
        setup = {
            "op": "setup", "generators": generators if wants_models else [],
            "eval": wants_eval and (config.models is None or EVAL in config.models), "threads": config.threads,
            "device": config.device, "suite": config.suite, "sample_batch": _sample_batch(config),
            "eval_images": config.eval_images, "data_root": config.data_root, "seed": config.seed,
        }
        if progress is not None:
            progress("starting workers: imports, models, FLOP counts, warm-up", 0, 0)
        for side, tree in trees.items():  # set up in parallel: nothing is timed yet
            expect = str(tree.genbench_init if tree is not None else Path(genbench.__file__).resolve())
            workers[side].send({**setup, "expect_genbench": expect})
        setups = {side: workers[side].receive() for side in trees}
        loads["setup_seconds"] = round(time.perf_counter() - t_start, 1)
        check_models(config.models, config.figures, setups[first]["generators"])
        models = list(setups[first]["models"])
        workloads = _plan(config, setups, models, clock)
        windows: dict[tuple[str, str], dict[str, list[float]]] = {
            (w.model, w.figure): {side: [] for side in trees} for w in workloads
        }
        rng = random.Random(config.seed)
        warm = [w for w in workloads if w.est_window_seconds <= WARMUP_MAX_SECONDS]
        total = len(trees) * (len(warm) + sum(w.rounds for w in workloads))
        done = 0

        def run(w: Workload, record: bool) -> None:
            nonlocal done
            sides = list(trees)
            rng.shuffle(sides)
            for side in sides:
                if progress is not None:
                    progress(f"{'round' if record else 'warm-up'}: {w.model} {w.figure} ({side})", done, total)
                r = workers[side].request({"op": "window", "model": w.model, "figure": w.figure, "calls": w.calls})
                if record:
                    windows[(w.model, w.figure)][side].append(r["images"] / max(r[clock], 1e-12))
                done += 1

        for w in warm:
            run(w, record=False)
        for r in range(max((w.rounds for w in workloads), default=0)):
            order = [w for w in workloads if w.rounds > r]  # cheap figures get more rounds than slow ones
            rng.shuffle(order)
            for w in order:
                run(w, record=True)
            loads["rounds"].append(load_average())
        if progress is not None:
            progress("done", total, total)
    finally:
        for worker in workers.values():
            worker.close()
    loads["end"] = load_average()
    work = {m: {side: (setups[side]["models"][m].get("work")
                       if setups[side]["models"].get(m, {}).get("registered") else None)
                for side in trees} for m in models}
    sides = {
        side: {
            "tree": tree.label if tree is not None else "installed genbench",
            "commit": tree.commit if tree is not None else None,
            "genbench": setups[side]["genbench_file"],
            "torch": setups[side]["torch"],
            "threads": setups[side]["threads"],
            "clock": clock,
        }
        for side, tree in trees.items()
    }
    return Measurement(config, sides, work, workloads, windows, loads, time.perf_counter() - t_start)


def run_speed(
    config: SpeedConfig, against: str | None = None, repo: str | os.PathLike = ".", progress: ProgressFn | None = None
) -> Measurement:
    """Measure this genbench, or (``against``) the working tree of ``repo`` and revision ``against``.

    Unusable input (bad options, unknown model, not a git checkout, unknown
    revision) raises before any worker starts, except a model name that only the
    working tree can judge (when it is not the genbench running this code).
    """
    import genbench
    from genbench.registry import generator_names

    if against is not None and (config.rounds or config.min_rounds) < MIN_ROUNDS_AGAINST:
        raise InputError(f"--rounds/--min-rounds must be at least {MIN_ROUNDS_AGAINST} with --against "
                         f"(the 95% interval of a paired ratio needs {MIN_ROUNDS_AGAINST} rounds)")
    if config.clock not in ("auto", "cpu", "wall"):
        raise InputError(f"--clock must be auto, cpu or wall, got {config.clock!r}")
    if resolve_clock(config) == "cpu" and config.device != "cpu":
        raise InputError("--clock cpu measures CPU time; use --clock wall with --device cuda")
    this = Path(genbench.__file__).resolve()
    with tempfile.TemporaryDirectory(prefix="genbench-speed-") as tmp:
        scratch = Path(tmp)
        trees: dict[str, SourceTree | None]
        if against is None:
            trees = {CURRENT: None}
        else:
            root = repo_root(repo)
            trees = {NEW: working_tree(root, scratch)}
        if against is None or trees[NEW].genbench_init.resolve() == this:
            check_models(config.models, config.figures, generator_names())
        if against is not None:
            trees[OLD] = export_revision(root, against, scratch)
        return measure(config, trees, scratch, progress)


# -- summaries -----------------------------------------------------------------------

def summarise(m: Measurement) -> list[dict[str, Any]]:
    """One side: per (model, figure) the median img/s and its 95% interval over windows."""
    side = next(iter(m.sides))
    rows = []
    for (model, figure), per_side in m.windows.items():
        values = per_side[side]
        median, low, high = median_ci(values)
        rows.append({"model": model, "figure": figure, "median": median, "ci_low": low, "ci_high": high,
                     "windows": len(values), "unit": "img/s"})
    return rows


def compare(m: Measurement, tol: float) -> list[dict[str, Any]]:
    """Two sides: per (model, figure) the ratio new/old with its 95% interval and a verdict.

    Work counts are rows too, compared exactly (``held`` or ``work changed``).
    """
    rows = []
    for (model, figure), per_side in m.windows.items():
        new, old = per_side[NEW], per_side[OLD]
        r = paired_ratio(new, old)
        if r.high is not None and r.high < 1 - tol:
            verdict = Verdict.REGRESSED
        elif r.low is not None and r.low > 1 + tol:
            verdict = Verdict.IMPROVED
        else:
            verdict = Verdict.HELD
        rows.append({"model": model, "figure": figure, "old": median_ci(old)[0], "new": median_ci(new)[0],
                     "ratio": r.estimate, "ci_low": r.low, "ci_high": r.high, "verdict": verdict,
                     "unit": "img/s", "rounds": r.n})
    for model, per_side in m.work.items():
        new_w, old_w = per_side[NEW] or {}, per_side[OLD] or {}
        for key in sorted(set(new_w) | set(old_w)):
            a, b = new_w.get(key), old_w.get(key)
            ratio = a / b if a is not None and b else None
            rows.append({"model": model, "figure": key, "old": b, "new": a, "ratio": ratio, "ci_low": ratio,
                         "ci_high": ratio, "verdict": Verdict.HELD if a == b else Verdict.WORK_CHANGED, "unit": "",
                         "rounds": 0})
    return rows


def report_json(m: Measurement, rows: list[dict[str, Any]], tol: float | None) -> dict[str, Any]:
    """The JSON written by ``--json``: conditions, then one object per (model, figure)."""
    from dataclasses import asdict

    from genbench.results import json_safe, machine_info, utc_now

    return json_safe({
        "created": utc_now(),
        "config": asdict(m.config),
        "tolerance": tol,
        "sides": m.sides,
        "machine": machine_info(),
        "load_average": m.load_average,
        "seconds": round(m.seconds, 1),
        "workloads": [asdict(w) for w in m.workloads],
        "work": m.work,
        "windows": {f"{model}/{figure}": per_side for (model, figure), per_side in m.windows.items()},
        "results": rows,
    })

