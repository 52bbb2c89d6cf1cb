"""Regression checks: compare a results folder with a saved baseline, metric by metric.

A baseline keeps, per model, each ok seed's value of every compared metric and what the
runs were made with (class, config, budget asked, dataset, evaluation settings, the
likelihood convention, the feature extractors). A metric's band comes from those values
and the metric's kind (:mod:`genbench.verify.tolerance`): the spread over seeds, never
narrower than the kind's floor. A value outside its band fails in *either* direction:
``regressed``, or ``improved`` beyond what unchanged code gives, which needs a reviewed
baseline refresh just like a regression (a leak that makes NLL better is a bug too). Work
counts (parameters, FLOPs per training image) are compared exactly (``work changed``).
Wall-clock speed figures do not gate unless ``--tol`` names them (``genbench speed``
gates speed); uncertainty estimates are reported, not gated. Results made otherwise than
the baseline (another budget, config or convention) are refused: no verdict compares
unlike runs. A missing model or metric is unusable input (exit 2), never skipped.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genbench.errors import InputError
from genbench.files.atomic import atomic_write_json
from genbench.kv import split_items, split_pair
from genbench.metrics import metric_specs
from genbench.registry import class_identity
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
from genbench.verdict import Verdict
from genbench.verify.tolerance import Band, Tolerance, band, is_judged

BASELINE_SCHEMA = 2  # 1: one mean per metric; 2: per-seed values and what the runs were made with
# Raw speed figures are compared through their machine-normalised versions.
NORMALISED = {"train_images_per_s": "train_images_per_s_norm", "sample_images_per_s": "sample_images_per_s_norm"}
_SKIP = {"train_flops_per_s"} | set(NORMALISED)  # machine-dependent; covered by flops_utilization / *_norm
MADE_WITH = ("class", "config", "budget", "dataset", "eval", "likelihood_is_bound", "extractor")


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


def made_with(record: RunRecord) -> dict[str, Any]:
    """What a run was made with, as a baseline records it: results made otherwise are not compared with it."""
    return json_safe({
        "class": class_identity(record.model.get("class")),
        "config": record.model.get("config"),
        "budget": record.budget.get("asked"),
        "dataset": record.dataset,
        "eval": record.eval or None,
        "likelihood_is_bound": record.model.get("likelihood_is_bound"),
        "extractor": record.extractor,
    })


def _compared_keys(values: Mapping[str, list[float]]) -> list[str]:
    specs = metric_specs()
    return [k for k in sorted(values) if k not in _SKIP and k in specs and specs[k].kind not in ("info",)
            and (specs[k].metric_kind.gated or specs[k].kind == "speed")]


def summarise(records: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per model: every ok seed's value of each compared metric (in seed order), the seeds, the
    status counts and what the runs were made with. The per-seed values are the leaderboard's:
    both come from :func:`genbench.report.aggregate.aggregate`."""
    out = {}
    for name, summary in aggregate(records).items():
        ok = sorted(r.seed for r in records if r.model_name == name and r.status == "ok")
        made = [made_with(r) for r in sorted(records, key=lambda r: r.seed) if r.model_name == name]
        out[name] = {
            "status": dict(summary.status),
            "seeds": ok,
            "made_with": made[0] if made else {},
            "metrics": {k: summary.values[k] for k in _compared_keys(summary.values)},
        }
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
    """Write a baseline from the records of one suite folder: per model, each ok seed's values and what
    the runs were made with. Several seeds give measured bands; one seed leaves only the kinds' floors."""
    suite, records = _load_results(results_dir)
    for name in sorted({r.model_name for r in records}):
        made = {json.dumps(made_with(r), sort_keys=True) for r in records if r.model_name == name}
        if len(made) > 1:
            raise InputError(f"{name}'s runs in {results_dir} were made with different settings (config, budget or "
                             f"evaluation); a baseline needs runs of one spec that differ only by seed")
    hashes = sorted({r.git_hash for r in records if r.git_hash})
    baseline = {
        "schema_version": BASELINE_SCHEMA,
        "suite": suite,
        "suite_version": records[0].suite["version"],
        "created": utc_now(),
        "source": str(results_dir),
        "git_hash": hashes[0] if len(hashes) == 1 else hashes or None,
        "machine": records[0].machine or machine_info(),
        "models": summarise(records),
    }
    baseline = json_safe(baseline)
    validate_baseline(baseline, path)  # refuse to write what `check` would refuse to read
    atomic_write_json(path, baseline)
    return baseline


