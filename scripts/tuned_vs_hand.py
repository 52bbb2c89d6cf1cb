"""Does a hand-tuned ranking survive equal tuning effort? Hand-tuned and tuned runs side by side.

Usage (after `genbench tune` and `genbench run --suite .../SUITE-tuned.toml`):

    python scripts/tuned_vs_hand.py results/mnist-small results/mnist-small-tuned --metric fid

For every model both folders hold, prints a markdown table: its per-seed mean ± sample
std and rank among these models in each folder, and significance letters computed over
all of them at once (hand-tuned and tuned rows together, two rows per model), by the
leaderboard's own test (:func:`genbench.report.significance.compare_models`: Welch's
t-test per pair, Holm-adjusted over all pairs; two rows share a letter when their
difference is not significant). Then Kendall's τ-b between the two rankings of the means.
Only ``ok`` runs count, as in the leaderboard. ``--context`` adds the
hand-tuned folder's other (untuned) models as rows of the same test, to show where the
tuned models land on the whole leaderboard; ranks stay among the models both folders hold.

The tuned folder must hold runs of the hand-tuned folder's suite as `genbench tune` rewrote
it (name ``SUITE-tuned``, same version): the tuned suite file keeps its source suite's
budgets and evaluation, so only the settings differ.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, rankdata

from genbench.metrics import metric_specs
from genbench.report.significance import compare_models
from genbench.results import collect_runs

TUNED = " (tuned)"


def _values(folder: Path, metric: str) -> tuple[dict[str, np.ndarray], set[tuple[str, object]]]:
    """Per model, the metric of its ok runs; and the (suite, version) pairs the records name."""
    records, problems = collect_runs(folder)
    if problems:
        raise SystemExit(f"error: unreadable run records: {'; '.join(problems)}")
    out: dict[str, list[float]] = {}
    suites = set()
    for rec in records:
        suites.add((rec.suite_name, rec.suite.get("version")))
        value = rec.metrics.get(metric)
        if rec.status == "ok" and isinstance(value, (int, float)) and math.isfinite(value):
            out.setdefault(rec.model_name, []).append(float(value))
    return {m: np.asarray(v) for m, v in out.items()}, suites


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("hand", type=Path, help="results folder of the hand-tuned suite")
    p.add_argument("tuned", type=Path, help="results folder of the tuned suite")
    p.add_argument("--metric", default="fid", help="a registered metric both folders report (default: fid); "
                   "ranks and tests follow its direction")
    p.add_argument("--context", action="store_true",
                   help="also list the hand-tuned folder's untuned models, in the same significance test")
    a = p.parse_args()
    spec = metric_specs().get(a.metric)
    if spec is None or spec.higher_is_better is None:
        raise SystemExit(f"error: {a.metric!r} is not a metric with a direction; choose one of "
                         + ", ".join(k for k, v in sorted(metric_specs().items()) if v.higher_is_better is not None))
    sign = -1.0 if spec.higher_is_better else 1.0
    hand, hand_suites = _values(a.hand, a.metric)
    tuned, tuned_suites = _values(a.tuned, a.metric)
    if len(hand_suites) != 1 or {(n + "-tuned", v) for n, v in hand_suites} != tuned_suites:
        raise SystemExit(f"error: {a.tuned} must hold runs of the tuned suite of {a.hand}'s one suite at the same "
                         f"version; found {sorted(map(str, hand_suites))} and {sorted(map(str, tuned_suites))}")
    models = sorted(set(hand) & set(tuned))
    if not models:
        raise SystemExit(f"error: no model reports {a.metric} in both folders")
    others = sorted(set(hand) - set(tuned)) if a.context else []
    sig = compare_models({**{m: hand[m] for m in models + others}, **{m + TUNED: tuned[m] for m in models}},
                         a.metric, higher_is_better=spec.higher_is_better)
    means = np.array([[hand[m].mean(), tuned[m].mean()] for m in models])
    ranks = [rankdata(sign * means[:, k], method="min").astype(int) for k in (0, 1)]

    def mean_sd(v: np.ndarray) -> str:
        spread = f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else ""
        return f"{v.mean():.2f}{spread} (n={len(v)})"

    def cell(v: np.ndarray, rank: int, name: str) -> str:
        return f"{mean_sd(v)} | {rank} | {sig.letters.get(name) or '—'}"

    print(f"| model | hand-tuned {a.metric} | rank | group | tuned {a.metric} | rank | group | Holm p, hand vs tuned |")
    print("|---|---|---|---|---|---|---|---|")
    pair_p = {frozenset((t.a, t.b)): t.p_holm for t in sig.pairs}
    for i, m in sorted(enumerate(models), key=lambda im: (sign * means[im[0], 0], im[1])):
        p_ht = pair_p.get(frozenset((m, m + TUNED)))
        print(f"| {m} | {cell(hand[m], ranks[0][i], m)} | {cell(tuned[m], ranks[1][i], m + TUNED)} | "
              f"{'—' if p_ht is None else f'{p_ht:.2g}'} |")
    for m in sorted(others, key=lambda m: sign * hand[m].mean()):
        print(f"| {m} (not tuned) | {mean_sd(hand[m])} | — | {sig.letters.get(m) or '—'} | — | — | — | — |")
    print()
    print(f"Groups: {sig.method}, alpha {sig.alpha}, over all {len(sig.models)} rows at once; "
          "rows sharing a letter are not shown to differ.")
    if len(models) >= 2:
        # Each side alone over the same models: the test a leaderboard of just these models prints.
        for label, side in (("hand-tuned", hand), ("tuned", tuned)):
            alone = compare_models({m: side[m] for m in models}, a.metric, higher_is_better=spec.higher_is_better)
            shown = [f"{t.a} vs {t.b} (p {t.p_holm:.2g})" for t in alone.pairs if t.significant]
            print(f"{label} alone over these {len(models)} models: "
                  + ", ".join(f"{m} {alone.letters.get(m) or '—'}" for m in models)
                  + f"; pairs shown to differ, {len(shown)} of {len(alone.pairs)}: {', '.join(shown) or 'none'}.")
    if len(models) >= 3:
        tau = kendalltau(means[:, 0], means[:, 1])
        moved = [f"{m} {ranks[0][i]} → {ranks[1][i]}" for i, m in enumerate(models) if ranks[0][i] != ranks[1][i]]
        print(f"Kendall's τ-b between the hand-tuned and the tuned ranking of the means over {len(models)} "
              f"models: {tau.statistic:.2f}; " + ("rank moves: " + ", ".join(moved) if moved
                                                  else "no model changes rank") + ".")


if __name__ == "__main__":
    main()
