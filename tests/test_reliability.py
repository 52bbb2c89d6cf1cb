"""Faults: disk full, a second writer on the same run, tmp files never left behind."""

import errno

import pytest

from genbench.errors import ConfigError, GenbenchError
from genbench.files.atomic import FileLock
from genbench.run.plan import RunOptions, run_suite
from genbench.suite import parse_suite
from tests.conftest import stub_evaluator

SUITE = parse_suite({"name": "r", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
                     "budget": {"steps": 4}, "eval": {"n_samples": 8}})


def _run(out, **kw):
    return run_suite(SUITE, RunOptions(out=out, checkpoint_every_seconds=None, **kw), evaluator=stub_evaluator,
                     show_progress=False)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_on_checkpoint_marks_run_failed(tmp_path, monkeypatch):
    _run(tmp_path, seeds=[0])
    before = (tmp_path / "r" / "seed-gan" / "seed0" / "run.json").read_bytes()
    monkeypatch.setattr("genbench.run.train.atomic_torch_save", _enospc)
    (rec,) = _run(tmp_path, seeds=[1])
    assert rec.status == "failed" and "No space left on device" in rec.error
    assert (tmp_path / "r" / "seed-gan" / "seed0" / "run.json").read_bytes() == before
    assert "| seed-gan | 1/0/0/1 |" in (tmp_path / "r" / "leaderboard.md").read_text()


def test_disk_full_on_record_is_a_clear_error_and_keeps_earlier_records(tmp_path, monkeypatch):
    import genbench.files.atomic

    _run(tmp_path, seeds=[0])
    before = (tmp_path / "r" / "seed-gan" / "seed0" / "run.json").read_bytes()

    def full_fdopen(fd, mode="r", *a, **k):
        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                import os

                os.close(fd)

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

        return Full()

    monkeypatch.setattr(genbench.files.atomic.os, "fdopen", full_fdopen)
    with pytest.raises(GenbenchError, match=r"cannot write .*seed1/run.json \(No space left on device\)"):
        _run(tmp_path, seeds=[1])
    monkeypatch.undo()
    assert (tmp_path / "r" / "seed-gan" / "seed0" / "run.json").read_bytes() == before
    leftovers = [p.name for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_same_run_twice_is_refused(tmp_path):
    run_dir = tmp_path / "r" / "seed-gan" / "seed0"
    with FileLock(run_dir / ".lock"), pytest.raises(ConfigError, match="being written by another genbench process"):
        _run(tmp_path, seeds=[0])
    (rec,) = _run(tmp_path, seeds=[0])  # the lock is released with its holder
    assert rec.status == "ok"


def test_a_refused_overwrite_changes_nothing_on_disk(tmp_path):
    """While another process holds a run, --overwrite is refused before deleting anything:
    the other process's checkpoint (its only way to resume after a crash) stays."""
    (first,) = _run(tmp_path, seeds=[0])
    assert first.status == "ok"
    run_dir = tmp_path / "r" / "seed-gan" / "seed0"
    (run_dir / "checkpoint.pt").write_bytes(b"the other process's checkpoint")
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    with FileLock(run_dir / ".lock"), pytest.raises(ConfigError, match="being written by another genbench process"):
        _run(tmp_path, seeds=[0], overwrite=True)
    after = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before and "checkpoint.pt" in after and "run.json" in after


def test_two_processes_into_one_results_folder_lose_no_record(tmp_path):
    """Two real `genbench run` processes, different models, same folder, at the same time."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import DATA_ROOT

    suite = tmp_path / "two.toml"
    suite.write_text('name = "two"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan", "dcgan"]\ntiny = true\n'
                     '[budget]\nsteps = 30\n[eval]\nn_samples = 32\nnll_images = 10\nrecon_images = 10\n')
    env = {**os.environ, "GENBENCH_DATA": str(Path(DATA_ROOT).resolve())}
    procs = [
        subprocess.Popen([sys.executable, "-m", "genbench.cli", "run", "--suite", str(suite), "--models", model,
                          "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for model in ("seed-gan", "dcgan")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    records = sorted(json.loads(p.read_text())["model"]["name"] for p in (tmp_path / "out").rglob("run.json"))
    assert records == ["dcgan", "seed-gan"]
    board = json.loads((tmp_path / "out" / "two" / "leaderboard.json").read_text())
    # Each process writes its record before rebuilding the leaderboard (under a lock, from disk), so
    # the last rebuild happens after both records exist and must show both.
    assert {row["model"] for row in board["rows"]} == {"dcgan", "seed-gan"}


class _Payload:
    """Pickling this object makes unpickling call os.system: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_checkpoint_never_runs_code(tmp_path):
    import torch

    from genbench.run.train import CHECKPOINT_NAME

    marker = tmp_path / "pwned"
    run_dir = tmp_path / "r" / "seed-gan" / "seed0"
    run_dir.mkdir(parents=True)
    torch.save({"format": 1, "state": _Payload(marker)}, run_dir / CHECKPOINT_NAME)
    (rec,) = _run(tmp_path, seeds=[0], resume=True)
    assert not marker.exists()
    assert rec.status == "failed" and "cannot load checkpoint" in rec.error


def test_crafted_extractor_weights_never_run_code(tmp_path, monkeypatch):
    import torch

    from genbench.features import extractor as ex

    marker = tmp_path / "pwned"
    bad = tmp_path / "mnist.pt"
    torch.save({"state_dict": _Payload(marker)}, bad)
    monkeypatch.setattr(ex, "weights_path", lambda name: bad)
    with pytest.raises(GenbenchError, match="cannot load feature-extractor weights"):
        ex.load_weights("mnist")
    assert not marker.exists()
