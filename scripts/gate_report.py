"""Tables for the metric gate's report: margins, time per model, and leave-one-seed-out false alarms.

    python scripts/gate_report.py RESULTS_DIR [--rerun DIR ...]

RESULTS_DIR is the gate suite's folder of the baseline's runs (MODEL/seedK/run.json, several
seeds). Prints, as markdown:

- margins: per competitor, FID and NLL (mean ± sd over seeds) against the independent-pixels
  floor's, and the floor's FID divided by the model's;
- time: training and evaluation seconds per model (mean over seeds), the sum per seed, and
  the load average at each run's start;
- leave one seed out: each seed's runs checked (`genbench check`'s comparison) against a
  baseline made from the other seeds alone. A seed is unchanged code that ended elsewhere
  only by chance, the worst case of what another processor does to a chaotic training run,
  so a flagged comparison here is a false alarm;
- for each ``--rerun`` folder (the same suite rerun otherwise: another thread count, another
  processor), its check against the baseline made from all seeds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from genbench.results import collect_runs
from genbench.verify.check import CHECK_FAILING, compare, save_baseline

LIKELIHOOD_MODELS = ("vae", "pixelcnn", "pixel-lstm")


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g}"


def margins(records) -> list[str]:
    by = defaultdict(list)
    for r in records:
        if r.status == "ok":
            by[r.model_name].append(r)
    floor_fid = statistics.fmean(r.metrics["fid"] for r in by["independent-pixels"])
    floor_nll = statistics.fmean(r.metrics["nll_bpd"] for r in by["independent-pixels"])
    lines = [f"Floor (independent-pixels): FID {floor_fid:.4g}, NLL {floor_nll:.4g} bits/dim.", "",
             "| model | seeds | fid | floor fid / fid | nll_bpd | under the floor's NLL by |",
             "|---|---|---|---|---|---|"]
    for name, recs in sorted(by.items()):
        if recs[0].model.get("role", "competitor") != "competitor":
            continue
        fids = [r.metrics["fid"] for r in recs]
        nlls = [r.metrics["nll_bpd"] for r in recs if r.metrics.get("nll_bpd") is not None]
        nll = _mean_sd(nlls) + (" (bound)" if recs[0].metrics.get("nll_is_bound") else "") if nlls else "—"
        under = f"{floor_nll - statistics.fmean(nlls):.3f} bits/dim" if nlls else "—"
        lines.append(f"| {name} | {len(recs)} | {_mean_sd(fids)} | {floor_fid / statistics.fmean(fids):.1f}x | "
                     f"{nll} | {under} |")
    return lines


def times(records) -> list[str]:
    by = defaultdict(list)
    per_seed = defaultdict(float)
    loads = defaultdict(list)
    for r in records:
        t = r.timings
        by[r.model_name].append((t.get("train_seconds", 0.0), t.get("eval_seconds", 0.0)))
        per_seed[r.seed] += t.get("wall_seconds", 0.0)
        start = (r.executor.get("load_average") or {}).get("start")
        if start:
            loads[r.seed].append(start[0])
    lines = ["| model | train s | eval s |", "|---|---|---|"]
    for name, rows in sorted(by.items()):
        lines.append(f"| {name} | {statistics.fmean(x for x, _ in rows):.1f} | "
                     f"{statistics.fmean(y for _, y in rows):.1f} |")
    lines += ["", "| seed | sum of run wall times (s) | load average (1 min) at run starts |", "|---|---|---|"]
    for seed, total in sorted(per_seed.items()):
        ls = loads.get(seed) or [float("nan")]
        lines.append(f"| {seed} | {total:.0f} | {min(ls):.2f} to {max(ls):.2f} |")
    return lines


def _copy_seeds(records_dir: Path, seeds: set[int], dest: Path) -> None:
    for run in sorted(records_dir.glob("*/seed*/run.json")):
        if int(run.parent.name.removeprefix("seed")) in seeds:
            target = dest / run.parent.parent.name / run.parent.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(run, target / "run.json")


def _flagged(comparisons) -> list[str]:
    return [f"{c.model} {c.metric} {c.verdict} ({c.baseline:.4g} -> {c.value:.4g}, {c.tolerance})"
            for c in comparisons if c.verdict in CHECK_FAILING]


def leave_one_out(folder: Path, seeds: list[int]) -> list[str]:
    lines = ["| seed checked | baseline seeds | comparisons | flagged |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            base_dir, now_dir = Path(tmp) / f"base{seed}" / "gate", Path(tmp) / f"now{seed}" / "gate"
            others = set(seeds) - {seed}
            _copy_seeds(folder, others, base_dir)
            _copy_seeds(folder, {seed}, now_dir)
            save_baseline(base_dir, Path(tmp) / f"b{seed}.json")
            comparisons, problems = compare(now_dir, Path(tmp) / f"b{seed}.json")
            flagged = _flagged(comparisons)
            lines.append(f"| {seed} | {', '.join(map(str, sorted(others)))} | {len(comparisons)} | "
                         f"{len(flagged)}{': ' + '; '.join(flagged) if flagged else ''} |")
            assert not problems, problems
    return lines


def reruns(folder: Path, rerun_dirs: list[Path]) -> list[str]:
    lines = ["| rerun | comparisons | flagged |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "all.json"
        save_baseline(folder, path)
        for d in rerun_dirs:
            comparisons, problems = compare(d, path, models=sorted({r.model_name for r in collect_runs(d)[0]}))
            flagged = _flagged(comparisons)
            lines.append(f"| {d} | {len(comparisons)} | {len(flagged)}{': ' + '; '.join(flagged) if flagged else ''} |")
            assert not problems, problems
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--rerun", type=Path, action="append", default=[])
    args = parser.parse_args()
    records, problems = collect_runs(args.results)
    if problems or not records:
        raise SystemExit(f"error: unusable records under {args.results}: {problems or 'none found'}")
    seeds = sorted({r.seed for r in records})
    print("### Margins\n\n" + "\n".join(margins(records)))
    print("\n### Time\n\n" + "\n".join(times(records)))
    if len(seeds) >= 4:  # with fewer, each left-out seed meets a band of two seeds: t(0.995, 1) is 64
        print("\n### Leave one seed out\n\n" + "\n".join(leave_one_out(args.results, seeds)))
    if args.rerun:
        print("\n### Reruns of unchanged code\n\n" + "\n".join(reruns(args.results, args.rerun)))


if __name__ == "__main__":
    main()