def load_baseline(path: str | os.PathLike) -> dict[str, Any]:
    """A validated baseline; one of schema 1 (one mean per metric) is read as one seed of unknown spec."""
    try:
        with open(path, encoding="utf-8") as f:
            baseline = json.load(f)
    except OSError as exc:
        raise InputError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"baseline {path} is not valid JSON: {exc}") from None
    validate_baseline(baseline, path)
    if baseline["schema_version"] == 1:
        for entry in baseline["models"].values():
            entry["metrics"] = {k: [v] for k, v in entry["metrics"].items()}
            entry.setdefault("made_with", {})
    return baseline


def validate_baseline(baseline: Any, path: str | os.PathLike) -> None:
    """Raise :class:`InputError` unless ``baseline`` is complete: schema, suite and version, at least one
    model and one metric, registered metrics with finite values (one per seed), status counts."""
    known = metric_specs()
    schema = baseline.get("schema_version") if isinstance(baseline, dict) else None
    if not (is_int(schema) and schema in (1, BASELINE_SCHEMA)):
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
        if schema == BASELINE_SCHEMA:
            expect_table(entry.get("made_with"), f"{where}: models.{name}.made_with", error=InputError)
        status = expect_table(entry["status"], f"{where}: models.{name}.status", error=InputError)
        for key, count in status.items():
            if key not in STATUSES:
                raise InputError(f"{where}: models.{name}.status: unknown status {key!r}; valid: {', '.join(STATUSES)}")
            expect_int(count, f"{where}: models.{name}.status.{key}", minimum=0, error=InputError)
        metrics = expect_table(entry["metrics"], f"{where}: models.{name}.metrics", error=InputError)
        for key, value in metrics.items():
            if key not in known:
                raise InputError(f"{where}: models.{name}.metrics: unknown metric {key!r}")
            values = [value] if schema == 1 else value
            if schema != 1 and not (isinstance(values, list) and values):
                raise InputError(f"{where}: models.{name}.metrics.{key} must be a list of one value per seed")
            for v in values:
                expect_number(v, f"{where}: models.{name}.metrics.{key}", error=InputError)
        n_metrics += len(metrics)
    if not n_metrics:
        raise InputError(f"{where} holds no metric value: there is nothing to check against")


@dataclass
class Comparison:
    model: str
    metric: str
    baseline: float | None  # the band's centre: the mean of the baseline's seeds
    value: float | None
    tolerance: str  # the band's half width, and where it came from
    verdict: str  # regressed | improved | held | missing | work changed
    kind: str = ""  # the metric's kind (genbench.metrics.spec.METRIC_KINDS)
    seeds: int = 1  # baseline seeds behind the band
    low: float | None = None
    high: float | None = None


def _tolerance_text(b: Band) -> str:
    if b.exact:
        return "exact"
    return f"±{b.half_width:.3g} ({b.rule})"


def _check_made_with(model: str, base: Mapping[str, Any], records: list[RunRecord]) -> None:
    """Refuse (one line) results of ``model`` made otherwise than the baseline's runs."""
    if not base:
        return  # a schema-1 baseline does not say
    for rec in records:
        now = made_with(rec)
        for key in MADE_WITH:
            # Baselines saved before class_identity existed hold the plug-in module's full name.
            wanted = class_identity(base[key]) if key == "class" and key in base else base.get(key)
            if key in base and now.get(key) != wanted:
                detail = ""
                if isinstance(base[key], dict) and isinstance(now.get(key), dict):
                    diff = sorted(k for k in set(base[key]) | set(now[key]) if base[key].get(k) != now[key].get(k))
                    detail = ": " + ", ".join(f"{k} {base[key].get(k)!r} -> {now[key].get(k)!r}" for k in diff[:3])
                else:
                    detail = f": {base[key]!r} -> {now.get(key)!r}"
                raise InputError(f"{model} seed {rec.seed} was made with another {key} than the baseline{detail}; "
                                 f"rerun it as the baseline was made, or refresh the baseline on purpose "
                                 f"(genbench baseline save)")


