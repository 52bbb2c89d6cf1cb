"""Rerun committed run records with the current code and say whether their numbers come out again.

``genbench reproduce results/mnist-small`` reads the records of one suite folder,
rebuilds each record's run spec from the record itself (suite and version, model,
the record's full config, seed, budget asked, torch threads, device), reruns it into
a scratch folder through :func:`genbench.run.task.execute_run` (the one function
every executor calls), and compares the two records:

- ``identical``: the status, the work done (steps and images) and every metric of the
  record are equal bit for bit;
- ``within tolerance``: some differ, each within the tolerance ``genbench check``
  would give it (:mod:`genbench.verify.check`: the registry's, or ``--tol``);
- ``different``: the status or the work done differs, or a metric lies outside its
  tolerance, or a metric is missing from one side.

Wall-clock speed figures (the registry's ``speed`` group) are excluded, as in
``genbench check``: one run's timings on a shared machine are noise. Each verdict
also says whether files the run used changed since the record's revision
(:mod:`genbench.revision`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from genbench.budget import Budget
from genbench.config import make_config, validate_config
from genbench.data.datasets import SPLIT_SIZES, dataset_names, load_split
from genbench.errors import ConfigError, InputError
from genbench.evaluate.settings import SUITE_EVAL_KEYS, EvalConfig
from genbench.metrics import metric_specs
from genbench.protocol import Generator
from genbench.registry import get_generator
from genbench.report.aggregate import aggregate
from genbench.results import RUN_FILE, RunRecord, json_safe, machine_info, read_run_record
from genbench.revision import RevisionCheck, revision_check, used_paths
from genbench.run.options import RunOptions
from genbench.run.progress import ProgressBoard
from genbench.run.task import Evaluator, RunSpec, execute_run, run_dir_for
from genbench.run.train import CHECKPOINT_NAME
from genbench.suite import Suite, load_suite
from genbench.verdict import REPRODUCED, Verdict
from genbench.verify.check import parse_tolerances, validate_records, validate_tolerances
from genbench.verify.tolerance import ALPHA, Tolerance, band, is_judged

IDENTICAL, WITHIN, CONSISTENT, DIFFERENT = Verdict.IDENTICAL, Verdict.WITHIN, Verdict.CONSISTENT, Verdict.DIFFERENT
WORK_KEYS = ("steps", "images")  # deterministic work done; the seconds it took is timing


@dataclass(frozen=True)
class MetricDiff:
    """One compared quantity whose rerun value is not bit-for-bit the recorded one."""

    metric: str  # a metric key, or "status" / "budget.achieved.images" / ...
    recorded: Any
    rerun: Any
    tolerance: str  # "exact", the kind's floor, or the committed seeds' prediction interval
    verdict: str  # within tolerance | consistent | different
    allowed: float | None = None  # the deviation the kind's floor allows (None: exact, or not numbers)
    seeds: int | None = None  # committed seeds behind the prediction interval, when one was used
    seeds_mean: float | None = None
    seeds_sd: float | None = None
    interval: tuple[float, float] | None = None  # the prediction interval for one new seed

    @property
    def share(self) -> float:
        """How much of its tolerance the difference uses (inf when it is exact or not a number)."""
        if self.allowed is None:
            return math.inf
        delta = abs(self.rerun - self.recorded)
        return delta / self.allowed if self.allowed else (math.inf if delta else 0.0)

    def describe(self) -> str:
        """``fid 12.3 -> 12.9 (+0.6, +4.88%; tolerance 15%)``: what differs and by how much."""
        then, now = _fmt(self.recorded), _fmt(self.rerun)
        if then == now:  # equal to 6 digits: show every digit
            then, now = repr(self.recorded), repr(self.rerun)
        shown = f"{self.metric} {then} -> {now}"
        if _is_number(self.recorded) and _is_number(self.rerun):
            delta = self.rerun - self.recorded
            rel = f", {100 * delta / abs(self.recorded):+.3g}%" if self.recorded else ""
            shown += f" ({delta:+.4g}{rel}; tolerance {self.tolerance})"
        return shown


@dataclass
class RerunVerdict:
    """The outcome of rerunning one record; ``verdict`` is identical | within tolerance | different."""

    model: str
    seed: int
    verdict: str
    record_path: str
    rerun_dir: str | None  # None once the scratch folder is removed
    differences: list[MetricDiff]  # every compared quantity not equal bit for bit
    compared: list[str]  # metric keys compared
    excluded: list[str]  # speed metrics of the record left out (timing noise)
    not_in_record: list[str]  # metrics the rerun has and the record does not (new code): not judged
    revision: RevisionCheck
    notes: list[str] = field(default_factory=list)  # where the rebuilt spec differs from today's suite, ...
    rerun_error: str | None = None

    @property
    def reproduced(self) -> bool:
        return self.verdict in REPRODUCED

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["revision"]["warning"] = self.revision.warning
        return json_safe(out)


@dataclass(frozen=True)
class Rerun:
    """A record and the spec rebuilt from it."""

    path: Path
    record: RunRecord
    spec: RunSpec
    notes: tuple[str, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "null" if value is None else str(value)


def _bitwise_equal(a: Any, b: Any) -> bool:
    """Same type and, for floats, the same bits (``0.0`` and ``-0.0`` differ)."""
    if type(a) is not type(b):
        return False
    return a.hex() == b.hex() if isinstance(a, float) else a == b


# -- choosing records ---------------------------------------------------------------

def load_records(results_dir: str | os.PathLike, models: Sequence[str] | None = None,
                 seeds: Sequence[int] | None = None) -> list[tuple[Path, RunRecord]]:
    """The records ``RESULTS_DIR/MODEL/seedK/run.json`` of one suite folder, filtered; :class:`InputError` if unusable.

    A results root (``results/``, holding suite folders) is refused with the form to use:
    a reproduction names what it reruns.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"results folder {root} does not exist; give one suite's folder, e.g. results/mnist-small")
    paths = sorted(root.glob(f"*/seed*/{RUN_FILE}"))
    if not paths:
        suites = sorted({p.parents[2].name for p in root.glob(f"*/*/seed*/{RUN_FILE}")})
        if suites:
            raise InputError(f"{root} is a results root holding suite folders ({', '.join(suites)}); give one "
                             f"suite's folder, e.g. {root / suites[0]}")
        raise InputError(f"no run records (MODEL/seedK/run.json) under {root}; give one suite's folder, "
                         f"e.g. results/mnist-small")
    chosen: list[tuple[Path, RunRecord]] = []
    for path in paths:
        try:
            chosen.append((path, read_run_record(path)))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable run record {path}: {exc}") from None
    validate_records([rec for _, rec in chosen], root)
    suites = sorted({(rec.suite_name, rec.suite["version"]) for _, rec in chosen})
    if len(suites) != 1:
        raise InputError(f"{root} mixes suites/versions {', '.join(f'{n} v{v}' for n, v in suites)}; "
                         f"give one suite's folder")
    if models:
        have = sorted({rec.model_name for _, rec in chosen})
        unknown = [m for m in dict.fromkeys(models) if m not in have]
        if unknown:
            raise InputError(f"--models: no run of {', '.join(map(repr, unknown))} in {root}; "
                             f"models there: {', '.join(have)}")
        chosen = [(p, rec) for p, rec in chosen if rec.model_name in models]
    if seeds is not None:
        have_seeds = sorted({rec.seed for _, rec in chosen})
        unknown_seeds = [s for s in dict.fromkeys(seeds) if s not in have_seeds]
        if unknown_seeds:
            raise InputError(f"--seeds: no run with seed {', '.join(map(str, unknown_seeds))} in {root}"
                             f"{' for the chosen models' if models else ''}; seeds there: "
                             f"{', '.join(map(str, have_seeds))}")
        chosen = [(p, rec) for p, rec in chosen if rec.seed in seeds]
    return chosen


