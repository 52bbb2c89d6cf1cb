"""SIGKILL a real `run_suite` process at random points, resume, and compare with an uninterrupted run.

The default test suite kills at one point; the whole matrix runs with
``pytest -m slow tests/test_kill_resume.py``.
"""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent("""
    import sys, time
    from tests.conftest import stub_evaluator
    from genbench.run.plan import RunOptions, run_suite
    from genbench.suite import parse_suite

    def slow_eval(*args, **kwargs):
        time.sleep(1.0)  # a window in which the kill can land during evaluation
        return stub_evaluator(*args, **kwargs)

    suite = parse_suite({"name": "k", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
                         "budget": {"steps": 100}, "eval": {"n_samples": 32}, "seeds": [0, 1]})
    print("ready", flush=True)
    run_suite(suite, RunOptions(out=sys.argv[1], resume=sys.argv[2] == "resume", checkpoint_every_seconds=0.0),
              evaluator=slow_eval, show_progress=False)
""")


def _driver(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    return path


def _start(driver, out, mode):
    from tests.conftest import DATA_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO), "GENBENCH_DATA": str(Path(DATA_ROOT).resolve())}
    proc = subprocess.Popen([sys.executable, str(driver), str(out), mode], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _finish(driver, out, mode="fresh"):
    proc = _start(driver, out, mode)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return time.monotonic() - t0


def _comparable(out, seed):
    from genbench.metrics import metric_specs

    specs = metric_specs()
    rec = json.loads((out / "k" / "seed-gan" / f"seed{seed}" / "run.json").read_text())
    metrics = {k: v for k, v in rec["metrics"].items() if k not in specs or specs[k].group != "speed"}
    state = torch.load(out / "k" / "seed-gan" / f"seed{seed}" / "checkpoint.pt", weights_only=True)["state"]["model"]
    return rec["status"], rec["budget"]["achieved"]["steps"], metrics, state


def _assert_only_complete_files(out):
    for path in out.rglob("run.json"):
        json.loads(path.read_text())
    for path in out.rglob("checkpoint.pt"):
        torch.load(path, weights_only=True)


def _kill_and_resume(tmp_path, fraction, reference, duration):
    driver = _driver(tmp_path)
    out = tmp_path / f"killed-{fraction:.3f}"
    proc = _start(driver, out, "fresh")
    time.sleep(duration * fraction)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    _assert_only_complete_files(out)
    _finish(driver, out, "resume")
    for seed in (0, 1):
        status, steps, metrics, state = _comparable(out, seed)
        ref_status, ref_steps, ref_metrics, ref_state = reference[seed]
        assert (status, steps) == (ref_status, ref_steps) == ("ok", 100)
        assert metrics == ref_metrics
        assert state.keys() == ref_state.keys() and all(torch.equal(state[k], ref_state[k]) for k in state)
    assert not list(out.rglob("*.tmp"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    duration = _finish(_driver(tmp), tmp / "out")
    return {seed: _comparable(tmp / "out", seed) for seed in (0, 1)}, duration


def test_kill_once_and_resume(tmp_path, reference):
    ref, duration = reference
    _kill_and_resume(tmp_path, 0.5, ref, duration)


@pytest.mark.slow
@pytest.mark.parametrize("draw", range(5))
def test_kill_matrix(tmp_path, reference, draw):
    ref, duration = reference
    fraction = random.Random(draw).uniform(0.05, 0.95)
    _kill_and_resume(tmp_path, fraction, ref, duration)
