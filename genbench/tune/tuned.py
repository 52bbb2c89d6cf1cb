"""What a tune leaves: the best trial, the expected-best curve over trial counts, the tuned suite file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genbench.data.splits import FIT, VALIDATION, VALIDATION_SIZE
from genbench.files.atomic import atomic_write_bytes, atomic_write_text
from genbench.tune.plan import CURVE_FILE, PLOT_FILE, TRIALS_FILE, TunePlan

BOOTSTRAP_REPS = 1000  # resamples behind each point of the expected-best curve


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
    # Trials written before trials recorded their revision have none: say so rather than "None".
    revisions = sorted({r.get("git_hash") or "not recorded" for recs in results.values() for r in recs})
    lines.append(f"# Code revision(s) of the trials: {', '.join(revisions)}.")
    lines += ["", "[budget]", *(f"{k} = {_toml(v)}" for k, v in suite.default_budget.to_dict().items()
                                if v is not None)]
    ev = suite.eval.suite_settings()
    lines += ["", "[eval]", *(f"{k} = {_toml(v)}" for k, v in ev.items() if v is not None)]
    for task, best in chosen:
        entry = suite.entry_for(task.model)
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
