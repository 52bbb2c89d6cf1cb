"""Does a suite's ranking carry over to another dataset? Kendall's τ between two results folders.

Usage (after `genbench report` of both folders):

    python scripts/dataset_rank.py results/mnist-small results/fashion-small --metric fid

For the competitors both folders report, prints a markdown table (mean ± sample std,
rank and significance letters from each folder's ``leaderboard.json``) and Kendall's
τ-b (``scipy.stats.kendalltau``) between the two rankings of the means, with a 95%
bootstrap interval. Unlike the leaderboard's fid-against-fid_ssl τ, the two values of a
model here come from different runs, so nothing is paired: each replicate resamples
every model's ok seeds with replacement in each folder independently
(``numpy.random.default_rng(0)``, 1,000 replicates, so the interval is reproducible).
Only ``ok`` runs count, as in the leaderboard (capped, diverged and failed runs are
left out of means).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, rankdata

from genbench.results import collect_runs

REPS = 1000
LEVEL = 0.95


def _board(folder: Path) -> dict:
    path = folder / "leaderboard.json"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; run `genbench report {folder}` first")
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _values(folder: Path, models: set[str], metric: str) -> dict[str, np.ndarray]:
    """Per model, the metric of its ok runs (``MODEL/seedK/run.json``)."""
    records, problems = collect_runs(folder)
    if problems:
        raise SystemExit(f"error: unreadable run records: {'; '.join(problems)}")
    out: dict[str, list[float]] = {}
    for rec in records:
        value = rec.metrics.get(metric)
        if rec.model_name in models and rec.status == "ok" and isinstance(value, (int, float)) \
                and math.isfinite(value):
            out.setdefault(rec.model_name, []).append(float(value))
    return {m: np.asarray(v) for m, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--metric", default="fid", help="a lower-is-better metric both folders report (default: fid)")
    a = p.parse_args()
    boards = [_board(a.first), _board(a.second)]
    competitors = [{r["model"] for r in b["rows"] if r["role"] == "competitor"} for b in boards]
    values = [_values(f, c, a.metric) for f, c in zip((a.first, a.second), competitors, strict=True)]
    models = sorted(set(values[0]) & set(values[1]))
    if len(models) < 3:
        raise SystemExit(f"error: {len(models)} competitor(s) report {a.metric} in both folders; τ needs 3")
    means = np.array([[values[k][m].mean() for k in (0, 1)] for m in models])
    ranks = [rankdata(means[:, k], method="min").astype(int) for k in (0, 1)]
    letters = [b.get("significance", {}).get(a.metric, {}).get("letters", {}) for b in boards]
    names = [boards[0]["suite"], boards[1]["suite"]]

    def cell(k: int, m: str) -> str:
        v = values[k][m]
        spread = f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else ""
        return f"{v.mean():.2f}{spread} | {ranks[k][models.index(m)]} | {letters[k].get(m, '—')}"

    print(f"| model | {names[0]} {a.metric} | rank | group | {names[1]} {a.metric} | rank | group |")
    print("|---|---|---|---|---|---|---|")
    for m in sorted(models, key=lambda m: (means[models.index(m), 0], m)):
        print(f"| {m} | {cell(0, m)} | {cell(1, m)} |")

    tau = kendalltau(means[:, 0], means[:, 1])
    rng = np.random.default_rng(0)
    boot = np.empty(REPS)
    for r in range(REPS):
        resampled = np.array([[(v := values[k][m])[rng.integers(0, len(v), len(v))].mean() for k in (0, 1)]
                              for m in models])
        boot[r] = kendalltau(resampled[:, 0], resampled[:, 1]).statistic
    finite = boot[np.isfinite(boot)]
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    moved = [f"{m} {ranks[0][i]} → {ranks[1][i]}" for i, m in enumerate(models) if ranks[0][i] != ranks[1][i]]
    print()
    print(f"Kendall's τ-b of the {a.metric} rankings, {names[0]} against {names[1]}, over {len(models)} "
          f"competitors: {tau.statistic:.2f} (95% bootstrap interval over seeds {low:.2f} to {high:.2f}, "
          f"{REPS} replicates; p = {tau.pvalue:.2g} for the means); "
          + ("rank moves: " + ", ".join(moved) if moved else "no model changes rank") + ".")


if __name__ == "__main__":
    main()
