"""Where a suite's time goes: training and evaluation seconds per model and seed, from the records.

Usage (after `genbench run`):

    python scripts/suite_time.py results/mnist-small

Reads every ``MODEL/seedK/run.json`` under the folder and prints, per model, the
training seconds (``timings.train_seconds``), the evaluation seconds
(``timings.eval_seconds``) and its largest parts (sampling, likelihood, reconstruction),
then one line per seed with the sum over models of each run's training plus evaluation
and its wall time. The sum leaves out the suite's start-up and the leaderboard at the end,
a few seconds. The machine and the load average at each run's start are printed with
them: a time means nothing without the machine it was taken on, and times taken at
different moments on a shared host are not comparable.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

PARTS = (("eval_sampling_seconds", "sampling"), ("eval_likelihood_seconds", "likelihood"),
         ("eval_reconstruction_seconds", "reconstruction"))


def _records(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.glob("*/seed*/run.json")):
        with path.open(encoding="utf-8") as fh:
            records.append(json.load(fh))
    if not records:
        raise SystemExit(f"error: no */seed*/run.json under {folder}; give a suite's results folder")
    return records


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    a = p.parse_args()
    records = _records(a.folder)
    seeds = sorted({r["seed"] for r in records})
    by_model: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in records:
        by_model[r["model"]["name"]][r["seed"]] = r

    machines = sorted({(r["machine"].get("processor") or "?", r["machine"].get("cpu_count")) for r in records})
    revisions = sorted({r.get("git_hash") or "?" for r in records})
    print(f"machine(s): {'; '.join(f'{p} ({n} cores)' for p, n in machines)}; revision(s): {', '.join(revisions)}")
    print()
    head = ["model"] + [f"seed {s} train / eval [s]" for s in seeds] + ["largest eval parts, seed " + str(seeds[0])]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    totals: dict[int, float] = defaultdict(float)
    walls: dict[int, float] = defaultdict(float)
    order = sorted(by_model, key=lambda m: -max(
        (r["timings"].get("train_seconds") or 0) + (r["timings"].get("eval_seconds") or 0)
        for r in by_model[m].values()))
    for name in order:
        cells = [name]
        for s in seeds:
            r = by_model[name].get(s)
            if r is None:
                cells.append("—")
                continue
            t = r["timings"]
            train, ev = t.get("train_seconds") or 0.0, t.get("eval_seconds") or 0.0
            totals[s] += train + ev
            walls[s] += t.get("wall_seconds") or train + ev
            cells.append(f"{_fmt(train)} / {_fmt(ev)}")
        first = by_model[name].get(seeds[0])
        parts = []
        if first is not None:
            for key, label in PARTS:
                v = first["timings"].get(key)
                if v and v >= 1:
                    parts.append(f"{label} {_fmt(v)}")
        cells.append(", ".join(parts) or "—")
        print("| " + " | ".join(cells) + " |")
    print()
    for s in seeds:
        loads = [r["executor"].get("load_average", {}).get("start", [None])[0]
                 for m in by_model.values() if (r := m.get(s)) is not None]
        loads = [x for x in loads if x is not None]
        load = f"; load average at run starts {min(loads):.2f}-{max(loads):.2f}" if loads else ""
        runs = [m[s] for m in by_model.values() if s in m]
        resumed = any(r["executor"].get("resumed_from_step") is not None for r in runs)
        # A resumed run's wall time covers only what ran after the resume.
        wall = "" if resumed else f", sum of run wall times {walls[s] / 60:.1f} min"
        print(f"seed {s}: train + eval {totals[s] / 60:.1f} min{wall} over {len(runs)} runs{load}")


if __name__ == "__main__":
    main()
