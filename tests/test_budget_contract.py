"""Work budgets are the contract: capped runs, --budget replacing the budget, a busy machine, a clean revision."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from rich.console import Console

from genbench.budget import Budget
from genbench.cli import main
from genbench.errors import ConfigError
from genbench.results import RunRecord, cap_reason, inside_git_work_tree, read_run_record
from genbench.run.plan import DIRTY_ERROR, RunOptions, describe_budget, plan_runs, run_suite
from genbench.suite import load_suite, parse_suite
from tests.conftest import stub_evaluator

TINY_SUITE = {
    "name": "t", "version": 1, "dataset": "mnist", "models": ["seed-gan"], "tiny": True,
    "budget": {"steps": 4, "seconds": 100}, "eval": {"n_samples": 16},
}


def _run(out, console=None, **kw):
    return run_suite(parse_suite(TINY_SUITE), RunOptions(out=out, checkpoint_every_seconds=None, **kw),
                     evaluator=stub_evaluator, show_progress=False, console=console)


def test_capped_run_is_excluded_counted_and_named(tmp_path, data_root, monkeypatch):
    """A tiny seconds cap on a huge images budget: the run is `capped`, never averaged in, failed by check."""
    monkeypatch.setattr("genbench.run.task._default_evaluator", lambda: stub_evaluator)  # speed: no feature network
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "seed-gan", "--budget",
                                  "images=100000000,seconds=0.5", "--out", str(out), "--no-progress",
                                  "--data-root", data_root])
    assert r.exit_code == 0, r.output
    assert "plan: seed-gan seed 0: images=100,000,000, seconds cap 0.5\n" in r.output
    run_dir = out / "smoke" / "seed-gan" / "seed0"
    rec = read_run_record(run_dir / "run.json")
    images = rec.budget["achieved"]["images"]
    assert rec.status == "capped" and rec.budget["achieved"]["stopped_by"] == "seconds"
    assert rec.error == (f"stopped by the seconds cap (0.5 s) after {images:,} of 100,000,000 images: trained "
                         f"less than the suite asks, so left out of means and checks")
    assert rec.metrics["mean_pixel"] > 0  # evaluated, so its numbers can be seen
    assert (f"Warning: seed-gan seed 0 capped: {rec.error}. Finish it on an idle machine with `--models seed-gan "
            f"--seeds 0 --overwrite`, or continue it with a higher cap: `--models seed-gan --seeds 0 --resume "
            f"--budget images=100000000,seconds=S`\n") in r.output
    board = json.loads((out / "smoke" / "leaderboard.json").read_text())
    (row,) = board["rows"]
    assert (row["n_ok"], row["n_capped"], row["seeds"]) == (0, 1, 1)
    assert row.get("num_parameters") is None and row.get("mean_pixel") is None  # no ok seed: nothing averaged
    assert "| seed-gan | 0/1/0/0 |" in (out / "smoke" / "leaderboard.md").read_text()
    assert any(n.startswith("Stopped by the seconds cap") and n.endswith(
        f": seed-gan seed 0 ({images:,} of 100,000,000 images).") for n in board["notes"])
    # The same run recorded ok makes a baseline; checked against it, the capped run is a regression.
    ok_dir = tmp_path / "ok" / "smoke" / "seed-gan" / "seed0"
    shutil.copytree(run_dir, ok_dir)
    data = json.loads((ok_dir / "run.json").read_text())
    data.update(status="ok", error=None)
    (ok_dir / "run.json").write_text(json.dumps(data))
    base = tmp_path / "base.json"
    assert CliRunner().invoke(main, ["baseline", "save", str(tmp_path / "ok" / "smoke"), str(base)]).exit_code == 0
    r = CliRunner().invoke(main, ["check", str(out / "smoke"), "--baseline", str(base), "--json", "-"])
    assert r.exit_code == 1, r.output
    verdicts = {c["metric"]: c["verdict"] for c in json.loads(r.stdout)["comparisons"]}
    assert verdicts["status_ok"] == "regressed" and verdicts["num_parameters"] == "missing"


def test_seconds_only_budget_stopped_by_seconds_is_ok():
    budget = {"asked": {"steps": None, "images": None, "seconds": 60.0}, "kind": "seconds",
              "achieved": {"images": 512, "seconds": 60.0, "stopped_by": "seconds"}}
    assert cap_reason(budget) is None
    budget["asked"]["images"] = 1024
    assert cap_reason(budget) == ("stopped by the seconds cap (60 s) after 512 of 1,024 images: trained less than "
                                  "the suite asks, so left out of means and checks")


def test_old_record_that_ended_ok_under_its_cap_is_read_as_capped():
    data = {"schema_version": 2, "model": {"name": "dcgan"}, "seed": 0, "status": "ok",
            "suite": {"name": "s", "version": 1}, "metrics": {"fid": 19.6},
            "budget": {"kind": "images", "asked": {"images": 300000, "seconds": 600.0},
                       "achieved": {"images": 82720, "seconds": 600.0, "stopped_by": "seconds"}}}
    rec = RunRecord.from_json(data)
    assert (rec.status, rec.schema_version) == ("capped", 3)
    assert rec.error.startswith("stopped by the seconds cap (600 s) after 82,720 of 300,000 images")
    data["budget"]["achieved"].update(images=300000, stopped_by="images")
    assert RunRecord.from_json(data).status == "ok"
    with pytest.raises(ValueError, match="status 'capped' needs schema_version 3, got 2"):
        RunRecord.from_json({**data, "status": "capped"})


def test_budget_option_replaces_the_whole_budget(tmp_path):
    """--budget images=N keeps no seconds cap of the suite's (issue 19: it used to keep 240 s)."""
    suite = load_suite("mnist-small")
    (spec,) = plan_runs(suite, RunOptions(models=["vae"], seeds=[0], budget={"images": 5000}, out=tmp_path))
    assert spec.budget == Budget(images=5000)
    assert suite.model("vae").budget.seconds is not None
    (rec,) = _run(tmp_path, budget="steps=3")
    assert rec.budget["asked"] == {"steps": 3, "images": None, "seconds": None}
    assert rec.status == "ok" and rec.budget["achieved"]["stopped_by"] == "steps"


