"""A `genbench tune` folder as markdown tables: each model's search, its best trial, its curve.

Usage:

    python scripts/tune_summary.py results/mnist-small-tune [--hand results/mnist-small-tune/hand]

For every model folder (``MODEL/trials.jsonl``, ``MODEL/expected_best.csv``, as
``genbench tune`` writes them) prints: the trials by status, the best trial's index,
validation score and values, the expected best validation score after k = 1, 2, 4, 8 and
K trials (with the 5-95% bootstrap band from ``expected_best.csv``), and the trials' summed
seconds. With ``--hand``, a second tune folder whose one trial per model ran a fixed
configuration under the same options (for instance a suite's hand-tuned settings as
one-point search spaces): its validation score and its rank among the K trials.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from genbench.tune.plan import CURVE_FILE, TRIALS_FILE, TrialsLog
from genbench.tune.tuned import best_trial

KS = (1, 2, 4, 8)


def _fmt(value: float) -> str:
    # Four significant digits below 10, not term.format_number's three: the bits/dim of vae's
    # trials differ in the third decimal, and three digits would print them as ties.
    return f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"


def _values(config: dict) -> str:
    return ", ".join(f"{k} {_fmt(v) if isinstance(v, float) else v}" for k, v in config.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a genbench tune --out folder")
    p.add_argument("--hand", type=Path, help="a tune folder with one trial per model of a fixed configuration")
    a = p.parse_args()
    models = sorted(d.name for d in a.folder.iterdir() if (d / TRIALS_FILE).is_file())
    if not models:
        raise SystemExit(f"error: no MODEL/{TRIALS_FILE} in {a.folder}")

    print("| model | metric | trials ok / failed / diverged | best trial: validation score | its values | "
          "trial seconds (sum) |")
    print("|---|---|---|---|---|---|")
    curves, records = {}, {}
    for m in models:
        recs = sorted(TrialsLog(a.folder / m / TRIALS_FILE).read(), key=lambda r: r["trial"])
        records[m] = recs
        best = best_trial(recs)
        counts = " / ".join(str(sum(r["status"] == s for r in recs)) for s in ("ok", "failed", "diverged"))
        shown = "—" if best is None else f"{best['trial']}: {best['score']:.4g}"
        values = "—" if best is None else _values(best["config"])
        print(f"| {m} | {recs[0]['metric']} | {counts} | {shown} | {values} | "
              f"{sum(r['seconds'] or 0 for r in recs):.0f} |")
        if not (a.folder / m / CURVE_FILE).is_file():
            raise SystemExit(f"error: no {a.folder / m / CURVE_FILE}: the tune of {m} has not finished")
        with (a.folder / m / CURVE_FILE).open(encoding="utf-8") as fh:
            curves[m] = {int(r["k"]): r for r in csv.DictReader(fh)}

    print()
    big_k = max(len(r) for r in records.values())
    ks = [k for k in KS if k < big_k] + [big_k]
    print("| model | " + " | ".join(f"expected best of {k}" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for m in models:
        cells = []
        for k in ks:
            row = curves[m].get(k)
            cells.append("—" if row is None else
                         f"{_fmt(float(row['mean']))} [{_fmt(float(row['low']))}, {_fmt(float(row['high']))}]")
        print(f"| {m} | " + " | ".join(cells) + " |")

    if a.hand is not None:
        meta = [json.loads((a.folder / m / "tune.json").read_text()) for m in models]
        hand_meta = [json.loads((a.hand / m / "tune.json").read_text()) for m in models if (a.hand / m).is_dir()]
        keys = ("budget", "metric", "seed", "threads", "fit_split", "validation_split")
        if any(h[k] != g[k] for h in hand_meta for g in meta if g["model"] == h["model"] for k in keys):
            raise SystemExit(f"error: {a.hand} was tuned with other options than {a.folder} ({', '.join(keys)})")
        print()
        print("| model | fixed configuration | its validation score | rank among the trials (1 = best) |")
        print("|---|---|---|---|")
        for m in models:
            path = a.hand / m / TRIALS_FILE
            if not path.is_file():
                continue
            (hand,) = TrialsLog(path).read()
            scores = sorted(r["score"] for r in records[m] if r["score"] is not None)
            if hand["score"] is None:
                print(f"| {m} | {_values(hand['config'])} | {hand['status']} | — |")
                continue
            rank = 1 + sum(s < hand["score"] for s in scores)
            print(f"| {m} | {_values(hand['config'])} | {hand['score']:.4g} | {rank} of {len(scores) + 1} |")


if __name__ == "__main__":
    main()
