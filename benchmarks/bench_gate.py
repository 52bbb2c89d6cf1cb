"""The gated suite's time on this machine: `genbench run --suite gate` once, in a fresh process as CI runs it.

    GENBENCH_DATA=../shared/data pytest benchmarks/bench_gate.py --benchmark-enable -s

Prints the wall time of the whole command and, per model, training and evaluation seconds
from the records, with the machine and the load average at the start (a time means nothing
without them); `extra_info` keeps the same for `--benchmark-json`. It also asserts what
the gate needs of the suite: every competitor ends far from the independent-pixels floor
(FID under half the floor's; NLL under the floor's for the models ranked by NLL).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from genbench.results import collect_runs

LIKELIHOOD_MODELS = ("vae", "pixelcnn", "pixel-lstm")


def test_gate_suite_time_and_margins(benchmark, tmp_path):
    out = tmp_path / "gate"
    load = os.getloadavg()

    def run() -> None:
        subprocess.run([sys.executable, "-m", "genbench.cli", "run", "--suite", "gate", "--out", str(out),
                        "--no-progress"], check=True)

    started = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    wall = time.perf_counter() - started
    records, problems = collect_runs(out / "gate")
    assert not problems and records
    by_model = {r.model_name: r for r in records}
    floor = by_model["independent-pixels"].metrics
    rows = {}
    for name, rec in sorted(by_model.items()):
        t = rec.timings
        rows[name] = {"train_s": round(t.get("train_seconds", 0.0), 1), "eval_s": round(t.get("eval_seconds", 0.0), 1),
                      "fid": rec.metrics.get("fid"), "nll_bpd": rec.metrics.get("nll_bpd")}
        if rec.model.get("role", "competitor") == "competitor":
            assert rec.status == "ok", f"{name}: {rec.status}"
            assert rec.metrics["fid"] < floor["fid"] / 2, f"{name}: FID {rec.metrics['fid']} vs floor {floor['fid']}"
            if name in LIKELIHOOD_MODELS:
                assert rec.metrics["nll_bpd"] < floor["nll_bpd"], f"{name}: NLL {rec.metrics['nll_bpd']}"
    machine = records[0].machine
    benchmark.extra_info.update(wall_seconds=round(wall, 1), load_average_at_start=load, machine=machine,
                                models=rows)
    print(f"\ngate suite: {wall:.0f} s for `genbench run --suite gate` on {machine.get('processor')} "
          f"({machine.get('cpu_count')} cores), load average at start {load[0]:.2f}")
    for name, row in rows.items():
        print(f"  {name:20s} train {row['train_s']:6.1f} s  eval {row['eval_s']:6.1f} s  fid {row['fid']:.4g}"
              + (f"  nll_bpd {row['nll_bpd']:.3f}" if row["nll_bpd"] is not None else ""))
    (Path(os.environ.get("GENBENCH_BENCH_OUT", tmp_path)) / "gate_time.json").write_text(
        json.dumps(benchmark.extra_info, indent=2) + "\n")