def test_describe_budget():
    assert describe_budget(Budget(images=300000, seconds=1200)) == "images=300,000, seconds cap 1,200"
    assert describe_budget(Budget(steps=1)) == "steps=1, no seconds cap"
    assert describe_budget(Budget(seconds=600)) == "seconds=600"


@pytest.mark.parametrize("load, busy", [((9.5, 1.0, 1.0), True), ((0.0, 0.0, 0.0), False)])
def test_busy_machine_is_warned_before_training_and_kept(tmp_path, monkeypatch, load, busy):
    monkeypatch.setattr(os, "getloadavg", lambda: load)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    buf = io.StringIO()
    (rec,) = _run(tmp_path, console=Console(file=buf, width=80))
    warning = ("the machine was busy when this run started (load average 9.50 over 2 cores): training is slower, "
               "so seconds caps may cut work budgets short (capped runs) and speed figures are low; for numbers to "
               "compare, run on an idle machine")
    assert (f"Warning: {warning}\n" in buf.getvalue()) is busy
    assert "plan: seed-gan seed 0: steps=4, seconds cap 100\n" in buf.getvalue()
    assert (warning in rec.warnings) is busy
    assert rec.executor["load_average"]["start"] == list(load)


def _git_repo(path):
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_dirty_checkout_refuses_a_results_folder_under_git(tmp_path, monkeypatch, data_root):
    monkeypatch.setattr("genbench.run.plan.git_hash", lambda: "0123456789abcdef-dirty")
    repo = _git_repo(tmp_path / "repo")
    out = repo / "results"
    assert inside_git_work_tree(out) and not inside_git_work_tree(tmp_path / "scratch")
    with pytest.raises(ConfigError) as exc:
        _run(out)
    assert str(exc.value) == DIRTY_ERROR
    r = CliRunner().invoke(main, ["run", "--suite", "smoke", "--models", "seed-gan", "--budget", "steps=2",
                                  "--out", str(out), "--no-progress", "--data-root", data_root])
    assert r.exit_code == 2 and r.output == (
        "Error: the working tree has uncommitted changes (git status); commit them, or pass --allow-dirty to "
        "record a dirty revision\n")
    assert not out.exists()  # refused before anything trained or was written
    (rec,) = _run(out, allow_dirty=True)
    assert rec.status == "ok" and rec.executor["allow_dirty"] is True
    (rec,) = _run(tmp_path / "scratch")  # outside any git work tree: never refused
    assert rec.status == "ok" and rec.executor["allow_dirty"] is False


def test_clean_checkout_writes_under_git(tmp_path, monkeypatch):
    monkeypatch.setattr("genbench.run.plan.git_hash", lambda: "0123456789abcdef")
    (rec,) = _run(_git_repo(tmp_path / "repo") / "results")
    assert rec.status == "ok"


def test_dirty_means_the_code_a_run_uses(tmp_path, monkeypatch):
    """Results, docs or tests changed in a checkout do not make a run dirty; the harness or a baseline does."""
    import importlib.util
    from pathlib import Path

    import genbench.results

    repo = _git_repo(tmp_path / "repo")
    for rel in ("baselines/gan.py", "README.md", "results/s/leaderboard.md", "genbench/results.py"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("")
    shutil.copy(genbench.results.__file__, repo / "genbench" / "results.py")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    spec = importlib.util.spec_from_file_location("copied_results", repo / "genbench" / "results.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "copied_results", module)  # dataclasses look their module up
    spec.loader.exec_module(module)

    def state():
        module.git_hash.cache_clear()
        module.changed_files.cache_clear()
        return module.git_hash().endswith("-dirty"), module.changed_files()

    assert state() == (False, ())
    for rel in ("README.md", "results/s/leaderboard.md"):
        Path(repo / rel).write_text("changed")
    assert state() == (False, ())
    (repo / "baselines" / "gan.py").write_text("changed")
    assert state() == (True, ("baselines/gan.py",))


def test_capped_run_continues_from_its_checkpoint_with_a_higher_cap(tmp_path):
    """The closing warning's second remedy: --resume with a budget that lets the run reach its work."""
    (capped,) = _run(tmp_path, budget={"steps": 10**9, "seconds": 0.3})
    assert capped.status == "capped"
    done = capped.budget["achieved"]["steps"]
    (rec,) = _run(tmp_path, budget={"steps": done + 5}, resume=True)
    assert rec.status == "ok" and rec.executor["resumed_from_step"] == done
    assert rec.budget["achieved"]["steps"] == done + 5