# -- rebuilding a spec from a record ------------------------------------------------

def _record_suite(record: RunRecord, suite: str | Suite | None) -> Suite:
    """The installed suite the record names (or ``suite``), refused unless its name and version match."""
    name, version = record.suite_name, record.suite["version"]
    if isinstance(suite, Suite):
        found = suite
    elif suite is not None:
        found = load_suite(suite)
    else:
        source = str(record.suite.get("source") or "")
        if source.endswith(".toml") and Path(source).is_file() and not source.startswith("genbench/suites/"):
            found = load_suite(source)
        else:
            try:
                found = load_suite(name)
            except ConfigError:
                raise ConfigError(f"suite {name!r} of the records is neither built in nor a file here (source "
                                  f"{source or 'not recorded'}); pass its file with --suite") from None
    if found.name != name:
        raise ConfigError(f"--suite {found.source} is suite {found.name!r}, the records are of suite {name!r}")
    if found.version != version:
        raise ConfigError(f"the records are of suite {name!r} version {version}, the installed suite "
                          f"({found.source}) is version {found.version}: results of another version are not "
                          f"reproduced; check out a revision with version {version}")
    return found


def _generator(record: RunRecord, extra: dict[str, type[Generator]]) -> type[Generator]:
    name = record.model_name
    if name in extra:
        return extra[name]
    try:
        return get_generator(name)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; a run of your own class needs --model FILE.py:CLASS") from None