def compare(
    results_dir: str | os.PathLike, baseline_path: str | os.PathLike, tolerances: dict[str, Tolerance] | None = None,
    models: Sequence[str] | None = None,
) -> tuple[list[Comparison], list[str]]:
    """Compare every (model, metric) of the baseline (or of ``models``); returns comparisons and unusable-input
    problems. Raises :class:`InputError` for results made otherwise than the baseline."""
    baseline = load_baseline(baseline_path)
    suite, records = _load_results(results_dir)
    if baseline["suite"] != suite:
        raise InputError(f"baseline is for suite {baseline['suite']!r}, results are for {suite!r}")
    version = records[0].suite["version"]
    if baseline["suite_version"] != version:
        raise InputError(f"baseline is for suite {suite!r} version {baseline['suite_version']}, the results are "
                         f"version {version}; save a baseline from results of this version")
    chosen = dict(sorted(baseline["models"].items()))
    if models:
        unknown = [m for m in dict.fromkeys(models) if m not in chosen]
        if unknown:
            raise InputError(f"--models: {', '.join(map(repr, unknown))} not in the baseline; its models: "
                             f"{', '.join(chosen)}")
        chosen = {m: chosen[m] for m in dict.fromkeys(models)}
    current = summarise(records)
    tolerances = validate_tolerances(tolerances)
    out: list[Comparison] = []
    problems: list[str] = []
    specs = metric_specs()
    for model, base in chosen.items():
        if model not in current:
            problems.append(f"model {model!r} is in the baseline but has no run in {results_dir}")
            continue
        _check_made_with(model, base.get("made_with") or {}, [r for r in records if r.model_name == model])
        now = current[model]
        now_ok = now["status"].get("ok", 0)
        if sum(now["status"].values()) > now_ok:  # a seed that is not ok is a regression whatever the baseline
            out.append(Comparison(model, "status_ok", sum(now["status"].values()), now_ok, "0", Verdict.REGRESSED,
                                  "count"))
        for metric, base_values in sorted(base["metrics"].items()):
            if not is_judged(metric, tolerances):
                continue  # not gated (module docstring)
            kind = specs[metric].kind
            values = now["metrics"].get(metric)
            b = band(metric, base_values, new_runs=max(1, len(values or [])), tolerances=tolerances)
            if not values:
                if now_ok:
                    problems.append(f"metric {metric!r} of {model!r} is in the baseline but missing from the results")
                out.append(Comparison(model, metric, b.center, None, _tolerance_text(b), Verdict.MISSING, kind,
                                      b.n))
                continue
            value = sum(values) / len(values)
            out.append(Comparison(model, metric, b.center, value, _tolerance_text(b), b.judge(metric, value), kind,
                                  b.n, None if b.exact else b.center - b.half_width,
                                  None if b.exact else b.center + b.half_width))
    return out, problems


def comparisons_json(comparisons: list[Comparison], problems: list[str]) -> dict[str, Any]:
    return json_safe({
        "regressions": sum(c.verdict == Verdict.REGRESSED for c in comparisons),
        "improvements": sum(c.verdict == Verdict.IMPROVED for c in comparisons),
        "work_changed": sum(c.verdict == Verdict.WORK_CHANGED for c in comparisons),
        "failed_models": sorted({c.model for c in comparisons if c.verdict in CHECK_FAILING}),
        "problems": problems,
        "comparisons": [asdict(c) for c in comparisons],
    })


# What makes `genbench check` exit 1: an unexplained improvement needs a reviewed refresh as a regression does.
CHECK_FAILING = (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.WORK_CHANGED)
