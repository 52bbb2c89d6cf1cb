"""`--executor ray` against a real local Ray instance (2 CPUs, not local_mode).

The records of a Ray run equal those of a local run with the same threads per run,
apart from timings, host and executor fields; a worker killed mid-training is retried
and resumes from the run's checkpoint to the same record; a model that raises gives a
`failed` record while the other runs go on; Ctrl-C cancels outstanding tasks and
`--resume` continues the interrupted ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.run.plan import RunOptions, run_suite
from genbench.suite import parse_suite
from tests.conftest import DATA_ROOT, DummyGenerator, SlowDummyGenerator, TracedDummyGenerator, stub_evaluator
from tests.test_runner import _strip_timing

ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install -e '.[ray]'")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """One local Ray instance of 2 CPUs for the module; workers see the tests' data and cache folders."""
    env = {"GENBENCH_DATA": str(Path(DATA_ROOT).resolve()),
           "XDG_CACHE_HOME": str(tmp_path_factory.getbasetemp() / "xdg-cache")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _suite(models, steps=20, seeds=(0, 1), n_samples=64):
    return parse_suite({"name": "rt", "version": 1, "dataset": "mnist", "models": list(models), "tiny": True,
                        "seeds": list(seeds), "budget": {"steps": steps},
                        "eval": {"n_samples": n_samples, "nll_images": 64, "recon_images": 16}})


class RaisingGenerator(DummyGenerator):
    name = "raiser"

    def train_step(self, batch, step):
        raise RuntimeError("this model is broken on purpose")


def test_ray_records_equal_local_records(ray_instance, tmp_path):
    """Real tiny models, the real evaluator: every metric and the config are equal, run by run."""
    suite = _suite(["seed-gan", "vae"])
    kw = dict(checkpoint_every_seconds=None, cpus_per_run=1)
    local = run_suite(suite, RunOptions(out=tmp_path / "local", **kw), show_progress=False)
    remote = run_suite(suite, RunOptions(out=tmp_path / "ray", executor="ray", **kw), show_progress=False)
    assert [(r.model_name, r.seed) for r in remote] == [(r.model_name, r.seed) for r in local]
    for a, b in zip(local, remote, strict=True):
        assert a.status == b.status == "ok"
        assert a.executor["name"] == "local" and b.executor["name"] == "ray"
        assert a.executor["torch_threads"] == b.executor["torch_threads"] == 1
        assert b.executor["pid"] != os.getpid()  # really ran in a worker process
        assert _strip_timing(a) == _strip_timing(b)
    assert a.metrics["nll_bpd"] is not None and a.metrics["fid"] is not None
    on_disk = json.loads((tmp_path / "ray" / "rt" / "vae" / "seed1" / "run.json").read_text())
    assert on_disk["executor"]["name"] == "ray"
    board = (tmp_path / "ray" / "rt" / "leaderboard.md").read_text()
    assert "| vae | 2/0/0/0 |" in board and "| seed-gan | 2/0/0/0 |" in board


def test_ray_failing_model_gives_failed_record_and_others_go_on(ray_instance, tmp_path):
    recs = run_suite(_suite(["seed-gan"], seeds=[0]), RunOptions(extra_models=[RaisingGenerator], out=tmp_path,
                                                                 executor="ray", cpus_per_run=1),
                     evaluator=stub_evaluator, show_progress=False)
    by_name = {r.model_name: r for r in recs}
    assert by_name["seed-gan"].status == "ok"
    assert by_name["raiser"].status == "failed"
    assert "RuntimeError: this model is broken on purpose" in by_name["raiser"].error


def test_killed_worker_is_retried_and_resumes_to_the_same_record(ray_instance, tmp_path):
    suite = _suite(["seed-gan"], steps=150, seeds=[0])
    kw = dict(models=["slow-dummy"], extra_models=[SlowDummyGenerator], cpus_per_run=1, checkpoint_every_steps=10,
              checkpoint_every_seconds=None)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(recs=run_suite(
        suite, RunOptions(out=tmp_path / "ray", executor="ray", **kw), evaluator=stub_evaluator, show_progress=False)))
    worker.start()
    run_dir = tmp_path / "ray" / "rt" / "slow-dummy" / "seed0"
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoint.pt").exists():
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    pid = int((run_dir / ".lock").read_text())  # the lock names the worker that holds the run
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    worker.join(timeout=300)
    (killed,) = result["recs"]
    assert killed.status == "ok"
    assert killed.executor["pid"] != pid and killed.executor["resumed_from_step"] > 0
    (clean,) = run_suite(suite, RunOptions(out=tmp_path / "local", **kw), evaluator=stub_evaluator, show_progress=False)
    assert clean.executor["resumed_from_step"] is None
    assert _strip_timing(killed) == _strip_timing(clean)