def rebuild_spec(record: RunRecord, *, out: str | os.PathLike, suite: str | Suite | None = None,
                 extra_models: dict[str, type[Generator]] | None = None,
                 data_root: str | os.PathLike | None = None) -> tuple[RunSpec, list[str]]:
    """The run spec a record describes, and notes where today's suite would have run it otherwise.

    Everything comes from the record: its config (all fields, not the suite's settings, so an
    edited config is rerun as edited), seed, budget asked, evaluation settings, torch
    threads and device. :class:`ConfigError` (one line) when it cannot be rerun here.
    """
    where = f"run record of {record.model_name} seed {record.seed}"
    suite_obj = _record_suite(record, suite)
    cls = _generator(record, extra_models or {})
    notes: list[str] = []
    recorded_class = record.model.get("class")
    current_class = f"{cls.__module__}.{cls.__qualname__}"
    if recorded_class and recorded_class != current_class and cls.name not in (extra_models or {}):
        notes.append(f"the record's class {recorded_class} is now {current_class}")
    config_values = record.model.get("config")
    if not isinstance(config_values, dict):
        raise ConfigError(f"{where}: model.config is not a table; it cannot be rerun")
    try:
        config = make_config(cls, config_values, text=False)
        validate_config(cls, config, train_size=SPLIT_SIZES["train"])
    except ConfigError as exc:
        raise ConfigError(f"{where}: its config no longer builds: {exc}") from None
    asked = record.budget.get("asked")
    try:
        budget = Budget.from_dict(asked if isinstance(asked, dict) else {})
    except ConfigError as exc:
        raise ConfigError(f"{where}: budget.asked: {exc}") from None
    device = str(record.device or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{where} ran on {device}; torch sees no CUDA device here, and a CPU rerun does not "
                          f"give CUDA's numbers: reproduce it on a machine with a GPU")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"{where}: unknown device {device!r}")
    threads = record.executor.get("torch_threads")
    if not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        threads = torch.get_num_threads()
        notes.append(f"the record does not state its torch threads; rerun with {threads} (this process's)")
    dataset = record.dataset or suite_obj.dataset
    if dataset not in dataset_names():
        raise ConfigError(f"{where}: unknown dataset {dataset!r}; valid: {', '.join(dataset_names())}")
    try:
        eval_settings = _recorded_eval(record.eval) if record.eval else suite_obj.eval
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{where}: eval: {exc}") from None
    notes += _drift_notes(record, suite_obj, cls, config, budget, eval_settings, dataset)
    notes += _environment_notes(record, device)
    rerun_suite = dataclasses.replace(suite_obj, dataset=dataset, eval=eval_settings)
    options = RunOptions(data_root=data_root, out=out, checkpoint_every_seconds=None).for_run(device, threads)
    spec = RunSpec(rerun_suite, cls, record.seed, budget, dataclasses.asdict(config), options)
    run_dir_for(spec.out, rerun_suite.name, spec.model, spec.seed)  # refuses names leading outside the scratch
    return spec, notes


