"""What a run costs the executor: Ray's overhead per task against the local loop (pytest-benchmark).

Run: ``pytest benchmarks/bench_executors.py --benchmark-enable``. Both executors run the
same ``N_RUNS`` near-empty runs (the dummy model, one step, a stub evaluator) one after
another (``cpus_per_run`` = every CPU of the 2-CPU Ray instance, so Ray runs one task at
a time, like the local loop). Rounds alternate local / Ray, so machine load hits both
alike (the benchmark's own statistics are of one local + Ray round);
``extra_info["ray_overhead_per_run_s"]`` is the difference of the medians over ``N_RUNS``
(submission, scheduling, a worker, queue events, the record's trip back), and
``ray_start_s`` the time ``ray.init`` took to start the local instance.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from genbench.run.plan import RunOptions, run_suite
from genbench.suite import parse_suite
from tests.conftest import DATA_ROOT, DummyGenerator, stub_evaluator

ray = pytest.importorskip("ray")
N_RUNS = 8
ROUNDS = 3


def test_ray_overhead_per_run(benchmark, tmp_path):
    os.environ.setdefault("GENBENCH_DATA", DATA_ROOT)
    suite = parse_suite({"name": "o", "version": 1, "dataset": "mnist", "models": ["seed-gan"],
                         "seeds": list(range(N_RUNS)), "budget": {"steps": 1}, "eval": {"n_samples": 16}})
    kw = dict(models=["dummy"], extra_models=[DummyGenerator], checkpoint_every_seconds=None, cpus_per_run=2)
    t0 = time.perf_counter()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    start_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"local": [], "ray": []}

    def one_round() -> None:  # local then Ray, back to back: both see the same machine load
        i = len(times["local"])
        for executor in ("local", "ray"):
            t0 = time.perf_counter()
            run_suite(suite, RunOptions(out=tmp_path / f"{executor}{i}", executor=executor, **kw),
                      evaluator=stub_evaluator, show_progress=False)
            times[executor].append(time.perf_counter() - t0)

    try:
        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    finally:
        ray.shutdown()
    local, remote = statistics.median(times["local"]), statistics.median(times["ray"])
    benchmark.extra_info.update({
        "ray_start_s": round(start_s, 2),
        "local_suite_s": round(local, 2),
        "ray_suite_s": round(remote, 2),
        "ray_overhead_per_run_s": round((remote - local) / N_RUNS, 3),
        "rounds": times,
    })
