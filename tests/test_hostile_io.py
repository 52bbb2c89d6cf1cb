"""Leftovers, full disks and the leaderboard lock: real signals, real subprocesses, simulated ENOSPC."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.errors import WriteError
from genbench.files.atomic import FileLock, atomic_write_files, atomic_write_text
from genbench.results import write_run_record
from tests.conftest import DATA_ROOT, REPO


def _record(model, seed, fid=10.0):
    return {
        "schema_version": 1, "model": {"name": model}, "seed": seed, "status": "ok",
        "suite": {"name": "syn", "version": 1}, "dataset": "mnist", "device": "cpu",
        "machine": {"processor": "cpu", "cpu_count": 2}, "budget": {"kind": "images", "achieved": {"images": 10}},
        "metrics": {"fid": fid, "is": 8.0},
    }


def _tmp_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.tmp"))


# -- signals --------------------------------------------------------------------------------------------

_WRITER = """
import os, sys, time
import torch
import genbench.files.atomic as gio

real_fsync = os.fsync

def slow_fsync(fd):
    # Hold the write open at its riskiest point (temporary file written, not yet renamed)
    # long enough for the parent to send its signal.
    if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
        print("writing", flush=True)
        time.sleep(120)
    real_fsync(fd)

os.fsync = slow_fsync
gio.atomic_torch_save({"w": torch.ones(1000)}, sys.argv[1])
print("finished", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_checkpoint_write_removes_the_temporary_file(tmp_path, sig):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(b"previous checkpoint")
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the child imports the genbench under test
    # SIGINT at its default, as from a terminal: a pytest started in the background by a
    # non-interactive shell would hand the child SIGINT ignored, and the test is about the signal.
    proc = subprocess.Popen([sys.executable, str(script), str(checkpoint)], stdout=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert len(_tmp_files(run_dir)) == 1 and _tmp_files(run_dir)[0].startswith(".checkpoint.pt.")
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -sig  # ended as the signal ends a Python process, not by a clean exit
    assert _tmp_files(run_dir) == []
    assert checkpoint.read_bytes() == b"previous checkpoint"


def test_default_signal_handling_is_restored_after_a_write(tmp_path):
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    atomic_write_text(tmp_path / "x.txt", "x")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert (tmp_path / "x.txt").read_text() == "x"


# -- full disk ------------------------------------------------------------------------------------------

@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(root, only=None)``: data written to regular files under ``root`` fails with ENOSPC.

    Both ``write`` and ``fsync`` fail (a delayed-allocation filesystem reports a full disk at
    fsync); ``only`` restricts the failure to files whose name contains it.
    """
    real_write, real_fsync = os.write, os.fsync

    def install(root: Path, only: str | None = None) -> None:
        def full(fd: int) -> bool:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
            except OSError:
                return False
            return regular and target.startswith(str(root)) and (only is None or only in Path(target).name)

        def write(fd, data):
            if full(fd) and len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def fsync(fd):
            if full(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)

    return install


def _one_line_exit_2(r, message):
    assert r.exit_code == 2, (r.output, r.exception)
    assert r.output.startswith("Error: ") and r.output.count("\n") == 1, r.output
    assert message in r.output


def _suite_with_runs(tmp_path, n):
    suite_dir = tmp_path / "syn"
    for seed in range(n):
        write_run_record(suite_dir / "m" / f"seed{seed}", _record("m", seed, fid=10.0 + seed))
    return suite_dir


def _leaderboard(suite_dir):
    return {ext: (suite_dir / f"leaderboard.{ext}").read_bytes() for ext in ("md", "csv", "json", "html")}


def test_report_on_a_full_disk_keeps_the_previous_set(tmp_path, full_disk):
    suite_dir = _suite_with_runs(tmp_path, 3)
    assert CliRunner().invoke(main, ["report", str(suite_dir)]).exit_code == 0
    before = _leaderboard(suite_dir)
    write_run_record(suite_dir / "m" / "seed3", _record("m", 3))
    full_disk(tmp_path)
    r = CliRunner().invoke(main, ["report", str(suite_dir)])
    _one_line_exit_2(r, "No space left on device")
    assert _leaderboard(suite_dir) == before and _tmp_files(tmp_path) == []


def test_report_is_one_set_when_only_the_last_file_fails(tmp_path, full_disk):
    """The finding: md/csv/json listed 4 runs, the html 3. Now all four keep the previous set."""
    suite_dir = _suite_with_runs(tmp_path, 3)
    assert CliRunner().invoke(main, ["report", str(suite_dir)]).exit_code == 0
    before = _leaderboard(suite_dir)
    write_run_record(suite_dir / "m" / "seed3", _record("m", 3))
    full_disk(tmp_path, only="leaderboard.html")
    r = CliRunner().invoke(main, ["report", str(suite_dir)])
    _one_line_exit_2(r, "cannot write " + str(suite_dir / "leaderboard.html") + ": No space left on device")
    assert _leaderboard(suite_dir) == before and _tmp_files(tmp_path) == []
    assert json.loads(before["json"])["rows"][0]["n_ok"] == 3


def test_write_set_is_all_or_nothing(tmp_path, full_disk):
    (tmp_path / "a").write_text("old a")
    (tmp_path / "b").write_text("old b")
    full_disk(tmp_path, only=".b.")  # the temporary file of b: ".b.<random>.tmp"
    with pytest.raises(WriteError, match=r"cannot write .*/b: No space left on device"):
        atomic_write_files({tmp_path / "a": "new a", tmp_path / "b": "new b"})
    assert (tmp_path / "a").read_text() == "old a" and (tmp_path / "b").read_text() == "old b"
    assert _tmp_files(tmp_path) == []


def test_baseline_save_on_a_full_disk(tmp_path, full_disk):
    suite_dir = _suite_with_runs(tmp_path, 2)
    target = tmp_path / "baseline.json"
    target.write_text("previous baseline")
    full_disk(tmp_path)
    r = CliRunner().invoke(main, ["baseline", "save", str(suite_dir), str(target)])
    _one_line_exit_2(r, f"cannot write {target}: No space left on device")
    assert target.read_text() == "previous baseline" and _tmp_files(tmp_path) == []


def test_check_json_on_a_full_disk(tmp_path, full_disk):
    suite_dir = _suite_with_runs(tmp_path, 2)
    baseline = tmp_path / "baseline.json"
    assert CliRunner().invoke(main, ["baseline", "save", str(suite_dir), str(baseline)]).exit_code == 0
    out = tmp_path / "check.json"
    out.write_text("previous comparison")
    full_disk(tmp_path)
    r = CliRunner().invoke(main, ["check", str(suite_dir), "--baseline", str(baseline), "--json", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.strip().splitlines()[-1] == f"Error: cannot write {out}: No space left on device"
    assert out.read_text() == "previous comparison" and _tmp_files(tmp_path) == []


def test_lock_needs_no_free_space(tmp_path, full_disk):
    full_disk(tmp_path)
    lock = FileLock(tmp_path / "run" / ".lock")
    with lock:
        assert lock.holder() == "?"  # the pid could not be recorded; the lock is held all the same
        with pytest.raises(BlockingIOError), FileLock(tmp_path / "run" / ".lock", blocking=False):
            pass


def test_lock_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(WriteError, match=r"cannot write .*/file/\.lock: File exists"), FileLock(blocker / ".lock"):
        pass


def test_run_on_a_full_disk_is_one_line(tmp_path, full_disk):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "full"\nversion = 1\ndataset = "mnist"\nmodels = ["seed-gan"]\ntiny = true\n'
                     '[budget]\nsteps = 2\n[eval]\nn_samples = 8\n')
    out = tmp_path / "out"
    full_disk(out)
    r = CliRunner().invoke(main, ["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--device", "cpu",
                                  "--data-root", str(Path(DATA_ROOT).resolve())])
    assert r.exit_code == 2, (r.output, r.exception)
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Error: cannot write ") and "No space left on device" in last, r.output
    assert _tmp_files(out) == []


# -- the leaderboard lock -----------------------------------------------------------------------------

def test_report_waits_for_the_leaderboard_lock(tmp_path, monkeypatch):
    """The finding: a report racing a run overwrote a newer leaderboard. Now it queues behind the run."""
    import genbench.report.compare

    suite_dir = _suite_with_runs(tmp_path, 1)
    reading = threading.Event()
    real_collect = genbench.report.compare.collect_runs

    def collect(folder):
        reading.set()
        return real_collect(folder)

    monkeypatch.setattr(genbench.report.compare, "collect_runs", collect)
    outcome = {}
    with FileLock(suite_dir / ".leaderboard.lock"):  # what a run holds while it writes its record and leaderboard
        def report() -> None:
            outcome.update(r=CliRunner().invoke(main, ["report", str(suite_dir)]))

        reporter = threading.Thread(target=report)
        reporter.start()
        assert not reading.wait(2.0), "report read the records while the leaderboard lock was held"
        write_run_record(suite_dir / "m" / "seed1", _record("m", 1))
    reporter.join(120)
    assert outcome["r"].exit_code == 0, outcome["r"].output
    board = json.loads((suite_dir / "leaderboard.json").read_text())
    assert board["rows"][0]["n_ok"] == 2
