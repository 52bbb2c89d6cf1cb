"""The full `genbench sanity` run on one dataset, once, in a fresh process (issue 35: at most 20 minutes on the
2-core machine).

    GENBENCH_DATA=../shared/data pytest benchmarks/bench_sanity.py --benchmark-enable -s
    GENBENCH_SANITY_DATASET=fashion-mnist ...   # the other dataset

Prints the wall time of the whole command, the seconds per metric group summed over the sets (from
sanity.json's `timings`), the machine and the load average at the start (a time means nothing
without them); `extra_info` keeps the same for `--benchmark-json`. It also asserts what the matrix
needs: every family at every level and seed, and FID judged worse under blur.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

LIMIT_SECONDS = 20 * 60  # issue 35's budget for one dataset on the 2-core machine (printed against, not asserted:
# on a shared machine the time says more about the load than about the code)


def test_sanity_full_run_time(benchmark, tmp_path):
    dataset = os.environ.get("GENBENCH_SANITY_DATASET", "mnist")
    load = os.getloadavg()

    def run() -> None:
        subprocess.run([sys.executable, "-m", "genbench.cli", "sanity", "--dataset", dataset, "--out", str(tmp_path),
                        "--no-progress"], check=True)

    started = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    wall = time.perf_counter() - started
    data = json.loads((tmp_path / "sanity" / dataset / "sanity.json").read_text())
    seeds = data["settings"]["seeds"]
    for family in data["families"]:
        got = {(s["level"], s["seed"]) for s in data["sets"] if s["family"] == family["name"]}
        assert got == {(lv, sd) for lv in family["levels"] for sd in seeds}, family["name"]
    blur_fid = next(c for c in data["cells"] if c["family"] == "blur" and c["metric"] == "fid")
    assert blur_fid["verdict"] == "pass", blur_fid
    timings = data["timings"]
    benchmark.extra_info.update(wall_seconds=round(wall, 1), load_average_at_start=load, machine=data["machine"],
                                dataset=dataset, scored_sets=timings["scored_sets"], workers=timings["workers"],
                                group_seconds=timings["group_seconds"], summary=data["summary"])
    print(f"\ngenbench sanity --dataset {dataset}: {wall:.0f} s on {data['machine'].get('processor')} "
          f"({data['machine'].get('cpu_count')} cores, {timings['workers']} workers), load average at start "
          f"{load[0]:.2f}; {timings['scored_sets']} sets; budget {LIMIT_SECONDS} s")
    for group, seconds in sorted(timings["group_seconds"].items(), key=lambda kv: -kv[1]):
        print(f"  {group:20s} {seconds:8.1f} s over all sets")
    (Path(os.environ.get("GENBENCH_BENCH_OUT", tmp_path)) / f"sanity_time_{dataset}.json").write_text(
        json.dumps(benchmark.extra_info, indent=2) + "\n")
