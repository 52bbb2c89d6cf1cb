"""The device check's CPU fallback (benchmarks/device_check.py --device cpu --quick), end to end.

Run: ``pytest benchmarks/bench_device_check.py --benchmark-enable``. It runs the same steps as the
GPU check (smoke suite, ``genbench speed``, ``genbench eval`` at two sizes), each in a fresh process,
at quick sizes on the CPU, so the script cannot rot between the rare sessions that have a GPU.
"""

from __future__ import annotations

import json
import os

from benchmarks.device_check import main
from tests.conftest import DATA_ROOT


def test_device_check_cpu_fallback(benchmark, tmp_path):
    os.environ.setdefault("GENBENCH_DATA", DATA_ROOT)
    out = tmp_path / "dc"
    code = benchmark.pedantic(main, args=(["--device", "cpu", "--quick", "--out", str(out)],), rounds=1,
                              iterations=1)
    assert code == 0, (out / "device_check.md").read_text()
    report = json.loads((out / "device_check.json").read_text())
    steps = report["steps"]
    assert {r["model"] for r in steps["smoke"]["runs"]} == {"seed-gan", "vae"}
    assert all(r["status"] == "ok" for r in steps["smoke"]["runs"])
    assert {(r["model"], r["figure"]) for r in steps["speed"]["results"]} >= {
        ("seed-gan", "train_images_per_s"), ("seed-gan", "sample_images_per_s"), ("eval", "feature_images_per_s")}
    assert [s["n"] for s in steps["eval"]] == [500, 1000]
    # real training images scored against the test split: a small FID, and both sizes measured
    assert all(s["exit"] == 0 and 0 <= s["fid"] < 5 for s in steps["eval"])
    benchmark.extra_info.update(total_seconds=report["total_seconds"])
