"""Wall time of `genbench run --suite smoke --seeds 0,1` with the local executor against Ray at one
CPU per run, each in a fresh process as a user runs it, alternating local / Ray per round.

Usage: python benchmarks/smoke_executors.py [ROUNDS] [OUT_DIR]
Prints one line per run and the median ratio local / Ray; writes OUT_DIR/smoke_executors.json.
The caches (reference statistics, copy calibration) are shared, so run it once before measuring
(or read the first round as warm-up).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    out_dir = Path(sys.argv[2] if len(sys.argv) > 2 else ".")
    commands = {
        "local": ["genbench", "run", "--suite", "smoke", "--seeds", "0,1", "--no-progress"],
        "ray": ["genbench", "run", "--suite", "smoke", "--seeds", "0,1", "--no-progress",
                "--executor", "ray", "--cpus-per-run", "1"],
    }
    runs = []
    for r in range(rounds):
        order = ["local", "ray"] if r % 2 == 0 else ["ray", "local"]
        for name in order:
            scratch = Path(tempfile.mkdtemp(prefix=f"smoke-{name}-"))
            load_start = _load()
            t0 = time.perf_counter()
            proc = subprocess.run([*commands[name], "--out", str(scratch)], capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            shutil.rmtree(scratch, ignore_errors=True)
            if proc.returncode != 0:
                sys.exit(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
            runs.append({"round": r, "executor": name, "seconds": round(seconds, 1),
                         "load_average_start": load_start, "load_average_end": _load()})
            print(json.dumps(runs[-1]), flush=True)
    med = {n: statistics.median(x["seconds"] for x in runs if x["executor"] == n) for n in commands}
    summary = {"command": " / ".join(" ".join(c) for c in commands.values()), "cpu_count": os.cpu_count(),
               "runs": runs, "median_seconds": med, "local_over_ray": round(med["local"] / med["ray"], 3)}
    (out_dir / "smoke_executors.json").write_text(json.dumps(summary, indent=1))
    print(f"median local {med['local']:.1f} s, ray {med['ray']:.1f} s, local/ray {summary['local_over_ray']:.2f}")


if __name__ == "__main__":
    main()