def test_ray_runs_no_more_tasks_at_once_than_the_cpus_allow(ray_instance, tmp_path):
    """Progress reports must not block: a task waiting in ray.get lends its CPUs back and Ray
    would start more runs than 2 CPUs / --cpus-per-run (it did, with Queue.put_nowait): at 2 CPUs
    per run on 2 CPUs, runs must never overlap."""
    cpus_per_run = 2
    trace = tmp_path / "trace"
    trace.mkdir()
    # Progress is reported every 50 steps: many steps give each run many reports.
    suite = _suite(["seed-gan"], steps=600, seeds=[0, 1, 2, 3, 4, 5])
    recs = run_suite(suite, RunOptions(models=["traced-dummy"], extra_models=[TracedDummyGenerator],
                                       out=tmp_path / "out",
                                       set_overrides={"traced-dummy": {"trace_dir": str(trace), "step_seconds": 0.002}},
                                       executor="ray", cpus_per_run=cpus_per_run, checkpoint_every_seconds=None),
                     evaluator=stub_evaluator, show_progress=False)
    assert [r.status for r in recs] == ["ok"] * 6
    events = []
    for f in trace.iterdir():
        for line in f.read_text().split("\n"):
            if line:
                start, end = map(float, line.split())
                events += [(start, 1), (end, -1)]
    assert len(events) >= 2 * 6 * 600  # every training step of the 6 runs (and any the harness adds)
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        running += delta
        peak = max(peak, running)
    assert peak == 1


def test_cli_dead_cluster_address_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["run", "--suite", "smoke", "--executor", "ray", "--ray-address",
                                       "127.0.0.1:9", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot reach a Ray cluster at 127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_cli_without_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = CliRunner().invoke(main, ["run", "--suite", "smoke", "--executor", "ray", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: --executor ray needs Ray, which is not installed: pip install -e '.[ray]'")


DRIVER = textwrap.dedent("""
    import sys
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite
    from tests.conftest import SlowDummyGenerator, stub_evaluator

    suite = parse_suite({"name": "c", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "seeds": [0, 1, 2],
                         "budget": {"steps": int(sys.argv[3])}, "eval": {"n_samples": 16}})
    print("ready", flush=True)
    run_suite(suite, RunOptions(out=sys.argv[1], resume=sys.argv[2] == "resume", models=["slow-dummy"],
                                extra_models=[SlowDummyGenerator],
                                set_overrides={"slow-dummy": {"step_seconds": "0.05"}},
                                executor="ray", cpus_per_run=1, checkpoint_every_steps=5),
              evaluator=stub_evaluator, show_progress=False)
""")


def test_ctrl_c_cancels_outstanding_tasks_and_resume_continues(tmp_path):
    """SIGINT to a real driver process: no record is lost or half-written, --resume finishes the rest."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GENBENCH_DATA": str(Path(DATA_ROOT).resolve())}
    # SIGINT at its default, as from a terminal: a pytest started in the background by a
    # non-interactive shell would hand the driver SIGINT ignored, and the test is about Ctrl-C.
    proc = subprocess.Popen([sys.executable, str(driver), str(out), "fresh", "400"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "ready"
    runs = [out / "c" / "slow-dummy" / f"seed{s}" for s in (0, 1, 2)]
    deadline = time.monotonic() + 180
    while sum((r / "checkpoint.pt").exists() for r in runs) < 2:  # two runs (2 CPUs) are training
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert not any((r / "run.json").exists() for r in runs), "nothing had finished when Ctrl-C came"
    resumed = subprocess.run([sys.executable, str(driver), str(out), "resume", "400"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads((r / "run.json").read_text()) for r in runs]
    assert [r["status"] for r in records] == ["ok"] * 3
    assert sum((r["executor"]["resumed_from_step"] or 0) > 0 for r in records) >= 2
    assert not list(out.rglob("*.tmp"))  # a worker cancelled mid-write leaves one; the resumed run removes it
