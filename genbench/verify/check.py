"""Regression checks: compare a results folder with a saved baseline, metric by metric.

Each metric's direction and default tolerance come from the metric registry. Work
counts (parameters, FLOPs per training image) are deterministic and compared
exactly: any difference is ``work changed``, which fails the check like a
regression. Wall-clock speed figures (the registry's ``speed`` group) do not gate
by default: one run's timings on a shared machine are noise, and speed is gated
by ``genbench speed --against REV`` instead, which measures both revisions
interleaved. Give a speed figure a tolerance with ``--tol`` to gate it anyway; it
is then compared on its calibration-normalised figure where there is one. A
missing model or metric is unusable input (exit 2), never silently skipped.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genbench.errors import InputError
from genbench.files.atomic import atomic_write_json
from genbench.kv import split_items, split_pair
from genbench.metrics import metric_specs
from genbench.report.aggregate import aggregate
from genbench.results import (
    STATUSES,
    RunRecord,
    collect_runs,
    json_safe,
    machine_info,
    utc_now,
)
from genbench.validation import (
    expect_int,
    expect_number,
    expect_plain_name,
    expect_table,
    is_int,
    is_plain_name,
)
from genbench.verify.verdict import Verdict

BASELINE_SCHEMA = 1
FALLBACK_TOL = 0.10
# Raw speed figures are compared through their machine-normalised versions.
NORMALISED = {"train_images_per_s": "train_images_per_s_norm", "sample_images_per_s": "sample_images_per_s_norm"}
_SKIP = {"train_flops_per_s"} | set(NORMALISED)  # machine-dependent; covered by flops_utilization / *_norm
WORK_COUNTS = ("num_parameters", "train_flops_per_image")  # deterministic: compared exactly


@dataclass(frozen=True)
class Tolerance:
    value: float
    relative: bool

    def allowed(self, base: float) -> float:
        return self.value * abs(base) if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"±{self.value:g}"


def parse_tolerances(text: str | None) -> dict[str, Tolerance]:
    """``"fid=10%,kid=0.001"`` -> relative 10% for fid, absolute 0.001 for kid."""
    out: dict[str, Tolerance] = {}
    for part in split_items(text):
        key, value = split_pair(part) or ("", "")
        try:
            tol = Tolerance(float(value[:-1]) / 100, True) if value.endswith("%") else Tolerance(float(value), False)
        except ValueError:
            tol = None
        if not key or tol is None or tol.value < 0 or not math.isfinite(tol.value):
            raise InputError(f"--tol expects METRIC=N% or METRIC=N (absolute), got {part!r}")
        out[NORMALISED.get(key, key)] = tol
    return out


def validate_tolerances(tolerances: Mapping[str, Tolerance] | None) -> dict[str, Tolerance]:
    """``tolerances`` as a dict; :class:`InputError` naming the valid keys if one is not a registered metric."""
    specs = metric_specs()
    unknown = sorted(set(tolerances or {}) - set(specs))
    if unknown:
        raise InputError(f"--tol: unknown metric(s) {', '.join(unknown)}; valid: {', '.join(sorted(specs))}")
    return dict(tolerances or {})


def is_gated(metric: str, tolerances: Mapping[str, Tolerance] | None = None) -> bool:
    """Whether ``metric`` is compared: a wall-clock speed figure (the registry's ``speed`` group) only
    when ``tolerances`` names it, every other metric always (module docstring)."""
    spec = metric_specs().get(metric)
    return not (spec is not None and spec.group == "speed" and metric not in (tolerances or {}))


def tolerance_for(metric: str, tolerances: Mapping[str, Tolerance] | None = None) -> Tolerance:
    """``--tol``'s tolerance for ``metric``, else the registry's relative default, else :data:`FALLBACK_TOL`."""
    if tolerances and metric in tolerances:
        return tolerances[metric]
    spec = metric_specs().get(metric)
    return Tolerance(spec.default_tol if spec and spec.default_tol is not None else FALLBACK_TOL, True)


def judge(metric: str, base_value: float, value: float, tol: Tolerance) -> str:
    """``value`` against ``base_value`` in the metric's direction: ``held`` (within ``tol``), ``improved``,
    ``regressed``, or for the work counts (exact) ``held`` / ``work changed``."""
    if metric in WORK_COUNTS:
        return Verdict.HELD if value == base_value else Verdict.WORK_CHANGED
    spec = metric_specs().get(metric)
    delta = value - base_value
    better = delta if (spec is None or spec.higher_is_better) else -delta
    allowed = tol.allowed(base_value)
    return Verdict.REGRESSED if better < -allowed else Verdict.IMPROVED if better > allowed else Verdict.HELD


def summarise(records: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per model: mean of every directional metric over ok seeds, and status counts.

    The means are those of the leaderboard: both come from :func:`genbench.report.aggregate.aggregate`.
    Directional metrics and the work counts are kept.
    """
    metrics = metric_specs()
    out = {}
    for name, summary in aggregate(records).items():
        keys = [k for k in sorted(summary.values)
                if k not in _SKIP and (k in WORK_COUNTS or (k in metrics and metrics[k].higher_is_better is not None))]
        out[name] = {"metrics": {k: summary.mean(k) for k in keys}, "status": dict(summary.status)}
    return out


def _load_results(results_dir: str | os.PathLike) -> tuple[str, list[RunRecord]]:
    path = Path(results_dir)
    if not path.is_dir():
        raise InputError(f"results folder {path} does not exist")
    records, problems = collect_runs(path)
    if problems:
        raise InputError(f"unreadable run record(s): {'; '.join(problems)}")
    if not records:
        raise InputError(f"no run records (*/seed*/run.json) under {path}")
    validate_records(records, path)
    suites = sorted({r.suite_name for r in records})
    if len(suites) != 1:
        raise InputError(f"{path} mixes suites {', '.join(suites)}; point at one suite's folder")
    versions = sorted({r.suite["version"] for r in records})
    if len(versions) != 1:
        raise InputError(f"{path} mixes versions {', '.join(map(str, versions))} of suite {suites[0]!r}; "
                         f"results of different versions are not comparable")
    return suites[0], records


def validate_records(records: list[RunRecord], where: str | os.PathLike) -> None:
    """Raise :class:`InputError` unless every record's names, seed and suite version are usable.

    :meth:`RunRecord.from_json` has checked the rest (status, sections, metric types).
    """
    for rec in records:
        what = f"run record of {rec.model_name if is_plain_name(rec.model_name) else '?'} seed {rec.seed} in {where}"
        expect_plain_name(rec.model_name, f"{what}: `model.name`", error=InputError)
        expect_int(rec.seed, f"{what}: `seed`", minimum=0, error=InputError)
        expect_plain_name(rec.suite_name, f"{what}: `suite.name`", error=InputError)
        expect_int(rec.suite.get("version"), f"{what}: `suite.version`", minimum=1, error=InputError)


def save_baseline(results_dir: str | os.PathLike, path: str | os.PathLike) -> dict[str, Any]:
    suite, records = _load_results(results_dir)
    baseline = {
        "schema_version": BASELINE_SCHEMA,
        "suite": suite,
        "suite_version": records[0].suite["version"],
        "created": utc_now(),
        "source": str(results_dir),
        "machine": records[0].machine or machine_info(),
        "models": summarise(records),
    }
    baseline = json_safe(baseline)
    validate_baseline(baseline, path)  # refuse to write what `check` would refuse to read
    atomic_write_json(path, baseline)
    return baseline


def load_baseline(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            baseline = json.load(f)
    except OSError as exc:
        raise InputError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"baseline {path} is not valid JSON: {exc}") from None
    validate_baseline(baseline, path)
    return baseline


def validate_baseline(baseline: Any, path: str | os.PathLike) -> None:
    """Raise :class:`InputError` unless ``baseline`` is complete: schema, suite and version,
    at least one model and one metric, registered metrics with finite values, status counts."""
    known = metric_specs()
    schema = baseline.get("schema_version") if isinstance(baseline, dict) else None
    if not (is_int(schema) and schema == BASELINE_SCHEMA):
        raise InputError(
            f"{path} is not a genbench baseline (schema {BASELINE_SCHEMA}); make one with `genbench baseline save`")
    where = f"baseline {path}"
    for key in ("suite", "suite_version", "models"):
        if key not in baseline:
            raise InputError(f"{where} has no `{key}`")
    expect_plain_name(baseline["suite"], f"{where}: `suite`", error=InputError)
    expect_int(baseline["suite_version"], f"{where}: `suite_version`", minimum=1, error=InputError)
    models = expect_table(baseline["models"], f"{where}: `models`", error=InputError)
    if not models:
        raise InputError(f"{where} lists no models: there is nothing to check against")
    n_metrics = 0
    for name, entry in models.items():
        expect_plain_name(name, f"{where}: model name", error=InputError)
        expect_table(entry, f"{where}: models.{name}", error=InputError)
        for key in ("metrics", "status"):
            if key not in entry:
                raise InputError(f"{where}: models.{name} has no `{key}`")
        status = expect_table(entry["status"], f"{where}: models.{name}.status", error=InputError)
        for key, count in status.items():
            if key not in STATUSES:
                raise InputError(f"{where}: models.{name}.status: unknown status {key!r}; valid: {', '.join(STATUSES)}")
            expect_int(count, f"{where}: models.{name}.status.{key}", minimum=0, error=InputError)
        metrics = expect_table(entry["metrics"], f"{where}: models.{name}.metrics", error=InputError)
        for key, value in metrics.items():
            if key not in known:
                raise InputError(f"{where}: models.{name}.metrics: unknown metric {key!r}")
            expect_number(value, f"{where}: models.{name}.metrics.{key}", error=InputError)
        n_metrics += len(metrics)
    if not n_metrics:
        raise InputError(f"{where} holds no metric value: there is nothing to check against")


@dataclass
class Comparison:
    model: str
    metric: str
    baseline: float | None
    value: float | None
    tolerance: str
    verdict: str  # regressed | improved | held | missing | work changed


def compare(
    results_dir: str | os.PathLike, baseline_path: str | os.PathLike, tolerances: dict[str, Tolerance] | None = None
) -> tuple[list[Comparison], list[str]]:
    """Compare every (model, metric) of the baseline; returns comparisons and unusable-input problems."""
    baseline = load_baseline(baseline_path)
    suite, records = _load_results(results_dir)
    if baseline["suite"] != suite:
        raise InputError(f"baseline is for suite {baseline['suite']!r}, results are for {suite!r}")
    version = records[0].suite["version"]
    if baseline["suite_version"] != version:
        raise InputError(f"baseline is for suite {suite!r} version {baseline['suite_version']}, the results are "
                         f"version {version}; save a baseline from results of this version")
    current = summarise(records)
    tolerances = validate_tolerances(tolerances)
    out: list[Comparison] = []
    problems: list[str] = []
    for model, base in sorted(baseline["models"].items()):
        if model not in current:
            problems.append(f"model {model!r} is in the baseline but has no run in {results_dir}")
            continue
        now = current[model]
        base_ok, now_ok = base["status"].get("ok", 0), now["status"].get("ok", 0)
        if now_ok < base_ok:
            out.append(Comparison(model, "status_ok", base_ok, now_ok, "0", Verdict.REGRESSED))
        for metric, base_value in sorted(base["metrics"].items()):
            value = now["metrics"].get(metric)
            if not is_gated(metric, tolerances):
                continue  # not gated by default (module docstring)
            tol = tolerance_for(metric, tolerances)
            if value is None:
                if now_ok:
                    problems.append(f"metric {metric!r} of {model!r} is in the baseline but missing from the results")
                out.append(Comparison(model, metric, base_value, None, str(tol), Verdict.MISSING))
                continue
            out.append(Comparison(model, metric, base_value, value, "exact" if metric in WORK_COUNTS else str(tol),
                                  judge(metric, base_value, value, tol)))
    return out, problems


def comparisons_json(comparisons: list[Comparison], problems: list[str]) -> dict[str, Any]:
    return json_safe({
        "regressions": sum(c.verdict == Verdict.REGRESSED for c in comparisons),
        "work_changed": sum(c.verdict == Verdict.WORK_CHANGED for c in comparisons),
        "problems": problems,
        "comparisons": [asdict(c) for c in comparisons],
    })