def _recorded_eval(recorded: dict) -> EvalConfig:
    """The evaluation settings a record's ``eval`` states: a suite's ``[eval]`` keys, nothing else."""
    unknown = sorted(set(recorded) - set(SUITE_EVAL_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(SUITE_EVAL_KEYS)}")
    return EvalConfig(**recorded)


def _environment_notes(record: RunRecord, device: str) -> list[str]:
    """Where this machine or torch differs from the record's: then bit-identical numbers are not expected."""
    notes = []
    here = machine_info()
    was = record.machine.get("gpu" if device.startswith("cuda") else "processor")
    now = here.get("gpu" if device.startswith("cuda") else "processor")
    if was and now and was != now:
        notes.append(f"recorded on {was}, rerun on {now}: numerical kernels differ between processors, so "
                     f"expect 'within tolerance' rather than 'identical'")
    if record.torch_version and record.torch_version != torch.__version__:
        notes.append(f"recorded with torch {record.torch_version}, rerun with {torch.__version__}: expect "
                     f"'within tolerance' rather than 'identical'")
    return notes


def _drift_notes(record: RunRecord, suite: Suite, cls: type[Generator], config: Any, budget: Budget,
                 eval_settings: EvalConfig, dataset: str) -> list[str]:
    """Where the installed suite (same name and version) would now run this model otherwise than the record did."""
    notes = []
    entry = suite.model(cls.name)
    if entry is None:
        notes.append(f"{cls.name} is no longer a model of suite {suite.name!r}")
        return notes
    if entry.budget != budget:
        notes.append(f"the suite now asks budget {entry.budget.to_dict()}, the record {budget.to_dict()}")
    try:
        today = dataclasses.asdict(make_config(cls, {**(cls.tiny_config if entry.tiny else {}), **entry.settings},
                                               text=False))
    except ConfigError:
        today = None
    recorded = dataclasses.asdict(config)
    if today is not None and today != recorded:
        changed = [f"{k} {today.get(k)!r} (record: {recorded.get(k)!r})" for k in sorted(set(today) | set(recorded))
                   if today.get(k) != recorded.get(k)]
        notes.append(f"the suite's settings now give {', '.join(changed)}")
    if eval_settings != suite.eval:
        notes.append(f"the suite now evaluates with {suite.eval.suite_settings()}, the record with "
                     f"{eval_settings.suite_settings()}")
    if dataset != suite.dataset:
        notes.append(f"the suite now trains on {suite.dataset}, the record on {dataset}")
    return notes


# -- comparing two records ----------------------------------------------------------

def compare_records(recorded: RunRecord, rerun: RunRecord, tolerances: dict[str, Tolerance] | None = None,
                    seed_values: Mapping[str, Sequence[float]] | None = None,
                    ) -> tuple[str, list[MetricDiff], list[str], list[str], list[str]]:
    """Verdict, differences, compared keys, excluded keys and rerun-only keys of two records of one spec.

    Each metric of ``recorded`` is judged by its kind (:mod:`genbench.verify.tolerance`), in either
    direction (a rerun that scores better than its record is not a reproduction either):
    inside the kind's floor around the record it is ``within tolerance``; outside it but inside
    the prediction interval of ``seed_values`` (the committed seeds of this model, two or more)
    it is ``consistent``; otherwise ``different``. Work counts, flags and the status must be
    equal. Uncertainty estimates and wall-clock speed are excluded (reported, not judged).
    """
    diffs: list[MetricDiff] = []
    if recorded.status != rerun.status:
        diffs.append(MetricDiff("status", recorded.status, rerun.status, "exact", DIFFERENT))
    done_then, done_now = recorded.budget.get("achieved") or {}, rerun.budget.get("achieved") or {}
    for key in WORK_KEYS:
        if done_then.get(key) != done_now.get(key):
            diffs.append(MetricDiff(f"budget.achieved.{key}", done_then.get(key), done_now.get(key), "exact",
                                    DIFFERENT))
    specs = metric_specs()
    compared, excluded = [], []
    for metric, then in recorded.metrics.items():
        spec = specs.get(metric)
        if not is_judged(metric, tolerances) and not (spec is not None and spec.kind == "info"):
            excluded.append(metric)
            continue
        compared.append(metric)
        now = rerun.metrics.get(metric)
        if _bitwise_equal(then, now):
            continue
        if not (_is_number(then) and _is_number(now)) or (spec is not None and spec.kind == "info"):
            diffs.append(MetricDiff(metric, then, now, "exact", DIFFERENT))  # null on one side, a flag that flipped
            continue
        own = band(metric, [then], tolerances=tolerances)
        if own.exact:
            diffs.append(MetricDiff(metric, then, now, "exact", DIFFERENT))
            continue
        if own.judge(metric, now) == Verdict.HELD:
            diffs.append(MetricDiff(metric, then, now, own.rule, WITHIN, own.half_width))
            continue
        values = list((seed_values or {}).get(metric) or [])
        if len(values) >= 2 and not (tolerances and metric in tolerances):
            seeds = band(metric, values)
            verdict = CONSISTENT if seeds.judge(metric, now) == Verdict.HELD else DIFFERENT
            diffs.append(MetricDiff(metric, then, now, f"{seeds.rule}: {_fmt(seeds.center - seeds.half_width)}.."
                                    f"{_fmt(seeds.center + seeds.half_width)}", verdict, own.half_width,
                                    seeds=len(values), seeds_mean=seeds.center, seeds_sd=_sd(values),
                                    interval=(seeds.center - seeds.half_width, seeds.center + seeds.half_width)))
        else:
            diffs.append(MetricDiff(metric, then, now, own.rule, DIFFERENT, own.half_width))
    not_in_record = sorted(set(rerun.metrics) - set(recorded.metrics))
    found = {d.verdict for d in diffs}
    verdict = next((v for v in (DIFFERENT, CONSISTENT, WITHIN) if v in found), IDENTICAL)
    return verdict, diffs, compared, excluded, not_in_record


def _sd(values: Sequence[float]) -> float:
    import statistics

    return statistics.stdev(values)


def seed_values_by_model(records: Sequence[RunRecord]) -> dict[str, dict[str, list[float]]]:
    """Per model, every metric's values over its ok seeds: the committed spread a rerun is judged against."""
    return {name: summary.values for name, summary in aggregate(list(records)).items()}


# -- the whole reproduction ---------------------------------------------------------

def plan_reruns(results_dir: str | os.PathLike, *, out: str | os.PathLike, models: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None, suite: str | Suite | None = None,
                extra_models: Sequence[type[Generator]] = (), data_root: str | os.PathLike | None = None
                ) -> list[Rerun]:
    """Every chosen record with its rebuilt spec; refuses (one line) before anything trains."""
    extra = {cls.name: cls for cls in extra_models}
    reruns = []
    for path, record in load_records(results_dir, models, seeds):
        spec, notes = rebuild_spec(record, out=out, suite=suite, extra_models=extra, data_root=data_root)
        if (spec.run_dir / RUN_FILE).exists() or (spec.run_dir / CHECKPOINT_NAME).exists():
            raise ConfigError(f"{spec.run_dir} already holds a run; give --keep an empty folder (a rerun never "
                              f"continues or replaces another run)")
        reruns.append(Rerun(path, record, spec, tuple(notes)))
    return reruns


def reproduce_runs(
    results_dir: str | os.PathLike,
    *,
    models: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    tolerances: str | dict[str, Tolerance] | None = None,
    out: str | os.PathLike | None = None,
    suite: str | Suite | None = None,
    extra_models: Sequence[type[Generator]] = (),
    data_root: str | os.PathLike | None = None,
    evaluator: Evaluator | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> list[RerunVerdict]:
    """Rerun the chosen records of the suite folder ``results_dir`` with the current code; a
    `RerunVerdict` each, judged as `compare_records` says (identical, within tolerance,
    consistent with the folder's committed seeds, or different).

    ``out``: where the reruns go (``OUT/SUITE/MODEL/seedK``), kept; by default a temporary
    folder, removed afterwards. ``tolerances``: ``--tol`` text or parsed tolerances.
    ``suite``: the suite (name, file or `Suite`) when the records' own source is not
    found here. Raises `GenbenchError` (one line) for unusable input, before anything trains.
    """
    tols = validate_tolerances(parse_tolerances(tolerances) if isinstance(tolerances, str) else tolerances)
    console = console or Console(stderr=True)
    scratch = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="genbench-reproduce-"))
    try:
        reruns = plan_reruns(results_dir, out=scratch, models=models, seeds=seeds, suite=suite,
                             extra_models=extra_models, data_root=data_root)
        committed = seed_values_by_model([rec for _, rec in load_records(results_dir, models)])
        for dataset in sorted({r.spec.suite.dataset for r in reruns}):
            load_split(dataset, "train", data_root)  # fail fast, before any training, if data is missing
        revisions: dict[tuple, RevisionCheck] = {}
        verdicts = []
        with ProgressBoard(console, [r.spec.key for r in reruns], enabled=show_progress) as board:
            for rerun in reruns:
                spec = rerun.spec
                execute_run(spec, executor="local", evaluator=evaluator,
                            progress=lambda fraction, info, key=spec.key: board.update(key, fraction, info))
                again = read_run_record(spec.run_dir / RUN_FILE)  # compared as written, like the record
                verdict, diffs, compared, excluded, extra = compare_records(rerun.record, again, tols,
                                                                            committed.get(spec.model))
                board.finish(spec.key, verdict)
                key = (rerun.record.git_hash, spec.generator.__module__, spec.suite.source)
                if key not in revisions:
                    revisions[key] = _revision(rerun.record, spec)
                verdicts.append(RerunVerdict(
                    spec.model, spec.seed, verdict, str(rerun.path), str(spec.run_dir) if out is not None else None,
                    diffs, compared, excluded, extra, revisions[key], list(rerun.notes),
                    again.error if again.status != "ok" else None,
                ))
        return verdicts
    finally:
        if out is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _revision(record: RunRecord, spec: RunSpec) -> RevisionCheck:
    """Whether the files this rerun used changed since the record's revision (built-in suites are in genbench/)."""
    recorded_module = str(record.model.get("class") or "").rpartition(".")[0]
    modules = list(dict.fromkeys(m for m in (spec.generator.__module__, recorded_module) if m))
    suite_file = spec.suite.source if not spec.suite.source.startswith("genbench/suites/") else None
    paths, notes = used_paths(modules, suite_file)
    return revision_check(record.git_hash, paths, notes)


def verdicts_json(verdicts: list[RerunVerdict], results_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``--json`` document: counts by verdict and every run's verdict with its differences."""
    return json_safe({
        "results_dir": str(results_dir),
        "reproduced": sum(v.reproduced for v in verdicts),
        "counts": {name: sum(v.verdict == name for v in verdicts)
                   for name in (IDENTICAL, WITHIN, CONSISTENT, DIFFERENT)},
        "prediction_interval": {"alpha": ALPHA, "rule": "mean ± t(1 - alpha/2, n - 1) · sd · sqrt(1 + 1/n) over the "
                                                        "committed ok seeds of the model, widened to the kind's floor"},
        "runs": [v.to_json() for v in verdicts],
    })


__all__ = ["CONSISTENT", "DIFFERENT", "IDENTICAL", "REPRODUCED", "WITHIN", "MetricDiff", "RerunVerdict",
           "compare_records", "load_records", "plan_reruns", "rebuild_spec", "reproduce_runs", "verdicts_json"]
